//! Tuning relayd's allocator, mimalloc (declared in `main.rs`, so that only
//! the daemon runs on it, not the tests that link this library).

/// mimalloc's `mi_option_purge_delay` (mimalloc.h of mimalloc 3, which
/// `libmimalloc-sys` builds; the crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Free pages go back to the system at once rather than a second later
/// (mimalloc 3's default, whatever mimalloc.h's comment says): with
/// the delay, what a snapshot's decoding freed on the runtime's threads
/// stayed resident (339 bytes per number learned from 100,000, against 226
/// without it), because a thread purges only when it allocates again. It
/// cost calls nothing measurable (`--bench scale -- open-loop`: relayd's CPU
/// time per call the same either way).
pub fn tune() {
    // SAFETY: mi_option_set only stores an option's value.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
    common::daemon::memory::release_with(release_this_threads_heap);
}

/// mimalloc's `malloc_trim`, for the calling thread's heap only (mimalloc's
/// heaps are per thread; `common::daemon::memory` has each runtime thread
/// call this in turn).
fn release_this_threads_heap() {
    // SAFETY: mi_collect has no preconditions; it only walks mimalloc's own
    // heaps.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option's number is mimalloc's, not the crate's: a mimalloc that
    /// renumbered its options would have this set another one.
    #[test]
    fn the_purge_delay_option_is_the_one_that_defaults_to_a_second() {
        // SAFETY: mi_option_get only reads an option's value.
        #[allow(unsafe_code)]
        let delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, 1000, "milliseconds");
    }
}
