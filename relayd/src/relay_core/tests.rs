//! The relay's rules, driven without a socket: links are plain names.

use std::time::{Duration, Instant};

use common::codec::Capabilities;
use common::directory::Version;
use common::link::message::CallRefusal;
use common::number::CallId;

use super::route::{Destination, Found, RouteError, admit, route};
use super::*;

type Core = RelayCore<&'static str>;

/// The wall clock the tests log in at (job credentials expire by it).
const UNIX_NOW: u64 = 1_800_000_000;

fn key() -> FleetKey {
    FleetKey::from_bytes(b"a fleet key for the tests")
}

fn core() -> Core {
    RelayCore::new("relay-a", key(), 3, HashMap::new())
}

fn n(s: &str) -> Number {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn login(number: &str, generation: u32, receive: bool) -> Login {
    let number = n(number);
    Login {
        secret: key().device_secret_gen(&number, generation),
        number,
        receive: receive.then(Capabilities::default),
    }
}

fn wrong_secret(number: &str) -> Login {
    Login {
        secret: "not the secret".into(),
        ..login(number, 0, true)
    }
}

fn outcome(answer: &LoginAnswer<&'static str>) -> LoginOutcome {
    match &answer.reply {
        Control::LoginResult { outcome, .. } => outcome.clone(),
        other => panic!("not a login result: {other:?}"),
    }
}

fn kicked(link: &'static str, number: &str, reason: &str) -> Effect<&'static str> {
    Effect::Tell(
        link,
        Control::Kicked {
            number: n(number),
            reason: reason.into(),
        },
    )
}

fn online(number: &str, gateway: Option<&str>) -> Effect<&'static str> {
    Effect::Renew(Renewal::Online {
        number: n(number),
        gateway: gateway.map(str::to_owned),
        capabilities: Capabilities::default(),
    })
}

fn offline(number: &str) -> Effect<&'static str> {
    Effect::Renew(Renewal::Offline(n(number)))
}

fn rec(number: &str, home: &str, online: bool) -> ConnectionInfo {
    ConnectionInfo {
        number: n(number),
        home_relay: home.into(),
        gateway: None,
        capabilities: None,
        login_time: 0,
        version: Version {
            counter: 1,
            origin: home.into(),
        },
        online,
    }
}

#[test]
fn logins_are_answered_by_their_secret_and_generation() {
    let now = Instant::now();
    let revoked: HashMap<Number, u32> = [(n("1003"), 2)].into();
    let mut core: Core = RelayCore::new("relay-a", key(), 0, revoked);
    let link = core.link_up("gw1", ip("10.0.0.1"), Some("gw1".into()));
    let cases: &[(Login, &str, LoginOutcome)] = &[
        (
            login("1002", 0, true),
            "accepted",
            LoginOutcome::Accepted {
                relay: "relay-a".into(),
            },
        ),
        (
            wrong_secret("1002"),
            "refused",
            LoginOutcome::Refused(LoginRefusal::BadSecret),
        ),
        (
            login("1003", 1, true),
            "revoked",
            LoginOutcome::Refused(LoginRefusal::Revoked {
                generation: 1,
                minimum: 2,
            }),
        ),
        (
            login("1003", 2, false),
            "accepted",
            LoginOutcome::Accepted {
                relay: "relay-a".into(),
            },
        ),
    ];
    for (login, result, want) in cases {
        let answer = core.login(link, login, now, UNIX_NOW);
        assert_eq!(answer.result, *result, "{login:?}");
        assert_eq!(outcome(&answer), *want, "{login:?}");
    }
    assert!(core.may_call_as(link, &n("1002")));
    assert!(
        core.may_call_as(link, &n("1003")),
        "send-only logins may call"
    );
    assert_eq!(core.receiver(&n("1002")), Some("gw1"));
    assert_eq!(core.receiver(&n("1003")), None, "send-only never receives");
}

#[test]
fn a_receiving_login_goes_online_and_the_newest_login_wins() {
    let now = Instant::now();
    let mut core = core();
    let a = core.link_up("device-a", ip("10.0.0.1"), None);
    let b = core.link_up("gw2", ip("10.0.0.2"), Some("gw2".into()));

    let first = core.login(a, &login("1002", 0, true), now, UNIX_NOW);
    assert_eq!(first.effects, vec![online("1002", None)]);

    let second = core.login(b, &login("1002", 0, true), now, UNIX_NOW);
    assert_eq!(
        second.effects,
        vec![
            kicked(
                "device-a",
                "1002",
                "number 1002 logged in again via gateway gw2"
            ),
            online("1002", Some("gw2")),
        ]
    );
    assert_eq!(core.receiver(&n("1002")), Some("gw2"));
    // The replaced link no longer receives: losing it changes nothing.
    assert_eq!(core.link_lost(a), vec![]);
    // Logging in again on the same link is no kick.
    let again = core.login(b, &login("1002", 0, true), now, UNIX_NOW);
    assert_eq!(again.effects, vec![online("1002", Some("gw2"))]);
}

