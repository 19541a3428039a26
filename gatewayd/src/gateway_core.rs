//! The gateway's decisions, without I/O: the LAN's logged-in devices (which
//! link answers calls for a number, which numbers each link may call as,
//! the logins to replay when the relay link comes back), the failed-login
//! throttle, what the relay's answers and kicks mean for the devices, what
//! a closed device link means for the relay, and whether a call goes on.
//! Events in, [`Effect`]s out; no clock, no socket, so the tests below
//! drive every rule directly. `device_link`, `uplink` and `call` move the
//! bytes.
//!
//! `H` is how the shell reaches a device link (a `LinkHandle` in gatewayd,
//! a plain value in tests).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use common::link::message::{CallRefusal, Control, Login, LoginOutcome, LoginRefusal, Refusal};
use common::number::Number;
use common::throttle::LoginThrottle;

/// Identifies one device link for the lifetime of the process.
pub type DeviceLinkId = u64;

/// What the shell must do after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<H> {
    /// Send this to a device link (a kick).
    Tell(H, Control),
    /// Send this to the relay (a logout, a login again as send-only).
    ToRelay(Control),
}

#[derive(Debug)]
struct DeviceLink<H> {
    handle: H,
    ip: IpAddr,
    /// Accepted logins on this link, kept to replay them on a new relay link.
    logins: HashMap<Number, Login>,
}

/// Why the gateway does not carry a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("the gateway is shutting down")]
    ShuttingDown,
    #[error("{number} is not logged in on this connection")]
    NotLoggedIn { number: Number },
    #[error("the gateway has no relay link")]
    NoRelay,
    #[error("{number} is not connected to gateway {gateway}")]
    NotHere { number: Number, gateway: String },
}

impl From<CallError> for Refusal {
    fn from(e: CallError) -> Refusal {
        let reason = match e {
            CallError::ShuttingDown | CallError::NoRelay => CallRefusal::Unreachable,
            CallError::NotLoggedIn { .. } => CallRefusal::NotAuthorized,
            CallError::NotHere { .. } => CallRefusal::Offline,
        };
        Refusal::new(reason, e.to_string())
    }
}

/// The gateway's live state.
#[derive(Debug)]
pub struct GatewayCore<H> {
    name: String,
    links: HashMap<DeviceLinkId, DeviceLink<H>>,
    next_link: DeviceLinkId,
    /// The device link that answers calls for each receiving number.
    receivers: HashMap<Number, DeviceLinkId>,
    /// Refused logins per device address.
    throttle: LoginThrottle<IpAddr>,
}

impl<H: Clone> GatewayCore<H> {
    pub fn new(name: &str, login_attempts_per_min: u32) -> GatewayCore<H> {
        GatewayCore {
            name: name.to_owned(),
            links: HashMap::new(),
            next_link: 0,
            receivers: HashMap::new(),
            throttle: LoginThrottle::new(login_attempts_per_min),
        }
    }

    pub fn link_up(&mut self, handle: H, ip: IpAddr) -> DeviceLinkId {
        self.next_link += 1;
        self.links.insert(
            self.next_link,
            DeviceLink {
                handle,
                ip,
                logins: HashMap::new(),
            },
        );
        self.next_link
    }

    /// Before a login goes to the relay: refused here when the device's
    /// address used up its failed logins.
    pub fn may_try_login(&self, link: DeviceLinkId, now: Instant) -> Result<(), LoginOutcome> {
        let Some(state) = self.links.get(&link) else {
            return Err(LoginOutcome::Refused(LoginRefusal::Other(
                "link closed".into(),
            )));
        };
        self.throttle
            .check(&state.ip, now)
            .map_err(|retry_after_secs| {
                LoginOutcome::Refused(LoginRefusal::TooManyAttempts { retry_after_secs })
            })
    }

