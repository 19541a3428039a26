//! The state every task of the relay shares, and how the effects the relay
//! core decides are carried out (a kick down a link, a renewal stored and
//! announced, a revocation stored and spread).

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use common::daemon::lifecycle::{Lifecycle, Service};
use common::directory::{ConnectionInfo, unix_now};
use common::link::actor::LinkHandle;
use common::link::message::{Control, Revocation};
use common::number::Number;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::RelayConfig;
use crate::mesh::{Mesh, PeerStatus};
use crate::metrics::RelayMetrics;
use crate::redis_dir::RedisDirectory;
use crate::relay_core::limits::LimitState;
use crate::relay_core::{self, Effect, RelayCore, Renewal};
use crate::revocation::RevocationStore;

/// State every task of the relay shares. The stop signals and trackers
/// every daemon has (`draining`, `closing`, `calls`, `tasks`) are in its
/// [`Lifecycle`], reached through `Deref` as if they were fields here.
#[derive(Debug)]
pub struct Relay {
    pub life: Lifecycle,
    pub config: RelayConfig,
    pub mesh: Mesh,
    /// Directory mode only: the records in Redis and their cache.
    pub redis: Option<RedisDirectory>,
    /// Who is logged in where, and the login, revocation and home rules.
    /// A std Mutex: nothing awaits while it is held.
    pub(crate) core: Mutex<RelayCore<LinkHandle>>,
    /// Call and link limits and their live counters.
    pub limits: LimitState,
    /// Revoked secret generations on disk.
    pub(crate) revocation_store: RevocationStore,
    pub peer_status: PeerStatus,
    pub metrics: RelayMetrics,
    /// Peer links dialed on demand (directory mode).
    pub dialed_links: TaskTracker,
    /// The configured peers' dialers, each stopped by its own token (a
    /// child of `closing`) when a reload removes the peer.
    pub(crate) dialers: Mutex<BTreeMap<String, CancellationToken>>,
    /// Device and gateway links up.
    pub(crate) links_up: AtomicU64,
    /// Directory mode: the lease writer, which stops after the links (their
    /// last renewals are written), so it is owned apart from them.
    pub(crate) lease_writer: Mutex<Option<JoinHandle<()>>>,
}

impl Deref for Relay {
    type Target = Lifecycle;

    fn deref(&self) -> &Lifecycle {
        &self.life
    }
}

impl Relay {
    /// The relay's state and rules, locked.
    pub fn core(&self) -> MutexGuard<'_, RelayCore<LinkHandle>> {
        // Plain maps: still consistent after a panic elsewhere.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Carries out what the core decided (the core's lock released).
    pub fn apply(&self, effects: Vec<Effect<LinkHandle>>) {
        for effect in effects {
            match effect {
                // A full outbox closes that link: the device is gone either way.
                Effect::Tell(link, msg) => {
                    let _ = link.notify(msg);
                }
                Effect::Renew(Renewal::Online {
                    number,
                    gateway,
                    capabilities,
                }) => self.renew_local(ConnectionInfo {
                    number,
                    home_relay: self.config.name.clone(),
                    gateway,
                    capabilities: Some(capabilities),
                    login_time: unix_now(),
                    version: self.mesh.store().next_version(),
                    online: true,
                }),
                Effect::Renew(Renewal::Offline(number)) => self.mark_offline(&number),
                Effect::Revoked { raised, from } => {
                    self.revocation_store.save(&raised);
                    for peer in self.mesh.peers() {
                        // A peer whose outbox is full is relinked, and gets
                        // every revocation again after its snapshot.
                        if Some(peer.name.as_str()) != from.as_deref() {
                            let _ = peer.handle.notify(Control::Revoke(raised.clone()));
                        }
                    }
                    if let Some(dir) = &self.redis {
                        dir.revoked(&raised);
                    }
                }
            }
        }
    }

    /// Applies revocations (from the operator, a peer or Redis); returns
    /// how many devices were kicked.
    pub fn revoke(&self, revocations: Vec<Revocation>, from: Option<&str>) -> usize {
        let (effects, kicked) = self.core().revoke(revocations, from);
        self.apply(effects);
        kicked
    }

    /// The number's receiving device is gone: keep the record, mark it offline.
    pub fn mark_offline(&self, number: &Number) {
        let record = relay_core::offline_record(self.mesh.record(number), &self.config.name);
        if let Some(mut record) = record {
            record.version = self.mesh.store().next_version();
            self.renew_local(record);
        }
    }

    /// Receiving devices logged in here.
    pub fn online_count(&self) -> usize {
        self.core().online_count()
    }

    /// The Redis directory, in directory mode.
    pub fn redis(&self) -> Option<&RedisDirectory> {
        self.redis.as_ref()
    }

    /// A renewal of one of this relay's devices (login, logout, lost link):
    /// into the local table and store, then to the peers (mesh mode) or to
    /// Redis (directory mode).
    pub fn renew_local(&self, record: ConnectionInfo) {
        let number = record.number.clone();
        self.mesh.renew_local(record);
        if let Some(dir) = &self.redis {
            dir.renewed(&number);
        }
    }

    /// Device and gateway links up now.
    pub fn links_up(&self) -> u64 {
        self.links_up.load(Ordering::Relaxed)
    }

    /// Counts a link as up until the guard drops.
    pub fn link_up(&self) -> LinkUpGuard<'_> {
        self.links_up.fetch_add(1, Ordering::Relaxed);
        self.metrics.links_accepted.inc();
        LinkUpGuard(&self.links_up)
    }

    /// What systemd shows: `listening on ADDR; [admin on ADDR; ]peers up: N;
    /// devices online: N; calls in flight: N`. Tests parse the first parts.
    pub fn status_line(&self) -> String {
        Service::status_line(self)
    }
}

/// Decrements the links-up count when a link task ends.
#[derive(Debug)]
pub struct LinkUpGuard<'a>(&'a AtomicU64);

impl Drop for LinkUpGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