#[test]
fn logouts_and_lost_links_take_receivers_offline() {
    let now = Instant::now();
    let mut core = core();
    let link = core.link_up("gw1", ip("10.0.0.1"), Some("gw1".into()));
    for number in ["1002", "1003"] {
        core.login(link, &login(number, 0, true), now, UNIX_NOW);
    }
    core.login(link, &login("1004", 0, false), now, UNIX_NOW);

    assert_eq!(core.logout(link, &n("1002")), vec![offline("1002")]);
    assert!(!core.may_call_as(link, &n("1002")));
    assert_eq!(core.logout(link, &n("1004")), vec![], "it never received");
    assert_eq!(core.online_count(), 1);

    assert_eq!(core.link_lost(link), vec![offline("1003")]);
    assert_eq!(core.online_count(), 0);
    assert_eq!(core.link_lost(link), vec![], "a link is lost once");
    // A login arriving after its link went is refused, not recorded.
    let late = core.login(link, &login("1003", 0, true), now, UNIX_NOW);
    assert_eq!(late.result, "refused");
    assert_eq!(core.receiver(&n("1003")), None);
}

#[test]
fn failed_logins_are_throttled_per_address_and_per_number_behind_a_gateway() {
    let now = Instant::now();
    let mut core = core(); // 3 failures per minute
    let device = core.link_up("device", ip("10.0.0.9"), None);
    let gateway = core.link_up("gw1", ip("10.0.0.1"), Some("gw1".into()));
    for _ in 0..3 {
        assert_eq!(
            core.login(device, &wrong_secret("1002"), now, UNIX_NOW)
                .result,
            "refused"
        );
        assert_eq!(
            core.login(gateway, &wrong_secret("1002"), now, UNIX_NOW)
                .result,
            "refused"
        );
    }
    // Now even the right secret waits, from that address...
    let answer = core.login(device, &login("1005", 0, true), now, UNIX_NOW);
    assert_eq!(answer.result, "throttled");
    assert!(matches!(
        outcome(&answer),
        LoginOutcome::Refused(LoginRefusal::TooManyAttempts { retry_after_secs }) if retry_after_secs <= 60
    ));
    // ...but behind a gateway only for the number that failed.
    assert_eq!(
        core.login(gateway, &login("1002", 0, true), now, UNIX_NOW)
            .result,
        "throttled"
    );
    assert_eq!(
        core.login(gateway, &login("1003", 0, true), now, UNIX_NOW)
            .result,
        "accepted"
    );
    // A minute later the address may try again.
    let later = now + Duration::from_secs(61);
    assert_eq!(
        core.login(device, &login("1005", 0, true), later, UNIX_NOW)
            .result,
        "accepted"
    );
}

#[test]
fn a_revocation_kicks_older_logins_only_and_is_spread_once() {
    let now = Instant::now();
    let mut core = core();
    let old = core.link_up("old", ip("10.0.0.1"), None);
    let new = core.link_up("new", ip("10.0.0.2"), None);
    core.login(old, &login("1002", 0, false), now, UNIX_NOW);
    core.login(new, &login("1002", 1, true), now, UNIX_NOW);
    let rev = Revocation {
        number: n("1002"),
        min_generation: 1,
    };

    let (effects, kicked) = core.revoke(vec![rev.clone()], Some("relay-b"));
    assert_eq!(kicked, 1);
    assert_eq!(
        effects,
        vec![
            kicked_revoked("old", "1002", 0, 1),
            Effect::Revoked {
                raised: vec![rev.clone()],
                from: Some("relay-b".into()),
            },
        ]
    );
    assert!(!core.may_call_as(old, &n("1002")));
    assert!(core.may_call_as(new, &n("1002")));
    assert_eq!(core.receiver(&n("1002")), Some("new"));

    // Again, or lower: nothing rises, nothing is spread (floods end).
    let (effects, kicked) = core.revoke(vec![rev, lower("1002", 0)], None);
    assert_eq!((effects, kicked), (vec![], 0));
    assert_eq!(core.revocations(), vec![lower("1002", 1)]);

    // Revoking the receiver's generation takes the number offline.
    let (effects, kicked) = core.revoke(vec![lower("1002", 2)], None);
    assert_eq!(kicked, 1);
    assert_eq!(effects[0], kicked_revoked("new", "1002", 1, 2));
    assert_eq!(effects[1], offline("1002"));
    assert_eq!(core.minimum(&n("1002")), 2);
}

