//! The chaos fleet: relays peered in a ring with chords, gateways with two
//! relays each, devices behind the gateways; every relay and gateway in a
//! network namespace of its own, devices in their gateway's. Relays keep
//! their data on a small tmpfs of their own, so that one disk can fill.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bins::bin;
use crate::daemon::Daemon;
use crate::disk::SmallDisk;
use crate::fleet::Fleet;
use crate::redis_server::{Host, RedisSentinel};

use super::delay::DelayLine;
use super::netns::{Net, Wire};
use super::schedule::Shape;

/// Relay-to-relay wires: a ring of five and two chords, so that every pair
/// of relays has at least two paths.
pub const PEER_LINKS: &[(usize, usize)] = &[(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (0, 2), (1, 3)];

pub const SHAPE: Shape = Shape {
    relays: 5,
    peer_links: PEER_LINKS,
    gateways: 8,
    devices: 40,
    directory: false,
};

/// Directory mode: the relays are not peered, and share a Redis watched by
/// Sentinel (a master, a replica, three sentinels) on a bridge they are all
/// plugged into.
pub const DIRECTORY_SHAPE: Shape = Shape {
    peer_links: &[],
    directory: true,
    ..SHAPE
};

/// Redis's address on the directory bridge, and this process's.
const REDIS_IP: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 1);
const HARNESS_IP: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 254);
/// Seconds a relay's records outlive it in Redis.
const LEASE_SECS: u64 = 6;

/// Devices per gateway at the start.
const DEVICES_PER_GATEWAY: usize = SHAPE.devices / SHAPE.gateways;

/// The port relays listen on, in their namespaces.
const RELAY_PORT: u16 = 4710;
/// The port of the delay line in front of a relay, for a gateway's first line.
const DELAY_PORT: u16 = 4711;
/// The address gateways listen on for their devices, in their namespaces.
pub const GATEWAY_ADDR: &str = "127.0.0.1:4700";
/// Size of each relay's data disk (tmpfs: only what is used takes memory).
const DISK: &str = "256m";
/// Heartbeats on every link, in seconds: a cut wire is noticed in three.
const HEARTBEAT: &str = "1";

/// One relayd.
#[derive(Debug)]
pub struct RelayNode {
    pub name: String,
    pub ns: String,
    /// The relay's own disk; the data dir is `data` on it.
    pub disk: SmallDisk,
    /// `--peer ...`, or in directory mode `--directory ...`.
    flags: Vec<String>,
    pub daemon: Option<Daemon>,
}

/// One gatewayd.
#[derive(Debug)]
pub struct GatewayNode {
    pub name: String,
    pub ns: String,
    relays: Vec<String>,
    pub daemon: Option<Daemon>,
}

/// One receiving device (faxrecv); it also sends (faxsend) as its number.
#[derive(Debug)]
pub struct DeviceNode {
    pub number: String,
    pub gateway: usize,
    /// Reads calls at 64 KiB/s.
    pub slow: bool,
    pub inbox: PathBuf,
    pub daemon: Option<Daemon>,
}

/// The whole fleet, running.
#[derive(Debug)]
pub struct Cluster {
    pub dir: PathBuf,
    pub fleet: Fleet,
    pub relays: Vec<RelayNode>,
    pub gateways: Vec<GatewayNode>,
    pub devices: Vec<DeviceNode>,
    /// Relay-to-relay wires (by [`PEER_LINKS`]), or in directory mode each
    /// relay's wire to the directory bridge.
    pub peer_wires: Vec<Wire>,
    /// Per gateway: the wire to its first relay, then to its second.
    pub uplinks: Vec<[Wire; 2]>,
    /// Per gateway: the delay line its first wire's connection runs through.
    pub delay_lines: Vec<DelayLine>,
    /// Directory mode: the Redis the relays share.
    pub redis: Option<RedisSentinel>,
    /// The port of a Redis master killed by a fault, to start again.
    pub dead_master: Option<u16>,
    net: Net,
}

