//! Who is online at this relay right now: which link each receiving number
//! answers on, and which numbers each link has logged in (and may call as).
//!
//! A std Mutex, not a tokio one: nothing awaits while it is held.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use common::link::message::Control;
use common::link::mux::Opener;
use common::number::Number;
use tokio::sync::mpsc;

/// Identifies one accepted link for the lifetime of the process.
pub type LinkId = u64;

/// How to reach a logged-in receiving device.
#[derive(Clone, Debug)]
pub struct Route {
    pub link: LinkId,
    pub opener: Opener,
    /// Control messages to that link (e.g. `Kicked`).
    pub outbox: mpsc::Sender<Control>,
    pub gateway: Option<String>,
}

#[derive(Default, Debug)]
struct Inner {
    receivers: HashMap<Number, Route>,
    logged_in: HashMap<LinkId, HashSet<Number>>,
    next_link: LinkId,
}

/// Shared handle to the registry.
#[derive(Clone, Default, Debug)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps behind, still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn new_link(&self) -> LinkId {
        let mut inner = self.lock();
        inner.next_link += 1;
        inner.next_link
    }

    /// Records a successful login. For a receiving device, returns the route
    /// it replaces on another link (newest login wins; the caller tells the
    /// old one it was kicked).
    pub fn login(&self, link: LinkId, number: &Number, receive: Option<Route>) -> Option<Route> {
        let mut inner = self.lock();
        inner
            .logged_in
            .entry(link)
            .or_default()
            .insert(number.clone());
        let route = receive?;
        inner
            .receivers
            .insert(number.clone(), route)
            .filter(|old| old.link != link)
    }

    /// The device behind `link` logged out. Returns whether it was the
    /// number's receiver (so the number went offline).
    pub fn logout(&self, link: LinkId, number: &Number) -> bool {
        let mut inner = self.lock();
        if let Some(set) = inner.logged_in.get_mut(&link) {
            set.remove(number);
        }
        remove_receiver(&mut inner, link, number)
    }

    /// A link went away: forgets its logins and returns the numbers that went
    /// offline with it.
    pub fn drop_link(&self, link: LinkId) -> Vec<Number> {
        let mut inner = self.lock();
        let numbers = inner.logged_in.remove(&link).unwrap_or_default();
        numbers
            .into_iter()
            .filter(|n| remove_receiver(&mut inner, link, n))
            .collect()
    }

    /// Whether `number` logged in on `link` (so the link may call as it).
    pub fn may_call_as(&self, link: LinkId, number: &Number) -> bool {
        self.lock()
            .logged_in
            .get(&link)
            .is_some_and(|s| s.contains(number))
    }

    /// Drops `number`'s receiver on `link` (its number moved elsewhere).
    pub fn forget_receiver(&self, number: &Number, link: LinkId) {
        remove_receiver(&mut self.lock(), link, number);
    }

    pub fn receiver(&self, number: &Number) -> Option<Route> {
        self.lock().receivers.get(number).cloned()
    }

    pub fn online_count(&self) -> usize {
        self.lock().receivers.len()
    }
}

fn remove_receiver(inner: &mut Inner, link: LinkId, number: &Number) -> bool {
    if inner.receivers.get(number).is_some_and(|r| r.link == link) {
        inner.receivers.remove(number);
        true
    } else {
        false
    }
}