/// The credential a relay issues on `link` for a job of `number`.
fn issued(
    core: &Core,
    link: LinkId,
    number: &str,
    job: &CallId,
    expires: u64,
) -> Result<String, String> {
    match core.issue_job_credential(link, &n(number), job, expires, UNIX_NOW) {
        Control::JobCredential {
            outcome: CredentialOutcome::Issued { credential },
            ..
        } => Ok(credential),
        Control::JobCredential {
            outcome: CredentialOutcome::Refused { reason },
            ..
        } => Err(reason),
        other => panic!("not a credential answer: {other:?}"),
    }
}

#[test]
fn job_credentials_place_calls_until_expiry_or_revocation() {
    let now = Instant::now();
    let mut core = core();
    let gw = core.link_up("gw1", ip("10.0.0.1"), Some("gw1".into()));
    let later_gw = core.link_up("gw1-again", ip("10.0.0.1"), Some("gw1".into()));
    let job = CallId::random();
    let expires = UNIX_NOW + 3 * 3600;
    assert_eq!(
        issued(&core, gw, "1001", &job, expires),
        Err("1001 is not logged in on this link".into())
    );
    core.login(gw, &login("1001", 1, false), now, UNIX_NOW);
    for (when, why) in [
        (UNIX_NOW, "the job's kill time has passed"),
        (
            UNIX_NOW + 8 * 86_400,
            "the job's kill time is more than 7 days ahead",
        ),
    ] {
        assert_eq!(issued(&core, gw, "1001", &job, when), Err(why.into()));
    }
    let credential = issued(&core, gw, "1001", &job, expires).unwrap();

    // Later, on another link, the gateway logs in with it: send-only.
    let with = |secret: &str, receive: bool| Login {
        secret: secret.to_owned(),
        ..login("1001", 0, receive)
    };
    let answer = core.login(later_gw, &with(&credential, false), now, UNIX_NOW + 60);
    assert_eq!(
        outcome(&answer),
        LoginOutcome::Accepted {
            relay: "relay-a".into()
        }
    );
    assert!(
        answer.effects.is_empty(),
        "a send-only login renews nothing"
    );
    assert!(core.may_call_as(later_gw, &n("1001")));
    assert_eq!(
        issued(&core, later_gw, "1001", &CallId::random(), expires),
        Err("1001 logged in with a job credential, which issues no other".into())
    );
    // Not to receive, not after its expiry, not for another number.
    let refused = |answer: &LoginAnswer<&'static str>| match outcome(answer) {
        LoginOutcome::Refused(LoginRefusal::Other(why)) => why,
        other => panic!("{other:?}"),
    };
    let receive = core.login(later_gw, &with(&credential, true), now, UNIX_NOW);
    assert!(
        refused(&receive).contains("only places calls"),
        "{receive:?}"
    );
    let expired = core.login(later_gw, &with(&credential, false), now, expires);
    assert!(refused(&expired).contains("expired"), "{expired:?}");
    let other = Login {
        secret: credential.clone(),
        ..login("1002", 0, false)
    };
    let other = core.login(later_gw, &other, now, UNIX_NOW);
    assert!(refused(&other).contains("not for this number"), "{other:?}");

    // A revocation of generation 1 voids it like the secret.
    core.revoke(vec![lower("1001", 2)], None);
    assert!(!core.may_call_as(later_gw, &n("1001")));
    let revoked = core.login(later_gw, &with(&credential, false), now, UNIX_NOW);
    assert_eq!(
        outcome(&revoked),
        LoginOutcome::Refused(LoginRefusal::Revoked {
            generation: 1,
            minimum: 2
        })
    );
}

fn lower(number: &str, min_generation: u32) -> Revocation {
    Revocation {
        number: n(number),
        min_generation,
    }
}