    /// The relay answered a device's login. A refused secret (wrong or
    /// revoked, not a relay that is away) counts against the device's
    /// address; an accepted receiving login takes the number from any other
    /// device link here (newest login wins), which is told why.
    pub fn login_answered(
        &mut self,
        link: DeviceLinkId,
        login: Login,
        outcome: &LoginOutcome,
        now: Instant,
    ) -> Vec<Effect<H>> {
        let Some(state) = self.links.get_mut(&link) else {
            return Vec::new();
        };
        match outcome {
            LoginOutcome::Refused(LoginRefusal::BadSecret | LoginRefusal::Revoked { .. }) => {
                self.throttle.failed(&state.ip, now);
                Vec::new()
            }
            LoginOutcome::Refused(_) => Vec::new(),
            LoginOutcome::Accepted { .. } => {
                let number = login.number.clone();
                let receives = login.receive.is_some();
                state.logins.insert(number.clone(), login);
                if !receives {
                    return Vec::new();
                }
                let old = self.receivers.insert(number.clone(), link);
                match old.filter(|&old| old != link) {
                    Some(old) => self
                        .take(old, &number)
                        .map(|handle| {
                            Effect::Tell(
                                handle,
                                Control::Kicked {
                                    reason: format!(
                                        "number {number} logged in again on this gateway"
                                    ),
                                    number,
                                },
                            )
                        })
                        .into_iter()
                        .collect(),
                    None => Vec::new(),
                }
            }
        }
    }

    /// `link` no longer holds a login for `number`; its handle, to tell it.
    fn take(&mut self, link: DeviceLinkId, number: &Number) -> Option<H> {
        let state = self.links.get_mut(&link)?;
        state.logins.remove(number);
        Some(state.handle.clone())
    }

    /// The relay kicked `number` (a newer login elsewhere, or a revocation):
    /// the device that receives for it here is told, and forgotten.
    pub fn kicked(&mut self, number: &Number, reason: String) -> Vec<Effect<H>> {
        let Some(link) = self.receivers.remove(number) else {
            return Vec::new();
        };
        self.take(link, number)
            .map(|handle| {
                Effect::Tell(
                    handle,
                    Control::Kicked {
                        number: number.clone(),
                        reason,
                    },
                )
            })
            .into_iter()
            .collect()
    }

    /// The relay refused a login the gateway replayed after a reconnect
    /// (e.g. the secret was revoked meanwhile): the device must hear it
    /// rather than wait for calls that never come.
    pub fn replay_refused(&mut self, number: &Number, reason: &LoginRefusal) -> Vec<Effect<H>> {
        tracing::warn!(%number, %reason, "relay refused a replayed login");
        self.kicked(number, format!("login refused by the relay: {reason}"))
    }

    /// A device link closed: forget it, and say what the relay must hear.
    /// A number no device here uses any more is logged out; one whose
    /// receiver left while a send-only session remains is logged out and
    /// logged in again as send-only, so that session may still call.
    pub fn link_lost(&mut self, link: DeviceLinkId) -> Vec<Effect<H>> {
        let Some(state) = self.links.remove(&link) else {
            return Vec::new();
        };
        let mut numbers: Vec<Number> = state.logins.into_keys().collect();
        numbers.sort();
        let mut out = Vec::new();
        for number in numbers {
            let was_receiver = self.receivers.get(&number) == Some(&link);
            if was_receiver {
                self.receivers.remove(&number);
            }
            let remaining = self
                .links
                .values()
                .find_map(|l| l.logins.get(&number))
                .cloned();
            match remaining {
                None => out.push(Effect::ToRelay(Control::Logout { number })),
                Some(login) if was_receiver => {
                    out.push(Effect::ToRelay(Control::Logout { number }));
                    out.push(Effect::ToRelay(Control::Login(login)));
                }
                Some(_) => {}
            }
        }
        out
    }

    /// Whether a call from a device on `link` as `from` goes up to the relay.
    /// Whether `number` logged in on device link `link`.
    pub fn logged_in(&self, link: DeviceLinkId, number: &Number) -> bool {
        self.links
            .get(&link)
            .is_some_and(|l| l.logins.contains_key(number))
    }

