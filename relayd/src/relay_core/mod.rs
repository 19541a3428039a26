//! The relay's decisions, without I/O: who is logged in on which link,
//! login rules (secret, throttle, revoked generations, newest login wins),
//! revocations, the home rule, (in [`route`]) where a call goes and (in
//! [`peering`]) which links to peer relays are kept. Like
//! quinn-proto's connection: events in (a login, a logout, a link lost,
//! records from a peer or from Redis, a revocation, the time), decisions and
//! [`Effect`]s out. It reads no clock and touches no socket or disk, so the
//! tests below drive it through every rule without a network; the async
//! code around it (`link_session`, `peer`, `directory`) only moves bytes.
//!
//! `H` is how the shell reaches a link (a `LinkHandle` in relayd, a plain
//! value in tests): the core stores it per link and hands it back in
//! effects and routes, never looking inside.

pub mod limits;
pub mod peering;
pub mod route;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use common::codec::Capabilities;
use common::credential::{FleetKey, JobCredential};
use common::directory::ConnectionInfo;
use common::link::message::{
    Control, CredentialOutcome, Login, LoginOutcome, LoginRefusal, Revocation,
};
use common::number::{CallId, Number};
use common::throttle::LoginThrottle;

/// Identifies one accepted link for the lifetime of the process.
pub type LinkId = u64;

/// Who a failed login counts against: the source address, and on a gateway
/// link (many devices behind one address) also the number, so one device's
/// bad secrets do not lock out its neighbours.
pub type ThrottleKey = (IpAddr, Option<Number>);

/// The longest a job credential may live: a queued fax's kill time is at
/// most this far ahead.
pub const MAX_JOB_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// How a number logged in on a link: with the device's own secret, and/or
/// with a job credential (a gateway placing a queued fax); each with the
/// generation of the secret. Kept apart, so the device logging out does
/// not take the number from a job's call, and only the device's own login
/// gets credentials issued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LoggedIn {
    device: Option<u32>,
    job: Option<u32>,
}

impl LoggedIn {
    /// Drops the logins below generation `min`; whether the device's was one.
    fn revoke_below(&mut self, min: u32) -> Option<u32> {
        self.job = self.job.filter(|&g| g >= min);
        let below = self.device.filter(|&g| g < min);
        if below.is_some() {
            self.device = None;
        }
        below
    }

    fn is_empty(&self) -> bool {
        self.device.is_none() && self.job.is_none()
    }
}

/// What the shell must do after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<H> {
    /// Send this to a link (a kick).
    Tell(H, Control),
    /// A number homed here changed state: renew its record (stored, then
    /// announced to peers or written to Redis).
    Renew(Renewal),
    /// Revocation minimums rose: store them and pass them on to every peer
    /// but `from` (and to Redis in directory mode).
    Revoked {
        raised: Vec<Revocation>,
        from: Option<String>,
    },
}

/// A change to the record of a number homed at this relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Logged in here to receive, through `gateway` if any.
    Online {
        number: Number,
        gateway: Option<String>,
        capabilities: Capabilities,
    },
    /// No device receives for it here any more: mark it offline (if the
    /// record says it is online here).
    Offline(Number),
}

/// The answer to a login, and what else follows from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginAnswer<H> {
    pub reply: Control,
    /// The `result` label of the logins metric.
    pub result: &'static str,
    pub effects: Vec<Effect<H>>,
}

/// A link's devices and how to reach it.
#[derive(Debug)]
struct LinkState<H> {
    handle: H,
    ip: IpAddr,
    /// The gateway's name, on a gateway link.
    gateway: Option<String>,
    /// Numbers logged in on this link (which it may call as), with the
    /// secret generation each logged in with.
    numbers: HashMap<Number, LoggedIn>,
}

/// The relay's live state.
#[derive(Debug)]
pub struct RelayCore<H> {
    me: String,
    fleet_key: FleetKey,
    links: HashMap<LinkId, LinkState<H>>,
    next_link: LinkId,
    /// The link that answers calls for each receiving number, and what the
    /// device said it can take (to announce it again, see [`RelayCore::records_stored`]).
    receivers: HashMap<Number, (LinkId, Capabilities)>,
    /// Each number's lowest accepted secret generation (0 unless revoked).
    minimums: HashMap<Number, u32>,
    throttle: LoginThrottle<ThrottleKey>,
}

