//! Giving memory back once a burst of calls, logins or learning is over.
//!
//! glibc's allocator keeps what a burst freed in its arenas (one per
//! thread that allocated), so without help a relay's resident memory stays
//! where the busiest moment left it. Once the daemon has carried calls or
//! seen devices log in or out or numbers come and go, and has been quiet
//! (no call in flight, the same devices online, the same numbers known) for
//! [`SETTLE_TICKS`] ticks in a row, [`IdleTrim`]
//! asks the allocator to return its free pages to the system
//! (`malloc_trim`), once per such lull.
//!
//! A daemon on a per-thread allocator (relayd on mimalloc) gives memory back
//! thread by thread instead: the release runs at once on the thread that
//! asks, and on each runtime thread as it next parks ([`on_thread_idle`]).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Ticks in a row with no call in flight before the trim. The moment the
/// last call ends, its links are still tearing its streams down (the
/// multiplexer drops a closed stream's state on its next turn): a trim then
/// missed what they freed a moment later, and a gateway stayed 16% above
/// where it started after a load, against 5% a second later.
pub const SETTLE_TICKS: u32 = 2;

/// What a daemon is doing, as of one status tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activity {
    pub calls_in_flight: usize,
    pub devices_online: usize,
    /// Numbers whose connection information the daemon holds (a relay's
    /// directory; 0 for others). Learning a peer's snapshot leaves the
    /// buffers it was decoded from freed behind.
    pub numbers_known: usize,
}

/// Watches the daemon's [`Activity`] and trims after each burst.
#[derive(Debug, Default)]
pub struct IdleTrim {
    /// Something happened since the last trim.
    worked: bool,
    quiet_ticks: u32,
    /// Devices online and numbers known at the last tick (none before the
    /// first).
    held: Option<(usize, usize)>,
}

impl IdleTrim {
    /// Call once per status tick; returns whether it trimmed. A login
    /// storm leaves freed memory behind too: 10,000 device logins left a
    /// relay 2 MB above what it held once trimmed.
    pub fn tick(&mut self, now: Activity) -> bool {
        let held = (now.devices_online, now.numbers_known);
        let moved = self.held.replace(held).is_some_and(|before| before != held);
        if now.calls_in_flight > 0 || moved {
            self.worked = true;
            self.quiet_ticks = 0;
            return false;
        }
        if !self.worked {
            return false;
        }
        self.quiet_ticks += 1;
        if self.quiet_ticks < SETTLE_TICKS {
            return false;
        }
        self.worked = false;
        release_free_memory();
        true
    }
}

/// Free memory glibc keeps at the top of an arena instead of handing it
/// back at once: more than the few page-chunk buffers a busy link frees and
/// allocates again for every chunk it carries.
const KEEP_FREE_AT_TOP: i32 = 1 << 20;

/// Allocations from this size up come from `mmap` (and go straight back to
/// the system when freed): above a page chunk's frame buffer (128 KiB), which
/// glibc's default of exactly 128 KiB would map, fault in and zero for
/// every chunk at every hop.
const MMAP_FROM: i32 = 512 * 1024;

/// Sets the allocator up for carrying page data; call once at start, before
/// any thread is spawned.
///
/// Each page chunk crossing a hop is a 128 KiB frame buffer allocated and
/// freed again. glibc's default trim threshold (128 KiB) gives the top of the
/// heap back as soon as one such buffer is free, then faults the same
/// pages in again for the next chunk: thousands of `brk`/`madvise` calls and
/// page faults per 200 MB carried. A higher threshold keeps that megabyte;
/// [`IdleTrim`] still returns everything once the calls are over. The mmap
/// threshold is fixed at [`MMAP_FROM`] (setting either stops glibc from
/// moving it), so chunk buffers come from the heap while large, rare
/// allocations keep coming from `mmap` and go straight back.
///
/// Arenas: one per core, for the runtime's worker threads. glibc's default
/// (up to eight per core) gives every thread that ever allocates (sled's,
/// the blocking pool's) an arena of its own, each keeping the pages a burst
/// left half used: after six rounds of 1,000 calls at once the relays sat
/// 8.3 to 10.5% above where they started, against 6.8 to 8.1% with one
/// arena per core.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = i32::try_from(arenas).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets the allocator's parameters; it is
        // called before other threads exist.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_FREE_AT_TOP);
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_FROM);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// How the daemon's allocator gives its free pages back, for a daemon whose
/// global allocator is not glibc's (set by [`release_with`]).
static RELEASE: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Releases asked for so far; each thread gives its heap back once per
/// release, at its next idle moment ([`on_thread_idle`]).
static RELEASES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last of [`RELEASES`] this thread has carried out.
    static RELEASED: Cell<u64> = const { Cell::new(0) };
}

