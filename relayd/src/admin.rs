//! The operator's view of a running relay: a Unix socket in the data
//! directory (owner-only) answering `peers` and `directory` with JSON, and
//! the client side behind `relayd peers` and `relayd directory`.
//!
//! A socket file rather than a TCP port: it needs no extra address, lives in
//! systemd's StateDirectory, and file permissions decide who may look.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use common::routing::NextHop;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::mesh::PeerState;
use crate::relay::Relay;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("relayd.sock")
}

/// One peer as `relayd peers` shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PeerView {
    pub name: Option<String>,
    pub address: String,
    /// "up", "connecting" or "down".
    pub state: String,
    /// "dialed" (a --peer of ours) or "accepted".
    pub direction: String,
    /// Seconds in the current state.
    pub for_secs: u64,
    /// Seconds since the peer was last heard from (links that are up).
    pub last_heard_secs: Option<u64>,
    pub routes_learned: usize,
    pub last_error: Option<String>,
}

/// One number as `relayd directory` shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct EntryView {
    pub number: String,
    pub home_relay: String,
    /// "local", the peer to send calls to, or null when there is no path.
    pub next_hop: Option<String>,
    pub path: Vec<String>,
    pub version: u64,
    pub origin: String,
    pub online: bool,
    pub gateway: Option<String>,
    pub login_time: u64,
}