impl<H: Clone> RelayCore<H> {
    /// `minimums`: the revocations stored on disk.
    pub fn new(
        me: &str,
        fleet_key: FleetKey,
        login_attempts_per_min: u32,
        minimums: HashMap<Number, u32>,
    ) -> RelayCore<H> {
        RelayCore {
            me: me.to_owned(),
            fleet_key,
            links: HashMap::new(),
            next_link: 0,
            receivers: HashMap::new(),
            minimums,
            throttle: LoginThrottle::new(login_attempts_per_min),
        }
    }

    pub fn name(&self) -> &str {
        &self.me
    }

    /// A device or gateway link is up (peer links are not: they log nothing in).
    pub fn link_up(&mut self, handle: H, ip: IpAddr, gateway: Option<String>) -> LinkId {
        self.next_link += 1;
        self.links.insert(
            self.next_link,
            LinkState {
                handle,
                ip,
                gateway,
                numbers: HashMap::new(),
            },
        );
        self.next_link
    }

    /// A new id for a link the core does not track (a peer link).
    pub fn new_link_id(&mut self) -> LinkId {
        self.next_link += 1;
        self.next_link
    }

    /// A device asks to log in on `link` (with its secret, or, for a
    /// gateway placing a queued fax, with a job credential), at `now`
    /// (`unix_now` in seconds since 1970, for a job credential's expiry).
    pub fn login(
        &mut self,
        link: LinkId,
        login: &Login,
        now: Instant,
        unix_now: u64,
    ) -> LoginAnswer<H> {
        let number = &login.number;
        let refused = |reason: LoginRefusal, result| LoginAnswer {
            reply: Control::LoginResult {
                number: number.clone(),
                outcome: LoginOutcome::Refused(reason),
            },
            result,
            effects: Vec::new(),
        };
        let Some(state) = self.links.get(&link) else {
            // The link went while the login was on its way.
            return refused(LoginRefusal::Other("link closed".into()), "refused");
        };
        let (ip, gateway) = (state.ip, state.gateway.clone());
        let key = (ip, gateway.is_some().then(|| number.clone()));
        if let Err(retry_after_secs) = self.throttle.check(&key, now) {
            tracing::warn!(%number, %ip, "login refused: too many attempts");
            return refused(
                LoginRefusal::TooManyAttempts { retry_after_secs },
                "throttled",
            );
        }
        // Never log the secret itself.
        let by_job = JobCredential::is_one(&login.secret);
        let generation = if by_job {
            if login.receive.is_some() {
                let reason = "a job credential only places calls; log in with the device's secret to receive";
                return refused(LoginRefusal::Other(reason.into()), "refused");
            }
            match self.fleet_key.verify_job(number, &login.secret, unix_now) {
                Ok(job) => Some(job.generation),
                Err(e) => {
                    self.throttle.failed(&key, now);
                    tracing::warn!(%number, %ip, error = %e, "login refused: job credential");
                    return refused(LoginRefusal::Other(e.to_string()), "refused");
                }
            }
        } else {
            self.fleet_key.verify_device_gen(number, &login.secret)
        };
        let Some(generation) = generation else {
            self.throttle.failed(&key, now);
            tracing::warn!(%number, %ip, "login refused: wrong secret");
            return refused(LoginRefusal::BadSecret, "refused");
        };
        let minimum = self.minimum(number);
        if generation < minimum {
            self.throttle.failed(&key, now);
            tracing::warn!(%number, generation, minimum, "login refused: revoked secret");
            return refused(
                LoginRefusal::Revoked {
                    generation,
                    minimum,
                },
                "revoked",
            );
        }
        let mut effects = Vec::new();
        if let Some(state) = self.links.get_mut(&link) {
            let logged = state.numbers.entry(number.clone()).or_default();
            match by_job {
                true => logged.job = Some(generation),
                false => logged.device = Some(generation),
            }
        }
        if let Some(capabilities) = &login.receive {
            let old = self
                .receivers
                .insert(number.clone(), (link, capabilities.clone()))
                .map(|(old, _)| old);
            // Newest login wins: the older device is told why and stops receiving.
            if let Some(old) = old.filter(|&old| old != link)
                && let Some(old) = self.links.get(&old)
            {
                let via = gateway
                    .as_ref()
                    .map(|g| format!(" via gateway {g}"))
                    .unwrap_or_default();
                effects.push(Effect::Tell(
                    old.handle.clone(),
                    Control::Kicked {
                        number: number.clone(),
                        reason: format!("number {number} logged in again{via}"),
                    },
                ));
            }
            effects.push(Effect::Renew(Renewal::Online {
                number: number.clone(),
                gateway,
                capabilities: capabilities.clone(),
            }));
        }
        tracing::info!(%number, receives = login.receive.is_some(), "logged in");
        LoginAnswer {
            reply: Control::LoginResult {
                number: number.clone(),
                outcome: LoginOutcome::Accepted {
                    relay: self.me.clone(),
                },
            },
            result: "accepted",
            effects,
        }
    }