impl Cluster {
    /// Builds the namespaces and wires, starts every daemon (and in
    /// `directory` mode Redis and its sentinels) and waits until every
    /// device is logged in.
    pub fn start(dir: &Path, directory: bool) -> Result<Cluster, String> {
        let mut net = Net::new()?;
        let fleet = Fleet::create(dir);
        let relay_ns: Vec<String> = (0..SHAPE.relays)
            .map(|i| net.namespace(&format!("r{i}")))
            .collect::<Result<_, _>>()?;
        let mut peer_wires = Vec::new();
        let mut flags = vec![Vec::new(); SHAPE.relays];
        let mut redis = None;
        if directory {
            let db = net.namespace("db")?;
            let bridge = net.bridge(&db, "br", REDIS_IP)?;
            net.plug("h", None, HARNESS_IP, &db, &bridge)?;
            let sentinel =
                RedisSentinel::start_on(&dir.join("redis"), &Host::namespace(&db, REDIS_IP));
            for (r, ns) in relay_ns.iter().enumerate() {
                let ip = Ipv4Addr::new(10, 202, 0, 10 + r as u8);
                peer_wires.push(net.plug(&format!("d{r}"), Some(ns), ip, &db, &bridge)?);
                flags[r] = sentinel.relay_flags(LEASE_SECS);
                flags[r].extend([
                    "--advertise".to_owned(),
                    format!("plain://{ip}:{RELAY_PORT}"),
                ]);
            }
            redis = Some(sentinel);
        } else {
            for (l, &(a, b)) in PEER_LINKS.iter().enumerate() {
                let wire = net.wire(&format!("p{l}"), &relay_ns[a], &relay_ns[b], 200, l as u8)?;
                // The lower relay dials the higher.
                flags[a].extend([
                    "--peer".to_owned(),
                    format!("plain://{}:{RELAY_PORT}", wire.ends[1].ip),
                ]);
                peer_wires.push(wire);
            }
        }
        let mut gateways = Vec::new();
        let mut uplinks = Vec::new();
        let mut delay_lines = Vec::new();
        for g in 0..SHAPE.gateways {
            let ns = net.namespace(&format!("g{g}"))?;
            let (first, second) = (g % SHAPE.relays, (g + 2) % SHAPE.relays);
            let mut relays = Vec::new();
            let mut wires = Vec::new();
            for (k, r) in [first, second].into_iter().enumerate() {
                let lo = (2 * g + k) as u8;
                let wire = net.wire(&format!("u{g}{k}"), &relay_ns[r], &ns, 201, lo)?;
                let ip = wire.ends[0].ip;
                if k == 0 {
                    // The first line runs through a delay line (none until
                    // a fault sets one).
                    let line = DelayLine::start(
                        &relay_ns[r],
                        (ip, DELAY_PORT).into(),
                        (ip, RELAY_PORT).into(),
                    )?;
                    delay_lines.push(line);
                    relays.push(format!("plain://{ip}:{DELAY_PORT}"));
                } else {
                    relays.push(format!("plain://{ip}:{RELAY_PORT}"));
                }
                wires.push(wire);
            }
            uplinks.push([wires.remove(0), wires.remove(0)]);
            gateways.push(GatewayNode {
                name: format!("gw{g}"),
                ns,
                relays,
                daemon: None,
            });
        }
        let relays = relay_ns
            .into_iter()
            .zip(flags)
            .enumerate()
            .map(|(i, (ns, flags))| {
                let disk = SmallDisk::mount(&dir.join(format!("relay-{i}.disk")), DISK)?;
                Ok(RelayNode {
                    name: format!("relay-{i}"),
                    ns,
                    disk,
                    flags,
                    daemon: None,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let devices = (0..SHAPE.devices)
            .map(|d| {
                let number = format!("{}", 2000 + d);
                let inbox = dir.join(format!("inbox-{number}"));
                DeviceNode {
                    number,
                    gateway: d / DEVICES_PER_GATEWAY,
                    slow: d % DEVICES_PER_GATEWAY == DEVICES_PER_GATEWAY - 1,
                    inbox,
                    daemon: None,
                }
            })
            .collect();
        let mut cluster = Cluster {
            dir: dir.to_owned(),
            fleet,
            relays,
            gateways,
            devices,
            peer_wires,
            uplinks,
            delay_lines,
            redis,
            dead_master: None,
            net,
        };
        for r in 0..SHAPE.relays {
            cluster.start_relay(r);
        }
        for g in 0..SHAPE.gateways {
            cluster.start_gateway(g);
        }
        for d in 0..SHAPE.devices {
            cluster.start_device(d);
        }
        for device in &mut cluster.devices {
            if let Some(daemon) = device.daemon.as_mut() {
                daemon.wait_ready();
            }
        }
        Ok(cluster)
    }

    /// The fleet's shape, as faults see it.
    pub fn shape(&self) -> &'static Shape {
        match self.redis {
            Some(_) => &DIRECTORY_SHAPE,
            None => &SHAPE,
        }
    }

    /// The relay's data directory.
    pub fn data_dir(&self, r: usize) -> PathBuf {
        self.relays[r].disk.path().join("data")
    }

    /// Starts relay `r` and waits until it is ready.
    pub fn start_relay(&mut self, r: usize) {
        let data_dir = self.data_dir(r);
        let node = &self.relays[r];
        let mut cmd = in_ns(&node.ns, "relayd");
        cmd.args(["--name", &node.name])
            .arg("--listen")
            .arg(format!("0.0.0.0:{RELAY_PORT}"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--fleet-key-file")
            .arg(self.fleet.key_file())
            .args(["--allow-plaintext", "10.0.0.0/8"])
            .args(["--heartbeat-secs", HEARTBEAT])
            .args(["--drain-secs", "1"])
            .args(&node.flags);
        let mut daemon = Daemon::spawn(&node.name, cmd, &self.dir);
        daemon.wait_ready();
        self.relays[r].daemon = Some(daemon);
    }

    /// Starts gateway `g` and waits until it is ready (not linked: its
    /// relays may be cut off).
    pub fn start_gateway(&mut self, g: usize) {
        let node = &self.gateways[g];
        let mut cmd = in_ns(&node.ns, "gatewayd");
        cmd.args(["--name", &node.name, "--listen", GATEWAY_ADDR])
            .arg("--state-dir")
            .arg(self.dir.join(format!("{}.state", node.name)))
            .args(["--heartbeat-secs", HEARTBEAT])
            .args(["--max-backoff-secs", "1"])
            .args(["--drain-secs", "1"])
            // Devices log in again after every gateway restart: do not
            // count that as an attack.
            .args(["--login-attempts-per-min", "0"]);
        for relay in &node.relays {
            cmd.arg("--relay").arg(relay);
        }
        let mut daemon = Daemon::spawn(&node.name, cmd, &self.dir);
        daemon.wait_ready();
        self.gateways[g].daemon = Some(daemon);
    }

    /// Starts device `d`'s faxrecv at its gateway; does not wait for it to
    /// log in (its gateway may be cut off).
    pub fn start_device(&mut self, d: usize) {
        let secret = self.fleet.secret_file(&self.devices[d].number);
        let device = &self.devices[d];
        let mut cmd = in_ns(&self.gateways[device.gateway].ns, "faxrecv");
        cmd.args(["--gateway", GATEWAY_ADDR, "--number", &device.number])
            .arg("--secret-file")
            .arg(&secret)
            .arg("--dir")
            .arg(&device.inbox)
            .args(["--heartbeat-secs", HEARTBEAT]);
        if device.slow {
            cmd.args(["--read-rate-kib", "64"]);
        }
        let daemon = Daemon::spawn(&format!("faxrecv-{}", device.number), cmd, &self.dir);
        self.devices[d].daemon = Some(daemon);
    }

    /// SIGKILLs relay `r`.
    pub fn kill_relay(&mut self, r: usize) {
        if let Some(mut d) = self.relays[r].daemon.take() {
            d.kill();
        }
    }

    /// SIGKILLs gateway `g`.
    pub fn kill_gateway(&mut self, g: usize) {
        if let Some(mut d) = self.gateways[g].daemon.take() {
            d.kill();
        }
    }

    /// Stops device `d` (SIGTERM: a logout).
    pub fn stop_device(&mut self, d: usize) {
        if let Some(mut daemon) = self.devices[d].daemon.take() {
            daemon.terminate();
        }
    }

    /// Moves device `d` to gateway `to` (a logout there, a login here).
    pub fn move_device(&mut self, d: usize, to: usize) {
        self.stop_device(d);
        self.devices[d].gateway = to;
        self.start_device(d);
    }

    /// Fills relay `r`'s disk (true) or frees it again.
    pub fn fill_disk(&self, r: usize, full: bool) -> Result<(), String> {
        let disk = &self.relays[r].disk;
        if full { disk.fill() } else { disk.free() }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for device in &mut self.devices {
            drop(device.daemon.take());
        }
        for gateway in &mut self.gateways {
            drop(gateway.daemon.take());
        }
        drop(self.redis.take());
        for relay in &mut self.relays {
            // Its disk is unmounted when the node drops, after this.
            drop(relay.daemon.take());
        }
        // `net` drops after this: the namespaces go, and the wires with them.
        let _ = &self.net;
    }
}

/// `ip netns exec NS <faxmesh binary>`: `ip` enters the namespace and execs
/// the binary, so the pid is the binary's.
pub fn in_ns(ns: &str, binary: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(bin(binary));
    cmd
}