/// For a daemon that runs on another global allocator than glibc's (relayd
/// runs on mimalloc): `release` gives back the free pages of the calling
/// thread's heap, and [`release_free_memory`] has every runtime thread call
/// it (see [`on_thread_idle`]) instead of `malloc_trim`. Call once, at
/// start, in place of [`tune_allocator`].
pub fn release_with(release: fn()) {
    let _ = RELEASE.set(release);
}

/// Returns the allocator's free pages to the system: the daemon's own way
/// (see [`release_with`]), on this thread now and on every other runtime
/// thread as it next goes idle; else glibc's `malloc_trim`, which covers
/// every thread at once; elsewhere does nothing.
pub fn release_free_memory() {
    if RELEASE.get().is_some() {
        RELEASES.fetch_add(1, Ordering::Relaxed);
        on_thread_idle();
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks the
    // allocator's own free lists under the allocator's locks.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// For a runtime thread about to park: carries out a release asked for
/// since this thread last did (a per-thread allocator keeps each thread's
/// free pages in that thread's heap, so only the thread can give them
/// back). One atomic load otherwise. Hook it into the runtime with
/// `on_thread_park`.
pub fn on_thread_idle() {
    let Some(release) = RELEASE.get() else {
        return;
    };
    let asked = RELEASES.load(Ordering::Relaxed);
    RELEASED.with(|done| {
        if done.get() != asked {
            done.set(asked);
            release();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(calls_in_flight: usize) -> Activity {
        Activity {
            calls_in_flight,
            devices_online: 40,
            numbers_known: 1000,
        }
    }

    fn devices(devices_online: usize) -> Activity {
        Activity {
            calls_in_flight: 0,
            devices_online,
            numbers_known: 1000,
        }
    }

    fn numbers(numbers_known: usize) -> Activity {
        Activity {
            calls_in_flight: 0,
            devices_online: 40,
            numbers_known,
        }
    }

    #[test]
    fn trims_once_when_a_burst_of_calls_has_settled() {
        let mut trim = IdleTrim::default();
        assert!(!trim.tick(calls(0)), "nothing carried yet");
        assert!(!trim.tick(calls(0)), "nothing carried yet");
        assert!(!trim.tick(calls(12)));
        assert!(!trim.tick(calls(3)));
        assert!(!trim.tick(calls(0)), "the burst has just ended");
        assert!(trim.tick(calls(0)), "the burst is over");
        assert!(!trim.tick(calls(0)), "once per lull");
        assert!(!trim.tick(calls(1)));
        assert!(!trim.tick(calls(0)));
        assert!(!trim.tick(calls(2)), "a call in the lull starts it over");
        assert!(!trim.tick(calls(0)));
        assert!(trim.tick(calls(0)));
    }

    #[test]
    fn trims_once_when_devices_have_stopped_logging_in_or_out() {
        let mut trim = IdleTrim::default();
        assert!(!trim.tick(devices(0)), "the first tick sees no change");
        assert!(!trim.tick(devices(0)));
        assert!(!trim.tick(devices(4000)), "a login storm");
        assert!(!trim.tick(devices(10_000)));
        assert!(!trim.tick(devices(10_000)), "the storm has just ended");
        assert!(trim.tick(devices(10_000)), "the storm is over");
        assert!(!trim.tick(devices(10_000)), "once per lull");
        assert!(!trim.tick(devices(9000)), "devices going away");
        assert!(!trim.tick(devices(9000)));
        assert!(trim.tick(devices(9000)));
    }

    #[test]
    fn trims_once_when_a_snapshot_has_been_learned() {
        let mut trim = IdleTrim::default();
        assert!(!trim.tick(numbers(0)), "the first tick sees no change");
        assert!(!trim.tick(numbers(400_000)), "a peer's snapshot");
        assert!(!trim.tick(numbers(1_000_000)));
        assert!(!trim.tick(numbers(1_000_000)), "it has just been learned");
        assert!(trim.tick(numbers(1_000_000)), "it is over");
        assert!(!trim.tick(numbers(1_000_000)), "once per lull");
    }
}