    pub fn call_up(
        &self,
        draining: bool,
        link: DeviceLinkId,
        from: &Number,
        relay_up: bool,
    ) -> Result<(), CallError> {
        if draining {
            return Err(CallError::ShuttingDown);
        }
        if !self.logged_in(link, from) {
            return Err(CallError::NotLoggedIn {
                number: from.clone(),
            });
        }
        if !relay_up {
            return Err(CallError::NoRelay);
        }
        Ok(())
    }

    /// The device link a call from the relay to `to` goes down.
    pub fn call_down(&self, to: &Number) -> Result<H, CallError> {
        self.receivers
            .get(to)
            .and_then(|link| self.links.get(link))
            .map(|l| l.handle.clone())
            .ok_or_else(|| CallError::NotHere {
                number: to.clone(),
                gateway: self.name.clone(),
            })
    }

    /// Every login to replay on a new relay link, receivers first so a
    /// send-only session never shadows the device that answers calls.
    pub fn logins_to_replay(&self) -> Vec<Login> {
        let mut by_number: HashMap<Number, Login> = HashMap::new();
        for login in self.links.values().flat_map(|l| l.logins.values()) {
            let entry = by_number
                .entry(login.number.clone())
                .or_insert_with(|| login.clone());
            if entry.receive.is_none() && login.receive.is_some() {
                *entry = login.clone();
            }
        }
        let mut logins: Vec<Login> = by_number.into_values().collect();
        logins.sort_by(|a, b| a.number.cmp(&b.number));
        logins
    }

