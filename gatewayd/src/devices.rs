//! The LAN's logged-in devices: which device link answers calls for a number,
//! which numbers each link may call as, and the logins to replay after the
//! relay link comes back.
//!
//! A std Mutex, not a tokio one: nothing awaits while it is held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use common::link::message::{Control, Login};
use common::link::mux::Opener;
use common::number::Number;
use tokio::sync::mpsc;

pub type DeviceLinkId = u64;

/// How to reach a device that answers calls.
#[derive(Clone, Debug)]
pub struct Receiver {
    pub link: DeviceLinkId,
    pub opener: Opener,
    pub outbox: mpsc::Sender<Control>,
}

#[derive(Default, Debug)]
struct Inner {
    receivers: HashMap<Number, Receiver>,
    logins: HashMap<DeviceLinkId, HashMap<Number, Login>>,
    next_link: DeviceLinkId,
}

#[derive(Clone, Default, Debug)]
pub struct Devices {
    inner: Arc<Mutex<Inner>>,
}

/// What to tell the relay once a device link is gone.
#[derive(Debug, PartialEq)]
pub enum Departure {
    /// No device here uses the number any more.
    Logout(Number),
    /// The receiver left but a send-only session remains: log out, then log
    /// in again as send-only so that session may still call.
    Downgrade(Number, Login),
}

impl Devices {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps behind, still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn new_link(&self) -> DeviceLinkId {
        let mut inner = self.lock();
        inner.next_link += 1;
        inner.next_link
    }

    /// Records an accepted login. For a receiving device, returns the
    /// receiver it replaces on another link (newest wins).
    pub fn add(
        &self,
        link: DeviceLinkId,
        login: Login,
        receiver: Option<Receiver>,
    ) -> Option<Receiver> {
        let mut inner = self.lock();
        let number = login.number.clone();
        inner
            .logins
            .entry(link)
            .or_default()
            .insert(number.clone(), login);
        let receiver = receiver?;
        let old = inner.receivers.insert(number.clone(), receiver)?;
        if old.link == link {
            return None;
        }
        // The replaced device keeps no login for the number.
        if let Some(l) = inner.logins.get_mut(&old.link) {
            l.remove(&number);
        }
        Some(old)
    }

    /// The relay kicked `number`: forget its receiver and return it.
    pub fn kick(&self, number: &Number) -> Option<Receiver> {
        let mut inner = self.lock();
        let old = inner.receivers.remove(number)?;
        if let Some(l) = inner.logins.get_mut(&old.link) {
            l.remove(number);
        }
        Some(old)
    }

    /// A device link closed: forget it and say what the relay must hear.
    pub fn remove_link(&self, link: DeviceLinkId) -> Vec<Departure> {
        let mut inner = self.lock();
        let numbers = inner.logins.remove(&link).unwrap_or_default();
        let mut out = Vec::new();
        for number in numbers.into_keys() {
            let was_receiver = inner.receivers.get(&number).is_some_and(|r| r.link == link);
            if was_receiver {
                inner.receivers.remove(&number);
            }
            let remaining = inner.logins.values().find_map(|l| l.get(&number)).cloned();
            match remaining {
                None => out.push(Departure::Logout(number)),
                Some(login) if was_receiver => out.push(Departure::Downgrade(number, login)),
                Some(_) => {}
            }
        }
        out
    }

    pub fn may_call_as(&self, link: DeviceLinkId, number: &Number) -> bool {
        self.lock()
            .logins
            .get(&link)
            .is_some_and(|l| l.contains_key(number))
    }

    pub fn receiver(&self, number: &Number) -> Option<Receiver> {
        self.lock().receivers.get(number).cloned()
    }

    /// Every login to replay on a new relay link, receivers first so a
    /// send-only session never shadows the device that answers calls.
    pub fn logins_to_replay(&self) -> Vec<Login> {
        let inner = self.lock();
        let mut by_number: HashMap<Number, Login> = HashMap::new();
        for login in inner.logins.values().flat_map(|l| l.values()) {
            let entry = by_number
                .entry(login.number.clone())
                .or_insert_with(|| login.clone());
            if entry.receive.is_none() && login.receive.is_some() {
                *entry = login.clone();
            }
        }
        by_number.into_values().collect()
    }

    pub fn count(&self) -> usize {
        self.lock().receivers.len()
    }
}
