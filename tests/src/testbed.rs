//! One test's world: a temp dir, a fleet key, and shortcuts to start the
//! processes of a faxmesh network in it. Each test makes its own.

use std::path::{Path, PathBuf};

use crate::fleet::Fleet;
use crate::gateway::Gateway;
use common::codec::Resolution;

use crate::images::{text_bitmap, write_text_png, write_tiff};
use crate::receiver::Receiver;
use crate::relay::Relay;
use crate::sender::FaxSend;

/// A test's temp dir and fleet.
///
/// Declare it first in a test, so it is dropped last: processes die (on
/// their own Drop) before their files go. When the test fails, the dir is
/// kept and its path printed, with every log in it.
#[derive(Debug)]
pub struct Testbed {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    fleet: Fleet,
}

impl Default for Testbed {
    fn default() -> Self {
        Testbed::new()
    }
}

impl Testbed {
    pub fn new() -> Testbed {
        // Short paths: a unix socket path must stay under about 100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("faxmesh-")
            .tempdir()
            .expect("a temp dir");
        let path = dir.path().to_owned();
        let fleet = Fleet::create(&path);
        Testbed {
            dir: Some(dir),
            path,
            fleet,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Starts relayd `name`.
    #[track_caller]
    pub fn relay(&self, name: &str) -> Relay {
        Relay::start(&self.path, &self.fleet, name)
    }

    /// Starts relayd `name` peered with `peers` and waits until every one of
    /// those links is up.
    #[track_caller]
    pub fn peered_relay(&self, name: &str, peers: &[&Relay]) -> Relay {
        let addrs: Vec<_> = peers.iter().map(|p| p.addr()).collect();
        let relay = Relay::start_peered(&self.path, &self.fleet, name, &addrs);
        for p in peers {
            relay.wait_peer_up(p.name());
        }
        relay
    }

    /// Starts gatewayd `name` towards `relay` and waits until it is linked.
    #[track_caller]
    pub fn gateway(&self, name: &str, relay: &Relay) -> Gateway {
        let mut gw = Gateway::start(&self.path, name, &[relay.addr()]);
        gw.wait_linked();
        gw
    }

    /// Starts gatewayd `name` linked to `relay` with a fax queue in its own
    /// state directory and an admin listener; returns once linked.
    #[track_caller]
    pub fn queue_gateway(&self, name: &str, relay: &Relay) -> Gateway {
        let state = self.path.join(format!("{name}-state"));
        let state = state.to_str().expect("a UTF-8 path");
        let extra = ["--state-dir", state, "--admin", "127.0.0.1:0"];
        let mut gw = Gateway::start_with(&self.path, name, &[relay.addr()], &extra);
        gw.wait_linked();
        gw
    }

    /// Starts faxrecv for `number` behind `gateway`, with `extra` flags;
    /// returns once it is logged in.
    #[track_caller]
    pub fn receiver(&self, gateway: &Gateway, number: &str, extra: &[&str]) -> Receiver {
        Receiver::start(&self.path, &self.fleet, gateway.addr(), number, extra)
    }

    /// A faxsend call from `from` (with its right secret) to `to` through
    /// `gateway`, without a tag line, so that what arrives is the files'
    /// pages exactly as [`sent_pages`](crate::images::sent_pages) encodes
    /// them.
    pub fn faxsend(&self, gateway: &Gateway, from: &str, to: &str, files: &[PathBuf]) -> FaxSend {
        self.faxsend_tagged(gateway, from, to, files)
            .arg("--no-tagline")
    }

    /// The same call as a user makes it: a tag line on every page.
    pub fn faxsend_tagged(
        &self,
        gateway: &Gateway,
        from: &str,
        to: &str,
        files: &[PathBuf],
    ) -> FaxSend {
        let secret = self.fleet.secret_file(from);
        FaxSend::new(&self.path, gateway.addr(), from, &secret, to, files)
    }

    /// A document of `n` short text pages, each different (a multi-page TIFF).
    pub fn document(&self, n: u64) -> PathBuf {
        let path = self.path.join(format!("document-{n}.tif"));
        if !path.exists() {
            let pages: Vec<_> = (1..=n)
                .map(|seed| text_bitmap(seed, 1728, 300, Resolution::Fine))
                .collect();
            write_tiff(&path, &pages);
        }
        path
    }

    /// A small one-page text document (quick to encode and send).
    pub fn note(&self) -> PathBuf {
        let path = self.path.join("note.png");
        if !path.exists() {
            write_text_png(&path, 7, 850, 400);
        }
        path
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!("--- test files kept in {}", kept.display());
        }
    }
}
