//! Counting failed logins per address in one-minute windows, so that a
//! flood of bad logins from one place is refused ("too many attempts")
//! while everyone else logs in as usual. Pure: the caller passes the clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Keys remembered at most; past this, stale windows are dropped, and if
/// none is stale the oldest goes (an attacker spraying addresses cannot make
/// the table grow without bound).
const MAX_KEYS: usize = 65_536;

/// Failed attempts per key within the current window.
#[derive(Debug)]
pub struct LoginThrottle<K> {
    limit: u32,
    windows: HashMap<K, (Instant, u32)>,
}

impl<K: Hash + Eq + Clone> LoginThrottle<K> {
    /// `limit` failed attempts per key per minute; 0 turns the throttle off.
    pub fn new(limit: u32) -> LoginThrottle<K> {
        LoginThrottle {
            limit,
            windows: HashMap::new(),
        }
    }

    /// `Err(seconds to wait)` when `key` used up its failures this window;
    /// then even a correct secret is refused, so guessing stays slow.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), u32> {
        if self.limit == 0 {
            return Ok(());
        }
        match self.windows.get(key) {
            Some(&(start, count)) if count >= self.limit && now < start + WINDOW => {
                let left = (start + WINDOW).saturating_duration_since(now);
                Err(left.as_secs().max(1) as u32)
            }
            _ => Ok(()),
        }
    }

    /// Counts one failed attempt by `key`.
    pub fn failed(&mut self, key: &K, now: Instant) {
        if self.limit == 0 {
            return;
        }
        if !self.windows.contains_key(key) && self.windows.len() >= MAX_KEYS {
            self.windows.retain(|_, (start, _)| now < *start + WINDOW);
            if self.windows.len() >= MAX_KEYS
                && let Some(oldest) = self
                    .windows
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(k, _)| k.clone())
            {
                self.windows.remove(&oldest);
            }
        }
        let entry = self.windows.entry(key.clone()).or_insert((now, 0));
        if now >= entry.0 + WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Keys tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_per_key_per_window() {
        let t0 = Instant::now();
        let mut t = LoginThrottle::new(3);
        for _ in 0..3 {
            assert_eq!(t.check(&"a", t0), Ok(()));
            t.failed(&"a", t0);
        }
        assert_eq!(t.check(&"a", t0 + Duration::from_secs(1)), Err(59));
        assert_eq!(t.check(&"b", t0), Ok(()), "other keys are untouched");
        assert_eq!(t.check(&"a", t0 + WINDOW), Ok(()), "a new window");
        t.failed(&"a", t0 + WINDOW);
        assert_eq!(t.check(&"a", t0 + WINDOW), Ok(()));
    }

    #[test]
    fn zero_is_off_and_the_table_is_bounded() {
        let t0 = Instant::now();
        let mut off = LoginThrottle::new(0);
        off.failed(&1u32, t0);
        assert_eq!(off.check(&1, t0), Ok(()));
        let mut t = LoginThrottle::new(1);
        for k in 0..(MAX_KEYS as u32 + 10) {
            t.failed(&k, t0);
        }
        assert!(t.tracked() <= MAX_KEYS);
    }
}
