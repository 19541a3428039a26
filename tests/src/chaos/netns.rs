//! Linux network namespaces joined by veth pairs, with `ip` and `tc` from
//! iproute2: the chaos fleet's wires. Every name carries a per-run prefix,
//! and everything made is deleted on drop (deleting a namespace deletes the
//! veth ends inside it).

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::sys::run;

/// The namespaces and wires of one run.
#[derive(Debug)]
pub struct Net {
    prefix: String,
    namespaces: Vec<String>,
}

/// One veth pair: an end in each of two namespaces, a /24 of its own.
#[derive(Clone, Debug)]
pub struct Wire {
    pub ends: [End; 2],
}

/// One end of a [`Wire`].
#[derive(Clone, Debug)]
pub struct End {
    pub ns: String,
    pub dev: String,
    pub ip: Ipv4Addr,
}

/// Every run's names start with this, its pid and a letter: `fx1234ar0`.
const PREFIX: &str = "fx";

impl Net {
    /// Checks that namespaces can be made here (root, iproute2, a kernel
    /// that allows them), deletes what runs killed before they could clean
    /// up left behind, and starts an empty net named for this process.
    pub fn new() -> Result<Net, String> {
        // Interface names are at most 15 bytes: the pid keeps 5 digits, and
        // a letter tells apart the nets of one process (tests run at once).
        static NETS: AtomicU8 = AtomicU8::new(0);
        let letter = char::from(b'a' + NETS.fetch_add(1, Ordering::Relaxed) % 26);
        let net = Net {
            prefix: format!("{PREFIX}{}{letter}", std::process::id() % 100_000),
            namespaces: Vec::new(),
        };
        let probe = format!("{}probe", net.prefix);
        run("ip", &["netns", "add", &probe]).map_err(|e| {
            format!(
                "the chaos run needs Linux network namespaces, which cannot be made here \
                 ({e}); run it as root on Linux with iproute2 installed \
                 (apt-get install iproute2)"
            )
        })?;
        let _ = run("ip", &["netns", "del", &probe]);
        sweep_dead_runs();
        Ok(net)
    }

