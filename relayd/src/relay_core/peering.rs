//! Which links to peer relays a relay keeps, without I/O. The mesh keys
//! peers, routes and versions by relay name, so a name must stand for one
//! relay: a link from a second relay of a name already linked here is
//! refused (taking it would replace the first relay's link under the same
//! name and mix both relays' routes), and so is a relay of our own name.
//! Two links between the same pair of relays (both dialed at once, or a
//! restarted relay's new link beside its old half-open one) are not a
//! clash: the duplicate rule keeps one of them.
//!
//! Relays are told apart by their instance id (`Store::instance`): made once
//! per data directory, so a restart is the same relay and another data
//! directory under the same `--name` is not.

/// A relay's instance id (see the module).
pub type Instance = u64;

/// One link to a peer relay, as the rules see it.
#[derive(Clone, Copy, Debug)]
pub struct PeerLinkView<'a> {
    /// The peer relay's name.
    pub name: &'a str,
    pub instance: Instance,
    /// The name of the relay that dialed the link (us or the peer).
    pub dialer: &'a str,
    /// The far end's address: the configured one for a link we dialed, the
    /// dialer's for a link we accepted.
    pub addr: &'a str,
}

/// Why a relay's name rules out a link to it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameClash {
    /// The peer has this relay's own name.
    #[error("relay name {name:?} is this relay's own name; give each relay its own --name")]
    OwnName { name: String },
    /// Another relay of that name is linked here now.
    #[error(
        "relay name {name:?} is already used by another relay (linked {} {addr}); give each relay its own --name",
        if *.dialed { "to" } else { "from" }
    )]
    InUse {
        name: String,
        /// The linked relay's address, and whether we dialed it.
        addr: String,
        dialed: bool,
    },
}

impl NameClash {
    /// The reason the far end is sent, for its own log: what the clash
    /// looks like from there.
    pub fn reason(&self) -> String {
        match self {
            NameClash::OwnName { name } => format!(
                "relay name {name:?} is the name of the relay there too; give each relay its own --name"
            ),
            NameClash::InUse { name, .. } => format!(
                "relay name {name:?} is already used by another relay there; give each relay its own --name"
            ),
        }
    }
}

/// Why a new link is not registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The relay's name rules it out.
    NameClash(NameClash),
    /// The same relay is already linked and that link wins the duplicate
    /// rule: the new one is closed.
    Duplicate,
}

/// What registering a new link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The first live link to that name.
    First,
    /// It replaces the live link to the same relay (to close).
    Replaces,
}

/// The name rule, for a relay `name` of instance `instance` that `me`
/// would link with while `live` is its name's live link here (if any).
/// Checked during the handshake, so the far end hears the reason, and again
/// when the link is registered.
pub fn check_name(
    me: &str,
    name: &str,
    instance: Instance,
    live: Option<&PeerLinkView<'_>>,
) -> Result<(), NameClash> {
    if name == me {
        return Err(NameClash::OwnName {
            name: name.to_owned(),
        });
    }
    match live {
        Some(old) if old.instance != instance => Err(NameClash::InUse {
            name: name.to_owned(),
            addr: old.addr.to_owned(),
            dialed: old.dialer == me,
        }),
        _ => Ok(()),
    }
}