fn kicked_revoked(link: &'static str, number: &str, had: u32, min: u32) -> Effect<&'static str> {
    kicked(
        link,
        number,
        &format!(
            "the secret for {number} was revoked (generation {had} is below {min}); ask the operator for a new one"
        ),
    )
}

#[test]
fn the_home_rule_corrects_records_about_this_relay() {
    let now = Instant::now();
    let mut core = core();
    let link = core.link_up("gw1", ip("10.0.0.1"), Some("gw1".into()));
    core.login(link, &login("1002", 0, true), now, UNIX_NOW);
    let cases: &[(ConnectionInfo, Vec<Effect<&'static str>>)] = &[
        // A record saying a device is online here while none is (writes
        // lost in a crash): corrected to offline.
        (rec("1009", "relay-a", true), vec![offline("1009")]),
        // Online here and it is: nothing to correct.
        (rec("1002", "relay-a", true), vec![]),
        // Offline at another relay, newer (its old home came back after the
        // device moved here): the local device keeps the number, announced
        // again so that its login wins.
        (
            rec("1002", "relay-b", false),
            vec![online("1002", Some("gw1"))],
        ),
        // Online at another relay, newer: the local device is kicked.
        (
            rec("1002", "relay-b", true),
            vec![kicked(
                "gw1",
                "1002",
                "number 1002 logged in again at relay relay-b",
            )],
        ),
        // Already handed over: nothing more to do.
        (rec("1002", "relay-b", true), vec![]),
    ];
    for (record, want) in cases {
        assert_eq!(
            &core.records_stored(std::slice::from_ref(record)),
            want,
            "{record:?}"
        );
    }
    assert_eq!(core.receiver(&n("1002")), None);
    assert!(core.may_call_as(link, &n("1002")), "it may still send");
}

#[test]
fn going_offline_changes_only_online_records_homed_here() {
    let cases = [
        (Some(rec("1", "relay-a", true)), true),
        (Some(rec("1", "relay-a", false)), false),
        (Some(rec("1", "relay-b", true)), false),
        (None, false),
    ];
    for (record, changes) in cases {
        let fixed = offline_record(record.clone(), "relay-a");
        assert_eq!(fixed.is_some(), changes, "{record:?}");
        if let Some(fixed) = fixed {
            assert!(!fixed.online);
        }
    }
}

fn request(from: &str, via: &[&str]) -> common::link::message::CallRequest {
    common::link::message::CallRequest {
        call_id: CallId::random(),
        from: n(from),
        to: n("1002"),
        pages: 1,
        bytes: 10,
        via: via.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn calls_are_admitted_unless_draining_looping_or_from_a_stranger() {
    let cases = [
        (false, &[][..], Some(true), Ok(())),
        (false, &[], None, Ok(())),
        (true, &[], Some(true), Err("relay relay-a is shutting down")),
        (
            false,
            &["relay-b", "relay-a"],
            None,
            Err("routing loop: the call came back to relay relay-a"),
        ),
        (
            false,
            &[],
            Some(false),
            Err("1001 is not logged in on this link"),
        ),
    ];
    for (draining, via, logged_in, want) in cases {
        let got = admit("relay-a", draining, &request("1001", via), logged_in);
        assert_eq!(got.map_err(|e| e.to_string()), want.map_err(str::to_owned));
    }
}

#[test]
fn one_routing_decision_for_mesh_and_directory_mode() {
    let to = n("1002");
    let record = |home: &str, online: bool, next: Option<&str>| Found::Record {
        record: rec("1002", home, online),
        next_hop: next.map(str::to_owned),
    };
    let relay = |name: &str, home: &str| {
        Ok::<_, (CallRefusal, String)>(Destination::Relay {
            name: name.into(),
            home: home.into(),
        })
    };
    let refused = |reason, detail: &str| Err((reason, detail.to_owned()));
    type Want = Result<Destination<&'static str>, (CallRefusal, String)>;
    let cases: Vec<(Found, Option<&'static str>, Want)> = vec![
        (
            Found::Unknown,
            None,
            refused(CallRefusal::UnknownNumber, "1002 is not a known number"),
        ),
        // Homed here: the local link decides, whatever the record says.
        (
            record("relay-a", false, None),
            Some("gw1"),
            Ok(Destination::Local("gw1")),
        ),
        (
            record("relay-a", true, None),
            None,
            refused(CallRefusal::Offline, "1002 is offline"),
        ),
        (
            record("relay-c", false, Some("relay-b")),
            None,
            refused(CallRefusal::Offline, "1002 is offline (home relay relay-c)"),
        ),
        // Mesh: through the best path's first hop.
        (
            record("relay-c", true, Some("relay-b")),
            None,
            relay("relay-b", "relay-c"),
        ),
        (
            record("relay-c", true, None),
            None,
            refused(
                CallRefusal::Unreachable,
                "no path to relay relay-c, where 1002 is logged in",
            ),
        ),
        // Directory: straight to the home relay.
        (
            record("relay-c", true, Some("relay-c")),
            None,
            relay("relay-c", "relay-c"),
        ),
        (
            Found::DirectoryDown("connection refused".into()),
            None,
            refused(
                CallRefusal::Unreachable,
                "1002 is not cached here and the directory is unreachable (connection refused)",
            ),
        ),
    ];
    for (found, local, want) in cases {
        let got = route("relay-a", &to, found.clone(), local)
            .map_err(|e: RouteError| (e.reason(), e.to_string()));
        assert_eq!(got, want, "{found:?}");
    }
}