    /// A new namespace `PREFIX-name` with its loopback up; returns its name.
    pub fn namespace(&mut self, name: &str) -> Result<String, String> {
        let ns = format!("{}{name}", self.prefix);
        run("ip", &["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Joins namespaces `a` and `b` with a veth pair on 10.`hi`.`lo`.0/24
    /// (`a` is .1, `b` is .2); `tag` names the devices (`tag`a / `tag`b).
    pub fn wire(&mut self, tag: &str, a: &str, b: &str, hi: u8, lo: u8) -> Result<Wire, String> {
        let (dev_a, dev_b) = (
            format!("{}{tag}a", self.prefix),
            format!("{}{tag}b", self.prefix),
        );
        run(
            "ip",
            &[
                "link", "add", &dev_a, "netns", a, "type", "veth", "peer", "name", &dev_b, "netns",
                b,
            ],
        )?;
        let end = |ns: &str, dev: &str, host: u8| -> Result<End, String> {
            let ip = Ipv4Addr::new(10, hi, lo, host);
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", dev],
            )?;
            run("ip", &["-n", ns, "link", "set", dev, "up"])?;
            Ok(End {
                ns: ns.to_owned(),
                dev: dev.to_owned(),
                ip,
            })
        };
        Ok(Wire {
            ends: [end(a, &dev_a, 1)?, end(b, &dev_b, 2)?],
        })
    }

    /// A bridge `name` in namespace `ns`, up, at `ip`/24.
    pub fn bridge(&mut self, ns: &str, name: &str, ip: Ipv4Addr) -> Result<String, String> {
        let dev = format!("{}{name}", self.prefix);
        run("ip", &["-n", ns, "link", "add", &dev, "type", "bridge"])?;
        run(
            "ip",
            &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", &dev],
        )?;
        run("ip", &["-n", ns, "link", "set", &dev, "up"])?;
        Ok(dev)
    }

    /// Plugs namespace `ns` (`None`: this process's own) into `bridge` in
    /// `bridge_ns` with a veth pair; the end in `ns` gets `ip`/24.
    pub fn plug(
        &mut self,
        tag: &str,
        ns: Option<&str>,
        ip: Ipv4Addr,
        bridge_ns: &str,
        bridge: &str,
    ) -> Result<Wire, String> {
        let (dev_a, dev_b) = (
            format!("{}{tag}a", self.prefix),
            format!("{}{tag}b", self.prefix),
        );
        if ns.is_none() {
            let held = output("ip", &["-o", "addr", "show", "to", &ip.to_string()]);
            if let Some(line) = held.lines().next() {
                let dev = line.split_whitespace().nth(1).unwrap_or_default();
                return Err(format!(
                    "{ip} is already on {dev} here: another chaos run is going on \
                     (one at a time), or remove it with `ip link del {dev}`"
                ));
            }
        }
        let mut add = vec!["link", "add", &dev_a];
        if let Some(ns) = ns {
            add.extend(["netns", ns]);
        }
        add.extend(["type", "veth", "peer", "name", &dev_b, "netns", bridge_ns]);
        run("ip", &add)?;
        let a = End {
            ns: ns.unwrap_or_default().to_owned(),
            dev: dev_a,
            ip,
        };
        a.ip(&["addr", "add", &format!("{ip}/24"), "dev", &a.dev])?;
        a.ip(&["link", "set", &a.dev, "up"])?;
        run(
            "ip",
            &["-n", bridge_ns, "link", "set", &dev_b, "master", bridge],
        )?;
        run("ip", &["-n", bridge_ns, "link", "set", &dev_b, "up"])?;
        let b = End {
            ns: bridge_ns.to_owned(),
            dev: dev_b,
            ip: Ipv4Addr::UNSPECIFIED,
        };
        Ok(Wire { ends: [a, b] })
    }
}

impl End {
    /// Runs `ip ARGS` (`tc` with `program`) in this end's namespace
    /// (an empty name is this process's own).
    fn run_in(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let mut all = Vec::new();
        if !self.ns.is_empty() {
            all.extend(["-n", self.ns.as_str()]);
        }
        all.extend(args);
        run(program, &all)
    }

    fn ip(&self, args: &[&str]) -> Result<(), String> {
        self.run_in("ip", args)
    }
}

impl Wire {
    /// Cuts the wire (both ends down) or mends it.
    pub fn set_up(&self, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        for end in &self.ends {
            end.ip(&["link", "set", &end.dev, state])?;
        }
        Ok(())
    }

    /// Limits both directions to `kbit` kbit/s with a token bucket (tbf),
    /// or lifts the limit (`None`).
    pub fn limit(&self, kbit: Option<u32>) -> Result<(), String> {
        for end in &self.ends {
            match kbit {
                Some(rate) => {
                    let rate = format!("{rate}kbit");
                    end.run_in(
                        "tc",
                        &[
                            "qdisc", "replace", "dev", &end.dev, "root", "tbf", "rate", &rate,
                            "burst", "32kbit", "latency", "400ms",
                        ],
                    )?;
                }
                // No limit to lift is fine.
                None => {
                    let _ = end.run_in("tc", &["qdisc", "del", "dev", &end.dev, "root"]);
                }
            }
        }
        Ok(())
    }

    /// Makes the wire drop `percent` of the packets each way, at random, or
    /// mends it (`None`). netem, which would do this in tc, is missing from
    /// some kernels; nftables' `numgen random` is not. Both directions are
    /// dropped in the first end's namespace (on its way out and on its way
    /// in), so it works the same when the other end is a bridge port.
    pub fn lose(&self, percent: Option<u32>) -> Result<(), String> {
        let end = &self.ends[0];
        // One table per wire, named after its device: mending deletes it.
        // nft takes the commands as one argument and applies them as one
        // batch.
        let table = format!("inet {}", end.dev);
        let commands = match percent {
            Some(p) => format!(
                "add table {table}; \
                 add chain {table} out {{ type filter hook output priority 0; }}; \
                 add chain {table} in {{ type filter hook input priority 0; }}; \
                 add rule {table} out oifname \"{dev}\" numgen random mod 100 < {p} drop; \
                 add rule {table} in iifname \"{dev}\" numgen random mod 100 < {p} drop",
                dev = end.dev
            ),
            None => format!("delete table {table}"),
        };
        // nft has no `-n NS` of its own.
        let out = match end.ns.as_str() {
            "" => run("nft", &[&commands]),
            ns => run("ip", &["netns", "exec", ns, "nft", &commands]),
        };
        out.map_err(|e| format!("{e} (nft comes with nftables: apt-get install nftables)"))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.drain(..).rev() {
            let _ = run("ip", &["netns", "del", &ns]);
        }
    }
}

/// Deletes the namespaces and this namespace's interfaces of runs whose
/// process is gone (killed: no drop ran). Their addresses would shadow this
/// run's: a leftover harness end on the Redis subnet takes the route to it.
fn sweep_dead_runs() {
    let dead = |name: &str| {
        run_of(name)
            .is_some_and(|pid| pid != std::process::id() % 100_000 && !alive_with_suffix(pid))
    };
    for ns in output("ip", &["netns", "list"]).lines() {
        let name = ns.split_whitespace().next().unwrap_or_default();
        if dead(name) {
            let _ = run("ip", &["netns", "del", name]);
        }
    }
    for link in output("ip", &["-o", "link", "show"]).lines() {
        // "7: fx1550ha@if3: <...>"
        let name = link.split(':').nth(1).unwrap_or_default().trim();
        let name = name.split('@').next().unwrap_or_default();
        if dead(name) {
            let _ = run("ip", &["link", "del", name]);
        }
    }
}

/// The pid (mod 100,000) in a name this module made: `fx1550adb` is 1550.
fn run_of(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(PREFIX)?;
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    (end > 0).then(|| digits[..end].parse().ok()).flatten()
}

/// Whether a live process has a pid that is `pid` mod 100,000.
fn alive_with_suffix(pid: u32) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true;
    };
    procs.flatten().any(|p| {
        p.file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n % 100_000 == pid)
    })
}

