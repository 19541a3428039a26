//! The relay's limits: what each is (settings with safe defaults) and the
//! counters that enforce them. A device or link over a limit gets a reason
//! (a refused link, a refused login, a refused call); nothing else is touched.
//!
//! Pages and bytes: relays splice call streams without parsing page data, so
//! they check what they can see without parsing: the request's page summary
//! (pages per call, and its declared bytes against pages × bytes per page),
//! then a byte cap on the caller's side of the splice, derived from the
//! declared pages (conversion never adds pages), so a caller that lies in its
//! summary is cut. The exact per-page check is the callee's own
//! (`common::device::answer`), which reads each page's length before its data.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use common::link::message::{CHUNK_LEN, CallRefusal, CallRequest, Refusal};
use common::number::Number;

use super::LinkId;

pub const DEFAULT_MAX_FRAME_BYTES: usize = common::link::frame::MAX_FRAME_LEN;
pub const DEFAULT_MAX_PAGES_PER_CALL: u32 = 1000;
/// A dithered A3 superfine page is a few MB; 16 MiB leaves room.
pub const DEFAULT_MAX_PAGE_BYTES: u64 = 16 << 20;
pub const DEFAULT_MAX_CALLS_PER_DEVICE: u32 = 8;
pub const DEFAULT_MAX_CALLS_PER_GATEWAY: u32 = 512;
pub const DEFAULT_MAX_LINKS_PER_ADDRESS: u32 = 64;
pub const DEFAULT_LOGIN_ATTEMPTS_PER_MIN: u32 = 10;

/// The limits in force (each a setting: flag, RELAYD_* variable, TOML key).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_pages_per_call: u32,
    pub max_page_bytes: u64,
    pub max_calls_per_device: u32,
    pub max_calls_per_gateway: u32,
    pub max_links_per_address: u32,
    /// Failed logins per source address per minute; 0 is no throttle.
    pub login_attempts_per_min: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_pages_per_call: DEFAULT_MAX_PAGES_PER_CALL,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            max_calls_per_device: DEFAULT_MAX_CALLS_PER_DEVICE,
            max_calls_per_gateway: DEFAULT_MAX_CALLS_PER_GATEWAY,
            max_links_per_address: DEFAULT_MAX_LINKS_PER_ADDRESS,
            login_attempts_per_min: DEFAULT_LOGIN_ATTEMPTS_PER_MIN,
        }
    }
}

impl Limits {
    /// Checks each value; the error names the setting, the value and the range.
    pub fn validate(&self) -> Result<(), String> {
        use common::link::frame::{MAX_FRAME_LIMIT, MIN_FRAME_LIMIT};
        let range = |key: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("invalid {key} {v}: use {lo} to {hi}"))
            }
        };
        range(
            "max_frame_bytes",
            self.max_frame_bytes as u64,
            MIN_FRAME_LIMIT as u64,
            MAX_FRAME_LIMIT as u64,
        )?;
        range(
            "max_pages_per_call",
            self.max_pages_per_call.into(),
            1,
            100_000,
        )?;
        range("max_page_bytes", self.max_page_bytes, 1024, 1 << 30)?;
        range(
            "max_calls_per_device",
            self.max_calls_per_device.into(),
            1,
            100_000,
        )?;
        range(
            "max_calls_per_gateway",
            self.max_calls_per_gateway.into(),
            1,
            1_000_000,
        )?;
        range(
            "max_links_per_address",
            self.max_links_per_address.into(),
            1,
            1_000_000,
        )?;
        range(
            "login_attempts_per_min",
            self.login_attempts_per_min.into(),
            0,
            1_000_000,
        )
    }

    /// Refuses a request whose summary is over the page limits.
    pub fn check_request(&self, req: &CallRequest) -> Result<(), Refusal> {
        if req.pages > self.max_pages_per_call {
            let detail = format!(
                "{} pages is over this relay's limit of {} pages per call",
                req.pages, self.max_pages_per_call
            );
            return Err(Refusal::new(CallRefusal::OverLimit, detail));
        }
        let most = u64::from(req.pages.max(1)).saturating_mul(self.max_page_bytes);
        if req.bytes > most {
            let detail = format!(
                "{} bytes in {} pages is over this relay's limit of {} bytes per page",
                req.bytes, req.pages, self.max_page_bytes
            );
            return Err(Refusal::new(CallRefusal::OverLimit, detail));
        }
        Ok(())
    }

    /// Most bytes an honest caller can send after its request: each declared
    /// page at the page limit with its framing (a header frame, 4 bytes per
    /// chunk), plus the end of document.
    pub fn splice_cap(&self, req: &CallRequest) -> u64 {
        let framing = self.max_page_bytes / CHUNK_LEN as u64 * 4 + 4096;
        u64::from(req.pages.max(1))
            .saturating_mul(self.max_page_bytes + framing)
            .saturating_add(4096)
    }
}

/// Who a call in flight counts against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum CallKey {
    Device(Number),
    Link(LinkId),
}

