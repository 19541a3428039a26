//! Giving memory back once a burst of calls is over.
//!
//! glibc's allocator keeps what a burst freed in its arenas (one per
//! thread that allocated), so without help a relay's resident memory stays
//! where the busiest moment left it. Once the daemon has carried calls and
//! none is left in flight, [`IdleTrim`] asks the allocator to return its free
//! pages to the system (`malloc_trim`), once per such lull.

/// Watches the number of calls in flight and trims after each burst.
#[derive(Debug, Default)]
pub struct IdleTrim {
    carried: bool,
}

impl IdleTrim {
    /// Call periodically with the calls in flight; returns whether it trimmed.
    pub fn tick(&mut self, calls_in_flight: usize) -> bool {
        if calls_in_flight > 0 {
            self.carried = true;
            return false;
        }
        if !std::mem::take(&mut self.carried) {
            return false;
        }
        release_free_memory();
        true
    }
}

/// Returns the allocator's free pages to the system, where the allocator
/// can be asked (glibc); elsewhere does nothing.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks the
    // allocator's own free lists under the allocator's locks.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_when_a_burst_of_calls_is_over() {
        let mut trim = IdleTrim::default();
        assert!(!trim.tick(0), "nothing carried yet");
        assert!(!trim.tick(12));
        assert!(!trim.tick(3));
        assert!(trim.tick(0), "the burst is over");
        assert!(!trim.tick(0), "once per lull");
        assert!(!trim.tick(1));
        assert!(trim.tick(0));
    }
}