/// Moves this thread into the namespace open as `netns`.
pub fn enter(netns: &std::fs::File) -> Result<(), String> {
    // SAFETY: setns(2) with a namespace file we hold open; it changes only
    // the calling thread's network namespace.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
    match rc {
        0 => Ok(()),
        _ => Err(format!("setns: {}", std::io::Error::last_os_error())),
    }
}

/// Runs `f` on a thread of its own inside namespace `ns`.
#[cfg(test)]
pub fn inside<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("the namespace");
    std::thread::spawn(move || {
        enter(&file).expect("setns");
        f()
    })
    .join()
    .expect("the thread in the namespace")
}

/// A command's stdout; empty if it fails.
fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::{Net, inside, run_of};

    /// How many of `n` datagrams from `a` reach `b` over `wire`.
    fn datagrams_through(a: &str, b: &str, to: std::net::Ipv4Addr, n: usize) -> usize {
        let rx = inside(b, move || UdpSocket::bind((to, 0)).expect("a socket"));
        let at = rx.local_addr().unwrap();
        let tx = inside(a, || UdpSocket::bind("0.0.0.0:0").expect("a socket"));
        // Until the neighbour is resolved the kernel keeps only a few
        // datagrams: one must arrive first (a lossy wire may drop some).
        let mut buf = [0u8; 16];
        rx.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let resolved = (0..100).any(|_| {
            let _ = tx.send_to(b"probe", at);
            rx.recv(&mut buf).is_ok()
        });
        assert!(resolved, "nothing reached {at}");
        while rx.recv(&mut buf).is_ok() {}
        rx.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..n {
                    // Paced, so that no receive buffer overflows.
                    let _ = tx.send_to(&(i as u32).to_be_bytes(), at);
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
            let mut got = 0;
            while rx.recv(&mut buf).is_ok() {
                got += 1;
            }
            got
        })
    }

    /// Needs root (namespaces), as the chaos run does.
    #[test]
    fn a_lossy_wire_drops_about_its_share_and_mends() {
        let mut net = Net::new().unwrap_or_else(|e| panic!("{e}"));
        let a = net.namespace("la").unwrap();
        let b = net.namespace("lb").unwrap();
        let wire = net.wire("lw", &a, &b, 199, 0).unwrap();
        let to = wire.ends[1].ip;
        assert_eq!(datagrams_through(&a, &b, to, 300), 300, "a clean wire");
        wire.lose(Some(50)).unwrap();
        let got = datagrams_through(&a, &b, to, 300);
        // 150 expected; binomial spread is about 9.
        assert!((90..=210).contains(&got), "{got} of 300 through a 50% wire");
        wire.lose(None).unwrap();
        assert_eq!(datagrams_through(&a, &b, to, 300), 300, "the wire mended");
    }

    #[test]
    fn a_runs_names_carry_its_pid() {
        assert_eq!(run_of("fx1550adb"), Some(1550));
        assert_eq!(run_of("fx1550bha"), Some(1550));
        assert_eq!(run_of("fx99999zr4"), Some(99999));
        // Before the letter.
        assert_eq!(run_of("fx1550db"), Some(1550));
        assert_eq!(run_of("fxdb"), None);
        assert_eq!(run_of("fx1550"), None);
        assert_eq!(run_of("eth0"), None);
        assert_eq!(run_of("lo"), None);
    }
}