#[derive(Debug, Default)]
struct Counts {
    links: HashMap<IpAddr, u32>,
    calls: HashMap<CallKey, u32>,
}

/// The relay's live counters. A std Mutex: nothing awaits while it is held.
#[derive(Debug)]
pub struct LimitState {
    pub limits: Limits,
    counts: Arc<Mutex<Counts>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps behind the lock: still consistent after a panic elsewhere.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LimitState {
    pub fn new(limits: Limits) -> LimitState {
        LimitState {
            limits,
            counts: Arc::default(),
        }
    }

    /// Takes a link slot for `ip`, or says why not.
    pub fn link_slot(&self, ip: IpAddr) -> Result<Slot, TooManyLinks> {
        let mut counts = lock(&self.counts);
        let n = counts.links.entry(ip).or_default();
        if *n >= self.limits.max_links_per_address {
            let max = self.limits.max_links_per_address;
            if *n == 0 {
                counts.links.remove(&ip);
            }
            return Err(TooManyLinks { ip, max });
        }
        *n += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            keys: vec![SlotKey::Link(ip)],
        })
    }

    /// Takes a call slot for the caller's number and its link, or refuses.
    pub fn call_slot(&self, from: &Number, link: LinkId) -> Result<Slot, Refusal> {
        let mut counts = lock(&self.counts);
        let device = CallKey::Device(from.clone());
        let on_link = CallKey::Link(link);
        let d = counts.calls.get(&device).copied().unwrap_or(0);
        let l = counts.calls.get(&on_link).copied().unwrap_or(0);
        if d >= self.limits.max_calls_per_device {
            let detail = format!("{from} has {d} calls in flight, this relay's limit per device");
            return Err(Refusal::new(CallRefusal::OverLimit, detail));
        }
        if l >= self.limits.max_calls_per_gateway {
            let detail =
                format!("its link has {l} calls in flight, this relay's limit per gateway");
            return Err(Refusal::new(CallRefusal::OverLimit, detail));
        }
        *counts.calls.entry(device.clone()).or_default() += 1;
        *counts.calls.entry(on_link.clone()).or_default() += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            keys: vec![SlotKey::Call(device), SlotKey::Call(on_link)],
        })
    }
}

/// A link refused because its address has too many already.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many links from {ip}: this relay takes at most {max} per address")]
pub struct TooManyLinks {
    pub ip: IpAddr,
    pub max: u32,
}

#[derive(Debug)]
enum SlotKey {
    Link(IpAddr),
    Call(CallKey),
}

/// A link or call counted against its limits until dropped.
#[derive(Debug)]
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    keys: Vec<SlotKey>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        for key in &self.keys {
            match key {
                SlotKey::Link(ip) => release(&mut counts.links, ip),
                SlotKey::Call(k) => release(&mut counts.calls, k),
            }
        }
    }
}

fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::number::CallId;

    fn request(pages: u32, bytes: u64) -> CallRequest {
        CallRequest {
            call_id: CallId::random(),
            from: "1001".parse().unwrap(),
            to: "1002".parse().unwrap(),
            pages,
            bytes,
            via: Vec::new(),
        }
    }

    #[test]
    fn request_summary_is_checked() {
        let limits = Limits {
            max_pages_per_call: 3,
            max_page_bytes: 1000,
            ..Limits::default()
        };
        assert!(limits.check_request(&request(3, 3000)).is_ok());
        let Refusal { reason, detail } = limits.check_request(&request(4, 10)).unwrap_err();
        assert_eq!(reason, CallRefusal::OverLimit);
        assert!(
            detail.contains("4 pages") && detail.contains("limit of 3"),
            "{detail}"
        );
        let Refusal { detail, .. } = limits.check_request(&request(2, 2001)).unwrap_err();
        assert!(detail.contains("1000 bytes per page"), "{detail}");
        assert!(limits.splice_cap(&request(2, 0)) > 2000);
    }

    #[test]
    fn slots_count_and_release() {
        let state = LimitState::new(Limits {
            max_links_per_address: 1,
            max_calls_per_device: 1,
            ..Limits::default()
        });
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let slot = state.link_slot(ip).unwrap();
        let err = state.link_slot(ip).unwrap_err().to_string();
        assert!(err.contains("too many links from 127.0.0.2"), "{err}");
        assert!(state.link_slot("127.0.0.3".parse().unwrap()).is_ok());
        drop(slot);
        assert!(state.link_slot(ip).is_ok());

        let a: Number = "1001".parse().unwrap();
        let call = state.call_slot(&a, 1).unwrap();
        assert!(state.call_slot(&a, 2).is_err());
        assert!(state.call_slot(&"1003".parse().unwrap(), 1).is_ok());
        drop(call);
        assert!(state.call_slot(&a, 2).is_ok());
    }

    #[test]
    fn bad_values_are_named() {
        let bad = Limits {
            max_frame_bytes: 10,
            ..Limits::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.contains("invalid max_frame_bytes 10"), "{err}");
        assert!(Limits::default().validate().is_ok());
    }
}