/// Binds the admin socket in `data_dir`: before the relay says it is
/// ready, so that `relayd directory` right after a start finds it.
pub fn bind(data_dir: &Path) -> anyhow::Result<UnixListener> {
    let path = socket_path(data_dir);
    // A socket file left by a previous run (crash, SIGKILL) would block bind.
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("cannot bind {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves the admin socket until the relay closes.
pub async fn serve(relay: Arc<Relay>, listener: UnixListener) {
    let path = socket_path(&relay.config.data_dir);
    loop {
        tokio::select! {
            _ = relay.closing.cancelled() => break,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let relay = relay.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(&relay, stream).await {
                            tracing::debug!(error = %e, "admin request failed");
                        }
                    });
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

async fn answer(relay: &Relay, stream: UnixStream) -> anyhow::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    BufReader::new(r.take(256)).read_line(&mut line).await?;
    let line = line.trim();
    let body = match line {
        "peers" => serde_json::to_vec(&peers(relay))?,
        "directory" => serde_json::to_vec(&directory(relay))?,
        _ if line.starts_with("revoke ") => serde_json::to_vec(&revoke(relay, &line[7..]))?,
        other => {
            serde_json::to_vec(&serde_json::json!({ "error": format!("unknown query '{other}'") }))?
        }
    };
    w.write_all(&body).await?;
    w.shutdown().await?;
    Ok(())
}

/// `relayd revoke NUMBER`: raises the number's minimum generation by one.
fn revoke(relay: &Relay, number: &str) -> serde_json::Value {
    let number: common::number::Number = match number.trim().parse() {
        Ok(n) => n,
        Err(e) => return serde_json::json!({ "error": format!("invalid number '{number}': {e}") }),
    };
    let min_generation = relay.core().minimum(&number).saturating_add(1);
    let rev = common::link::message::Revocation {
        number: number.clone(),
        min_generation,
    };
    let kicked = relay.revoke(vec![rev], None);
    serde_json::json!({ "number": number.to_string(), "min_generation": min_generation, "kicked": kicked })
}

fn peers(relay: &Relay) -> Vec<PeerView> {
    let now = Instant::now();
    let up = relay.mesh.peers();
    let mut out: Vec<PeerView> = Vec::new();
    for (addr, state, at) in relay.peer_status.all() {
        let (state, name, err) = match state {
            PeerState::Connecting => ("connecting", None, None),
            PeerState::Up(n) => ("up", Some(n), None),
            PeerState::Down(e) => ("down", None, Some(e)),
        };
        let live = name.as_ref().and_then(|n| up.iter().find(|p| &p.name == n));
        out.push(PeerView {
            routes_learned: name.as_ref().map(|n| relay.mesh.routes_via(n)).unwrap_or(0),
            name,
            address: addr,
            state: state.to_owned(),
            direction: "dialed".to_owned(),
            for_secs: now.duration_since(at).as_secs(),
            last_heard_secs: live.map(|p| p.last_heard_secs()),
            last_error: err,
        });
    }
    for p in up {
        if out
            .iter()
            .any(|v| v.name.as_deref() == Some(p.name.as_str()))
        {
            continue;
        }
        out.push(PeerView {
            routes_learned: relay.mesh.routes_via(&p.name),
            last_heard_secs: Some(p.last_heard_secs()),
            name: Some(p.name),
            address: p.addr,
            state: "up".to_owned(),
            direction: "accepted".to_owned(),
            for_secs: now.duration_since(p.since).as_secs(),
            last_error: None,
        });
    }
    out
}

fn directory(relay: &Relay) -> Vec<EntryView> {
    let me = &relay.config.name;
    let mut out: Vec<EntryView> = relay
        .mesh
        .records()
        .into_iter()
        // Directory mode: the table holds this relay's devices; the others
        // come from the cache below.
        .filter(|(r, _)| relay.redis().is_none() || &r.home_relay == me)
        .map(|(r, hop)| {
            let (next_hop, path) = match hop {
                Some(NextHop::Local) => (Some("local".to_owned()), vec![relay.config.name.clone()]),
                Some(NextHop::Peer { name, path }) => (Some(name), path),
                None => (None, Vec::new()),
            };
            EntryView {
                number: r.number.to_string(),
                home_relay: r.home_relay,
                next_hop,
                path,
                version: r.version.counter,
                origin: r.version.origin,
                online: r.online,
                gateway: r.gateway,
                login_time: r.login_time,
            }
        })
        .collect();
    if let Some(dir) = relay.redis() {
        // Calls go straight to the home relay: that is the next hop and path.
        out.extend(dir.cached().into_iter().map(|c| {
            let r = c.info;
            EntryView {
                number: r.number.to_string(),
                next_hop: Some(r.home_relay.clone()),
                path: vec![r.home_relay.clone()],
                home_relay: r.home_relay,
                version: r.version.counter,
                origin: r.version.origin,
                online: r.online,
                gateway: r.gateway,
                login_time: r.login_time,
            }
        }));
    }
    out.sort_by(|a, b| a.number.cmp(&b.number));
    out
}

/// Client side: asks the relay whose data directory is `data_dir`.
pub async fn query(data_dir: &Path, what: &str) -> anyhow::Result<serde_json::Value> {
    let path = socket_path(data_dir);
    let mut stream = UnixStream::connect(&path).await.with_context(|| {
        format!(
            "cannot reach a running relayd at {} (is it running with --data-dir {}?)",
            path.display(),
            data_dir.display()
        )
    })?;
    stream.write_all(format!("{what}\n").as_bytes()).await?;
    let mut body = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut body).await?;
    Ok(serde_json::from_slice(&body)?)
}

/// Prints `relayd peers` / `relayd directory` output.
pub fn print(what: &str, value: &serde_json::Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{value}");
        return Ok(());
    }
    if let Some(err) = value.get("error") {
        anyhow::bail!("relay answered: {err}");
    }
    match what {
        _ if what.starts_with("revoke ") => {
            let number = value["number"].as_str().unwrap_or("?");
            let g = &value["min_generation"];
            println!(
                "revoked every secret of {number} below generation {g} ({} device(s) disconnected); issue a new one with `relayd credential --generation {g} --fleet-key-file F {number}`",
                value["kicked"]
            );
        }
        "peers" => {
            let peers: Vec<PeerView> = serde_json::from_value(value.clone())?;
            println!(
                "{:<16} {:<22} {:<11} {:<9} {:>8} {:>11} {:>7}",
                "PEER", "ADDRESS", "STATE", "DIRECTION", "FOR(s)", "HEARD(s)", "ROUTES"
            );
            for p in peers {
                println!(
                    "{:<16} {:<22} {:<11} {:<9} {:>8} {:>11} {:>7}{}",
                    p.name.as_deref().unwrap_or("-"),
                    p.address,
                    p.state,
                    p.direction,
                    p.for_secs,
                    p.last_heard_secs
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    p.routes_learned,
                    p.last_error.map(|e| format!("  ({e})")).unwrap_or_default(),
                );
            }
        }
        _ => {
            let entries: Vec<EntryView> = serde_json::from_value(value.clone())?;
            println!(
                "{:<16} {:<14} {:<14} {:<8} {:>8} PATH",
                "NUMBER", "HOME", "NEXT HOP", "STATE", "VERSION"
            );
            for e in entries {
                println!(
                    "{:<16} {:<14} {:<14} {:<8} {:>8} {}",
                    e.number,
                    e.home_relay,
                    e.next_hop.as_deref().unwrap_or("-"),
                    if e.online { "online" } else { "offline" },
                    e.version,
                    e.path.join(" > "),
                );
            }
        }
    }
    Ok(())
}
