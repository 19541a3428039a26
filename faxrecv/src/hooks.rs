//! Telling the world a fax arrived (`--on-receive CMD`, `--notify-url URL`):
//! once a fax is complete, its JSON (the same as `DIR/<call id>.json`) goes
//! to each target through [`common::hooks`]' durable outbox, which lives
//! in `DIR/.faxrecv-outbox`, so a restart delivers what was still waiting.
//! The fax stays in the inbox whatever the hooks do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use common::hooks::{Notifier, Settings, SigningKey, Stats, Target};
use tokio_util::sync::CancellationToken;

/// The outbox's sled db, inside the inbox (hidden, so a watcher looking for
/// `*.json` never sees it).
pub const OUTBOX_DIR: &str = ".faxrecv-outbox";

/// What the command line asked for, checked (the key read, the URL
/// parsed) before anything is opened.
#[derive(Debug)]
pub struct HookSetup {
    pub targets: Vec<Target>,
    pub key: Option<SigningKey>,
}

/// Open hooks: the outbox and where each fax goes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ReceiveHooks {
    notifier: Notifier,
    targets: Arc<[Target]>,
}

impl HookSetup {
    /// Opens the outbox in `dir`; events left by an earlier run are queued
    /// again. An error names the outbox (a machine problem: exit 1).
    pub fn open(self, dir: &Path) -> anyhow::Result<ReceiveHooks> {
        let path = dir.join(OUTBOX_DIR);
        let open = || -> anyhow::Result<Notifier> {
            let tree = sled::open(&path)?.open_tree("received")?;
            Ok(Notifier::open(tree, self.key, Settings::default())?)
        };
        let notifier = open()
            .with_context(|| format!("cannot open the notification outbox {}", path.display()))?;
        Ok(ReceiveHooks {
            notifier,
            targets: self.targets.into(),
        })
    }
}

impl ReceiveHooks {
    /// Queues the fax's notifications: `record` is its JSON, `files` its
    /// .tif then any .png and .pdf. Called once the JSON file is written;
    /// a failure is logged and costs the notification, never the fax.
    pub fn fax_received(&self, record: &serde_json::Value, files: &[PathBuf]) {
        for target in self.targets.iter() {
            if let Err(e) = self.notifier.push(target, record, files) {
                tracing::error!(to = %target, error = %e, "cannot queue the fax's notification");
            }
        }
    }

    pub fn stats(&self) -> Stats {
        self.notifier.stats()
    }

    /// Delivers notifications until `stop`.
    pub async fn deliver(self, stop: CancellationToken) {
        self.notifier.run(stop).await
    }

    /// With `--once`: waits until the call's notifications are delivered,
    /// or one attempt failed (the rest is left in the outbox for the next
    /// run, and said so), or `shutdown`.
    pub async fn settle(&self, shutdown: &CancellationToken) {
        let failed_before = self.notifier.stats().failed_attempts;
        let mut stats = self.notifier.subscribe();
        let settled = stats.wait_for(|s| s.pending == 0 || s.failed_attempts > failed_before);
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = settled => {}
        }
        let pending = self.notifier.stats().pending;
        if pending > 0 {
            tracing::warn!(
                pending,
                "notifications not delivered yet; they stay in the outbox for the next run"
            );
        }
    }
}
