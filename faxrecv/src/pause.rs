//! `--pause-at-page N`, for testing a relay network: the device stores page
//! N (written and synced) but holds its confirmation until it gets SIGUSR1,
//! so a test or an operator can break something at a known point of a
//! call. While it waits, its systemd status says so.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::daemon::notify;
use common::number::CallId;

/// Longest a page's confirmation is held when nobody sends SIGUSR1: a
/// forgotten pause must not keep the line (or a shutdown) waiting forever.
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// Where to pause, and the release shared with the SIGUSR1 listener.
#[derive(Clone, Debug)]
pub struct PagePause {
    /// The page (from 1) whose confirmation is held.
    pub page: u32,
    /// Counts releases; a waiter goes on once it changes.
    releases: Arc<(Mutex<u64>, Condvar)>,
}

impl PagePause {
    pub fn new(page: u32) -> PagePause {
        PagePause {
            page,
            releases: Arc::default(),
        }
    }

    /// Lets a paused call go on (SIGUSR1).
    pub fn release(&self) {
        let (count, cond) = &*self.releases;
        *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        cond.notify_all();
    }

    /// Blocks (a blocking thread: the page store runs on one) until the
    /// next release, or [`LONGEST_PAUSE`].
    pub fn wait(&self, call: &CallId) {
        let (count, cond) = &*self.releases;
        let mut released = count.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = *released;
        // Announced with the lock held, so a release sent on seeing it counts.
        let status = format!(
            "paused before confirming page {} of call {call} (SIGUSR1 goes on)",
            self.page
        );
        tracing::info!("{status}");
        notify::status(&status);
        let deadline = Instant::now() + LONGEST_PAUSE;
        while *released == seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("no SIGUSR1 within {LONGEST_PAUSE:?}; going on");
                break;
            }
            released = cond
                .wait_timeout(released, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        notify::status(&format!("going on after page {} of call {call}", self.page));
    }

    /// Releases the pause on every SIGUSR1, for as long as the runtime runs.
    pub fn listen_for_sigusr1(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let pause = self.clone();
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                pause.release();
            }
        });
        Ok(())
    }
}
