//! Linux network namespaces joined by veth pairs, with `ip` and `tc` from
//! iproute2: the chaos fleet's wires. Every name carries a per-run prefix,
//! and everything made is deleted on drop (deleting a namespace deletes the
//! veth ends inside it).

use std::net::Ipv4Addr;
use std::process::Command;

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

impl Net {
    /// Checks that namespaces can be made here (root, iproute2, a kernel
    /// that allows them) and starts an empty net; `prefix` should be unique
    /// on the machine (e.g. with the pid) and short: interface names are at
    /// most 15 bytes.
    pub fn new(prefix: &str) -> Result<Net, String> {
        let net = Net {
            prefix: prefix.to_owned(),
            namespaces: Vec::new(),
        };
        let probe = format!("{prefix}probe");
        run("ip", &["netns", "add", &probe]).map_err(|e| {
            format!(
                "the chaos run needs Linux network namespaces, which cannot be made here \
                 ({e}); run it as root on Linux with iproute2 installed \
                 (apt-get install iproute2)"
            )
        })?;
        let _ = run("ip", &["netns", "del", &probe]);
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
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.drain(..).rev() {
            let _ = run("ip", &["netns", "del", &ns]);
        }
    }
}

/// Runs a command to the end; its stderr is the error.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