    /// The device behind `link` logged out.
    pub fn logout(&mut self, link: LinkId, number: &Number) -> Vec<Effect<H>> {
        if let Some(state) = self.links.get_mut(&link)
            && let Some(logged) = state.numbers.get_mut(number)
        {
            logged.device = None;
            if logged.is_empty() {
                state.numbers.remove(number);
            }
        }
        tracing::info!(%number, "logged out");
        self.drop_receiver(link, number)
            .then(|| Effect::Renew(Renewal::Offline(number.clone())))
            .into_iter()
            .collect()
    }

    /// A link went away: every number it received for goes offline.
    pub fn link_lost(&mut self, link: LinkId) -> Vec<Effect<H>> {
        let Some(state) = self.links.remove(&link) else {
            return Vec::new();
        };
        let mut gone: Vec<Number> = state
            .numbers
            .into_keys()
            .filter(|n| self.drop_receiver(link, n))
            .collect();
        gone.sort();
        gone.into_iter()
            .map(|n| Effect::Renew(Renewal::Offline(n)))
            .collect()
    }

    fn drop_receiver(&mut self, link: LinkId, number: &Number) -> bool {
        if self.receivers.get(number).map(|r| r.0) == Some(link) {
            self.receivers.remove(number);
            true
        } else {
            false
        }
    }

    /// Whether `number` logged in on `link` (so the link may call as it).
    pub fn may_call_as(&self, link: LinkId, number: &Number) -> bool {
        self.links
            .get(&link)
            .is_some_and(|s| s.numbers.contains_key(number))
    }

    /// A gateway asks for the credential of job `call_id`, queued by
    /// `number`: issued when `number` is logged in on `link` with its own
    /// secret (not itself with a job credential) and the expiry is at most
    /// [`MAX_JOB_LIFETIME_SECS`] ahead; bound to that login's generation.
    pub fn issue_job_credential(
        &self,
        link: LinkId,
        number: &Number,
        call_id: &CallId,
        expires_unix: u64,
        unix_now: u64,
    ) -> Control {
        let logged = self.links.get(&link).and_then(|s| s.numbers.get(number));
        let outcome = match logged.map(|l| l.device) {
            None => CredentialOutcome::Refused {
                reason: format!("{number} is not logged in on this link"),
            },
            Some(None) => CredentialOutcome::Refused {
                reason: format!("{number} logged in with a job credential, which issues no other"),
            },
            Some(_) if expires_unix <= unix_now => CredentialOutcome::Refused {
                reason: "the job's kill time has passed".into(),
            },
            Some(_) if expires_unix > unix_now + MAX_JOB_LIFETIME_SECS => {
                CredentialOutcome::Refused {
                    reason: format!(
                        "the job's kill time is more than {} days ahead",
                        MAX_JOB_LIFETIME_SECS / 86_400
                    ),
                }
            }
            Some(Some(generation)) if generation < self.minimum(number) => {
                CredentialOutcome::Refused {
                    reason: "secret revoked".into(),
                }
            }
            Some(Some(generation)) => CredentialOutcome::Issued {
                credential: self
                    .fleet_key
                    .issue_job(number, generation, expires_unix, call_id)
                    .to_string(),
            },
        };
        Control::JobCredential {
            call_id: call_id.clone(),
            outcome,
        }
    }

    /// The link that answers calls for `number` here, if any.
    pub fn receiver(&self, number: &Number) -> Option<H> {
        let (link, _) = self.receivers.get(number)?;
        self.links.get(link).map(|s| s.handle.clone())
    }

    /// Receiving numbers logged in here.
    pub fn online_count(&self) -> usize {
        self.receivers.len()
    }

    /// The lowest generation accepted for `number` (0 unless revoked).
    pub fn minimum(&self, number: &Number) -> u32 {
        self.minimums.get(number).copied().unwrap_or(0)
    }

    /// Every revoked generation, sorted by number (what a new peer gets).
    pub fn revocations(&self) -> Vec<Revocation> {
        let mut all: Vec<Revocation> = self
            .minimums
            .iter()
            .map(|(number, &min_generation)| Revocation {
                number: number.clone(),
                min_generation,
            })
            .collect();
        all.sort_by(|a, b| a.number.cmp(&b.number));
        all
    }

