//! Directory mode's tasks around the Redis client (`redis_dir`): writing
//! this relay's records and leases, following the renewals channel, and
//! routing a call to the callee's home relay (dialed on demand).

use std::sync::Arc;

use common::backoff::Backoff;
use common::directory::ConnectionInfo;
use common::link::message::Refusal;
use common::link::mux::Opener;
use common::number::Number;
use futures::StreamExt;

use crate::dir_cache::Source;
use crate::peer::{self, CallSpawner};
use crate::redis_backend::TOPOLOGY_CHECK;
use crate::redis_dir::{
    DirectoryError, DirectoryRecord, FIRST_BACKOFF, Health, MAX_BACKOFF, REDIS_TIMEOUT,
    RedisDirectory, lock,
};
use crate::relay::Relay;
use crate::relay_core::route::{self, Destination, Found, RouteError};

/// The home rule for a record from Redis that took a local number away.
fn hand_over(relay: &Relay) -> impl Fn(&ConnectionInfo) + Sync + '_ {
    move |record| {
        let effects = relay.core().records_stored(std::slice::from_ref(record));
        relay.apply(effects);
    }
}

/// Where a call to `to` goes in directory mode, or why it cannot go on.
pub async fn route(
    relay: &Arc<Relay>,
    dir: &RedisDirectory,
    to: &Number,
    calls: CallSpawner,
) -> Result<Opener, Refusal> {
    let hand_over = hand_over(relay);
    let mut addr = None;
    // Homed here: the local table is the authority.
    let found = match relay.mesh.record(to) {
        Some(record) if record.home_relay == dir.me => Found::Record {
            record,
            next_hop: None,
        },
        _ => match dir.lookup(&relay.mesh, &hand_over, to).await {
            Ok(Some(r)) => {
                addr = Some(r.relay_addr);
                Found::Record {
                    next_hop: Some(r.info.home_relay.clone()),
                    record: r.info,
                }
            }
            Ok(None) => Found::Unknown,
            Err(e) => Found::DirectoryDown(e.to_string()),
        },
    };
    let local = relay.core().receiver(to);
    let (home, addr) = match route::route(&dir.me, to, found, local)? {
        Destination::Local(link) => return Ok(link.opener().clone()),
        Destination::Relay { home, .. } => (home, addr.unwrap_or_default()),
    };
    let dial = async || peer::dial_on_demand(relay, &home, &addr, calls).await;
    match dir.link_to(&relay.mesh, &home, dial).await {
        Ok(opener) => Ok(opener),
        Err(error) => {
            let error = error.to_string();
            // The record may be stale: its relay died and the lease ran out.
            let number = to.clone();
            let e = match dir.fetch(&relay.mesh, &hand_over, to).await {
                Ok(None) => RouteError::HomeGone {
                    number,
                    home,
                    error,
                },
                _ => RouteError::HomeUnreachable {
                    number,
                    home,
                    addr,
                    error,
                },
            };
            Err(e.into())
        }
    }
}

/// Writes local renewals as they come and every record each third of the
/// lease, and again at once after a failover (Redis coming back, a cluster
/// or Sentinel naming other masters), until `dir.stop` fires (then writes
/// what is left, briefly).
pub async fn keep_leases(relay: Arc<Relay>) {
    let Some(dir) = relay.redis() else { return };
    let mut tick = tokio::time::interval(dir.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut topology_tick = tokio::time::interval(TOPOLOGY_CHECK);
    topology_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Who held the data at the last check (None: not known yet, or one server).
    let mut topology: Option<String> = None;
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    // Everything first: records written before a restart carry the old address.
    let mut full = true;
    loop {
        if !full {
            tokio::select! {
                biased;
                _ = dir.stop.cancelled() => break,
                // notify_one keeps a permit when nobody waits: a renewal
                // made while a write was in flight is not missed.
                _ = dir.wake.notified() => {}
                _ = tick.tick() => full = true,
                _ = topology_tick.tick() => {
                    if !failed_over(dir, &mut topology).await {
                        continue;
                    }
                    dir.resubscribe.notify_one();
                    full = true;
                }
            }
        }
        match dir.sync_revocations(full).await {
            Ok(revs) if !revs.is_empty() => {
                relay.revoke(revs, Some("redis"));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "directory: revocations not synced; retrying"),
        }
        let result = if full {
            dir.write_all(&relay.mesh).await
        } else {
            let numbers: Vec<Number> = lock(&dir.dirty).drain().collect();
            dir.write(&relay.mesh, numbers).await
        };
        match result {
            Ok(()) => {
                dir.set_health(Health::Up);
                full = false;
                backoff.reset();
            }
            Err(e) => {
                dir.backend.failed();
                dir.set_health(Health::Down(e.to_string()));
                // Whatever was pending is rewritten in full once Redis answers.
                full = true;
                tokio::select! {
                    _ = dir.stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff.next_pause()) => {}
                }
            }
        }
    }
    // The last renewals (devices going offline as links close).
    let numbers: Vec<Number> = lock(&dir.dirty).drain().collect();
    if !numbers.is_empty() {
        match tokio::time::timeout(REDIS_TIMEOUT, dir.write(&relay.mesh, numbers)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "directory: last renewals not written"),
            Err(_) => tracing::warn!("directory: last renewals not written (timeout)"),
        }
    }
}