    /// Receiving devices logged in through this gateway.
    pub fn online_count(&self) -> usize {
        self.receivers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::codec::Capabilities;

    type Core = GatewayCore<&'static str>;

    fn n(s: &str) -> Number {
        s.parse().unwrap()
    }

    fn login(number: &str, receive: bool) -> Login {
        Login {
            number: n(number),
            secret: "s".into(),
            receive: receive.then(Capabilities::default),
        }
    }

    fn accepted() -> LoginOutcome {
        LoginOutcome::Accepted {
            relay: "relay-a".into(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn kick(link: &'static str, number: &str, reason: &str) -> Effect<&'static str> {
        Effect::Tell(
            link,
            Control::Kicked {
                number: n(number),
                reason: reason.into(),
            },
        )
    }

    #[test]
    fn the_newest_receiving_login_wins_and_the_old_device_hears_why() {
        let now = Instant::now();
        let mut core: Core = GatewayCore::new("gw1", 5);
        let a = core.link_up("a", ip("10.0.0.5"));
        let b = core.link_up("b", ip("10.0.0.6"));
        assert_eq!(
            core.login_answered(a, login("1002", true), &accepted(), now),
            vec![]
        );
        assert_eq!(
            core.login_answered(b, login("1002", true), &accepted(), now),
            vec![kick(
                "a",
                "1002",
                "number 1002 logged in again on this gateway"
            )]
        );
        assert_eq!(core.call_down(&n("1002")), Ok("b"));
        assert_eq!(
            core.call_up(false, a, &n("1002"), true),
            Err(CallError::NotLoggedIn { number: n("1002") }),
            "the replaced device keeps no login for the number"
        );
        assert_eq!(core.online_count(), 1);
    }

    #[test]
    fn refused_secrets_are_throttled_per_address_but_a_missing_relay_is_not() {
        let now = Instant::now();
        let mut core: Core = GatewayCore::new("gw1", 2);
        let link = core.link_up("a", ip("10.0.0.5"));
        let other = core.link_up("b", ip("10.0.0.6"));
        let no_relay = LoginOutcome::Refused(LoginRefusal::NoRelay);
        for _ in 0..3 {
            core.login_answered(link, login("1002", true), &no_relay, now);
        }
        assert_eq!(core.may_try_login(link, now), Ok(()));
        let bad = LoginOutcome::Refused(LoginRefusal::BadSecret);
        for _ in 0..2 {
            core.login_answered(link, login("1002", true), &bad, now);
        }
        assert!(matches!(
            core.may_try_login(link, now),
            Err(LoginOutcome::Refused(LoginRefusal::TooManyAttempts { .. }))
        ));
        assert_eq!(core.may_try_login(other, now), Ok(()), "another address");
        assert_eq!(
            core.call_down(&n("1002")),
            Err(CallError::NotHere {
                number: n("1002"),
                gateway: "gw1".into()
            })
        );
    }

    #[test]
    fn kicks_and_refused_replays_reach_the_receiving_device() {
        let now = Instant::now();
        let mut core: Core = GatewayCore::new("gw1", 5);
        let a = core.link_up("a", ip("10.0.0.5"));
        core.login_answered(a, login("1002", true), &accepted(), now);
        core.login_answered(a, login("1003", true), &accepted(), now);
        assert_eq!(
            core.kicked(
                &n("1002"),
                "number 1002 logged in again at relay relay-b".into()
            ),
            vec![kick(
                "a",
                "1002",
                "number 1002 logged in again at relay relay-b"
            )]
        );
        assert_eq!(core.kicked(&n("1002"), "again".into()), vec![], "once");
        assert_eq!(
            core.replay_refused(&n("1003"), &LoginRefusal::BadSecret),
            vec![kick(
                "a",
                "1003",
                "login refused by the relay: wrong secret for this number"
            )]
        );
        assert_eq!(core.online_count(), 0);
        assert_eq!(core.logins_to_replay(), vec![]);
    }

    #[test]
    fn a_closed_link_logs_out_or_downgrades_its_numbers() {
        let now = Instant::now();
        let mut core: Core = GatewayCore::new("gw1", 5);
        let receiver = core.link_up("faxrecv", ip("10.0.0.5"));
        let sender = core.link_up("faxsend", ip("10.0.0.6"));
        core.login_answered(receiver, login("1002", true), &accepted(), now);
        core.login_answered(receiver, login("1003", true), &accepted(), now);
        core.login_answered(sender, login("1002", false), &accepted(), now);
        // Receivers first in the replay, and one login per number.
        assert_eq!(
            core.logins_to_replay(),
            vec![login("1002", true), login("1003", true)]
        );
        assert_eq!(
            core.link_lost(receiver),
            vec![
                Effect::ToRelay(Control::Logout { number: n("1002") }),
                Effect::ToRelay(Control::Login(login("1002", false))),
                Effect::ToRelay(Control::Logout { number: n("1003") }),
            ]
        );
        assert_eq!(core.call_up(false, sender, &n("1002"), true), Ok(()));
        assert_eq!(
            core.link_lost(sender),
            vec![Effect::ToRelay(Control::Logout { number: n("1002") })]
        );
        assert_eq!(core.link_lost(sender), vec![], "a link is lost once");
    }

    #[test]
    fn calls_go_up_only_as_a_logged_in_number_with_a_relay_link() {
        let now = Instant::now();
        let mut core: Core = GatewayCore::new("gw1", 5);
        let link = core.link_up("a", ip("10.0.0.5"));
        core.login_answered(link, login("1001", false), &accepted(), now);
        let cases = [
            (false, "1001", true, Ok(())),
            (true, "1001", true, Err("the gateway is shutting down")),
            (
                false,
                "1009",
                true,
                Err("1009 is not logged in on this connection"),
            ),
            (false, "1001", false, Err("the gateway has no relay link")),
        ];
        for (draining, from, relay_up, want) in cases {
            let got = core.call_up(draining, link, &n(from), relay_up);
            assert_eq!(got.map_err(|e| e.to_string()), want.map_err(str::to_owned));
        }
        let refusal: Refusal = CallError::NoRelay.into();
        assert_eq!(refusal.reason, CallRefusal::Unreachable);
    }
}