    /// Revocations from the operator (`from` None), a peer or Redis:
    /// minimums only grow (so floods end and duplicates or reordering change
    /// nothing); devices logged in here with a revoked secret are kicked and
    /// logged out. Returns the effects and how many devices were kicked.
    pub fn revoke(
        &mut self,
        revocations: Vec<Revocation>,
        from: Option<&str>,
    ) -> (Vec<Effect<H>>, usize) {
        let mut raised = Vec::new();
        for r in revocations {
            if r.min_generation > self.minimum(&r.number) {
                self.minimums.insert(r.number.clone(), r.min_generation);
                raised.push(r);
            }
        }
        let mut effects = Vec::new();
        let mut kicked = 0;
        for r in &raised {
            tracing::info!(number = %r.number, min_generation = r.min_generation, from = from.unwrap_or("operator"), "secret revoked");
            let mut ids: Vec<LinkId> = self
                .links
                .iter()
                .filter(|(_, s)| s.numbers.contains_key(&r.number))
                .map(|(&id, _)| id)
                .collect();
            ids.sort_unstable();
            for id in ids {
                let Some(state) = self.links.get_mut(&id) else {
                    continue;
                };
                let Some(logged) = state.numbers.get_mut(&r.number) else {
                    continue;
                };
                let device = logged.revoke_below(r.min_generation);
                if logged.is_empty() {
                    state.numbers.remove(&r.number);
                }
                // A job's login goes quietly; a device is told why.
                let Some(generation) = device else {
                    continue;
                };
                let reason = format!(
                    "the secret for {} was revoked (generation {generation} is below {}); ask the operator for a new one",
                    r.number, r.min_generation
                );
                effects.push(Effect::Tell(
                    state.handle.clone(),
                    Control::Kicked {
                        number: r.number.clone(),
                        reason,
                    },
                ));
                if self.drop_receiver(id, &r.number) {
                    effects.push(Effect::Renew(Renewal::Offline(r.number.clone())));
                }
                kicked += 1;
            }
        }
        if !raised.is_empty() {
            effects.push(Effect::Revoked {
                raised,
                from: from.map(str::to_owned),
            });
        }
        (effects, kicked)
    }

    /// The home rule, after records from a peer or from Redis were stored:
    /// this relay is the authority for its own devices. A newer record naming
    /// this relay as home while no such device receives here (writes lost in
    /// a crash) is corrected to offline; a newer online record at another
    /// relay takes the number from a local device, which is kicked; a newer
    /// offline record from another relay, while the device receives here, is
    /// answered with this login again (newer still). That last case is a
    /// device that moved here while its old relay was down: the old relay,
    /// back up, marks the number offline, and its Lamport counter may be
    /// past this login's, so without the answer the number stayed offline on
    /// every relay while its device was logged in (found by the chaos run).
    pub fn records_stored(&mut self, stored: &[ConnectionInfo]) -> Vec<Effect<H>> {
        let mut effects = Vec::new();
        for record in stored {
            let local = self.receivers.get(&record.number).cloned();
            if record.home_relay == self.me {
                if record.online && local.is_none() {
                    effects.push(Effect::Renew(Renewal::Offline(record.number.clone())));
                }
            } else if let Some((link, capabilities)) = local.clone()
                && !record.online
            {
                let gateway = self.links.get(&link).and_then(|s| s.gateway.clone());
                effects.push(Effect::Renew(Renewal::Online {
                    number: record.number.clone(),
                    gateway,
                    capabilities,
                }));
            } else if let Some((link, _)) = local
                && record.online
            {
                self.receivers.remove(&record.number);
                if let Some(state) = self.links.get(&link) {
                    effects.push(Effect::Tell(
                        state.handle.clone(),
                        Control::Kicked {
                            number: record.number.clone(),
                            reason: format!(
                                "number {} logged in again at relay {}",
                                record.number, record.home_relay
                            ),
                        },
                    ));
                }
            }
        }
        effects
    }
}

/// The record to store when `record`, homed here, goes offline; `None` when
/// there is nothing to change (already offline, or homed elsewhere).
pub fn offline_record(record: Option<ConnectionInfo>, me: &str) -> Option<ConnectionInfo> {
    let mut record = record?;
    if !record.online || record.home_relay != me {
        return None;
    }
    record.online = false;
    Some(record)
}

#[cfg(test)]
mod tests;