/// Whether the masters changed since the last check (a failover): a
/// promoted replica may lack the last writes, so all are written again.
async fn failed_over(dir: &RedisDirectory, last: &mut Option<String>) -> bool {
    match dir.backend.topology().await {
        Ok(Some(now)) => {
            let changed = last.as_ref().is_some_and(|l| *l != now);
            if changed {
                tracing::info!(
                    masters = %now,
                    "directory: redis masters changed (failover); writing every local record again"
                );
            }
            *last = Some(now);
            changed
        }
        Ok(None) => false,
        Err(e) => {
            // Down for now; the writes say so, and the next check sees
            // where the data went.
            tracing::debug!(error = %e, "directory: cannot tell the redis masters");
            false
        }
    }
}

/// Follows the renewals channel into the cache until the relay closes;
/// after each (re)subscription, reads every record once.
pub async fn follow_renewals(relay: Arc<Relay>) {
    let Some(dir) = relay.redis() else { return };
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        let ended = tokio::select! {
            _ = relay.closing.cancelled() => return,
            e = follow_once(&relay, dir, &mut backoff) => e,
        };
        tracing::debug!(error = %ended, "directory: renewals subscription ended; resubscribing");
        tokio::select! {
            _ = relay.closing.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_pause()) => {}
        }
    }
}

/// Follows the channel until the subscription ends; returns why.
async fn follow_once(relay: &Relay, dir: &RedisDirectory, backoff: &mut Backoff) -> DirectoryError {
    // On a cluster each call names the next node: a PUBLISH reaches every
    // node, and a dead node is left behind.
    let client = match dir.backend.subscriber().await {
        Ok(c) => c,
        Err(e) => {
            dir.backend.failed();
            return e.into();
        }
    };
    let mut pubsub = match tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            dir.backend.failed();
            return e.into();
        }
        Err(_) => return DirectoryError::Timeout,
    };
    if let Err(e) = pubsub.subscribe(&dir.channel).await {
        return e.into();
    }
    // Subscribed before the scan, so no renewal falls between the two.
    let hand_over = hand_over(relay);
    match dir.resync(&relay.mesh, &hand_over).await {
        Ok(n) => {
            tracing::info!(records = n, channel = %dir.channel, "directory: subscribed to renewals; cache refreshed")
        }
        Err(e) => return e,
    }
    backoff.reset();
    let mut messages = pubsub.on_message();
    loop {
        let msg = tokio::select! {
            m = messages.next() => match m {
                Some(m) => m,
                None => return DirectoryError::Closed,
            },
            // The masters changed: the node subscribed at may be cut off
            // without its connection closing (a dead host sends no reset).
            _ = dir.resubscribe.notified() => return DirectoryError::Failover,
        };
        let record = msg
            .get_payload::<String>()
            .map_err(|e| e.to_string())
            .and_then(|json| {
                serde_json::from_str::<DirectoryRecord>(&json).map_err(|e| e.to_string())
            });
        match record {
            Ok(r) => dir.learn(&relay.mesh, &hand_over, &r, Source::Heard),
            Err(e) => tracing::warn!(error = %e, "unreadable renewal on {}; ignored", dir.channel),
        }
    }
}