/// The whole rule for registering `new` at relay `me`, beside `live`, the
/// live link registered under the same name (if any): the name rule, then
/// the duplicate rule. Two relays that both dial each other end up with two
/// links; both sides keep the one dialed by the relay with the smaller
/// name, so they agree without talking.
pub fn admit(
    me: &str,
    new: &PeerLinkView<'_>,
    live: Option<&PeerLinkView<'_>>,
) -> Result<Admission, Rejection> {
    check_name(me, new.name, new.instance, live).map_err(Rejection::NameClash)?;
    match live {
        None => Ok(Admission::First),
        Some(old) if new.dialer < old.dialer => Ok(Admission::Replaces),
        Some(_) => Err(Rejection::Duplicate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link<'a>(
        name: &'a str,
        instance: Instance,
        dialer: &'a str,
        addr: &'a str,
    ) -> PeerLinkView<'a> {
        PeerLinkView {
            name,
            instance,
            dialer,
            addr,
        }
    }

    #[test]
    fn a_first_link_is_taken() {
        let x = link("x", 1, "x", "127.0.0.1:1234");
        assert_eq!(admit("c", &x, None), Ok(Admission::First));
    }

    #[test]
    fn a_second_relay_of_a_linked_name_is_refused_whichever_way_it_comes() {
        // x (instance 1) dialed c; another x (instance 2) dials c.
        let first = link("x", 1, "x", "127.0.0.1:1234");
        let second = link("x", 2, "x", "127.0.0.1:5678");
        let clash = NameClash::InUse {
            name: "x".into(),
            addr: "127.0.0.1:1234".into(),
            dialed: false,
        };
        assert_eq!(
            admit("c", &second, Some(&first)),
            Err(Rejection::NameClash(clash.clone()))
        );
        assert_eq!(
            clash.to_string(),
            r#"relay name "x" is already used by another relay (linked from 127.0.0.1:1234); give each relay its own --name"#
        );
        assert_eq!(
            clash.reason(),
            r#"relay name "x" is already used by another relay there; give each relay its own --name"#
        );
        // c dialed the first b; the second b dials c. The duplicate rule
        // alone would let it replace the first ("b" < "c"): the name rule
        // comes first.
        let first = link("b", 1, "c", "plain://127.0.0.1:1234");
        let second = link("b", 2, "b", "127.0.0.1:5678");
        let Err(Rejection::NameClash(clash)) = admit("c", &second, Some(&first)) else {
            panic!("a second relay b replaced the first");
        };
        assert!(
            clash
                .to_string()
                .contains("(linked to plain://127.0.0.1:1234)"),
            "{clash}"
        );
        // And c dialing the second x while the first is linked.
        let first = link("x", 1, "x", "127.0.0.1:1234");
        let second = link("x", 2, "c", "plain://127.0.0.1:5678");
        assert!(matches!(
            admit("c", &second, Some(&first)),
            Err(Rejection::NameClash(NameClash::InUse { .. }))
        ));
        assert!(check_name("c", "x", 2, Some(&first)).is_err());
    }

    #[test]
    fn the_same_relay_again_follows_the_duplicate_rule() {
        // Both dialed at once: the link dialed by the smaller name stays.
        let theirs = link("b", 7, "b", "127.0.0.1:1234");
        let ours = link("b", 7, "c", "plain://127.0.0.1:4000");
        assert_eq!(admit("c", &theirs, Some(&ours)), Ok(Admission::Replaces));
        assert_eq!(admit("c", &ours, Some(&theirs)), Err(Rejection::Duplicate));
        // A restart (same instance) beside its old half-open link: not a clash.
        let old = link("x", 7, "x", "127.0.0.1:1234");
        let restarted = link("x", 7, "x", "127.0.0.1:5678");
        assert_eq!(check_name("c", "x", 7, Some(&old)), Ok(()));
        assert_eq!(
            admit("c", &restarted, Some(&old)),
            Err(Rejection::Duplicate)
        );
        // Once the old link is gone (no live link), the new one is taken.
        assert_eq!(admit("c", &restarted, None), Ok(Admission::First));
    }

    #[test]
    fn a_relay_of_our_own_name_is_refused() {
        let me_again = link("c", 2, "c", "127.0.0.1:5678");
        let clash = NameClash::OwnName { name: "c".into() };
        assert_eq!(
            admit("c", &me_again, None),
            Err(Rejection::NameClash(clash.clone()))
        );
        assert_eq!(
            clash.to_string(),
            r#"relay name "c" is this relay's own name; give each relay its own --name"#
        );
        assert!(
            clash
                .reason()
                .contains("is the name of the relay there too")
        );
    }
}
