//! The chaos run (issue 19): 5 relays, 8 gateways and 40 devices in network
//! namespaces, random seeded faults, faxes all along, then the ledger check.
//! Needs root (namespaces, tmpfs mounts). Prints the report; exits 1 when
//! the ledger, the directories, the logs or the resources show a failure.
//!
//!     cargo bench -p faxmesh-tests --bench chaos -- [--seed N] [--secs S]
//!             [--senders N] [--max-pages N] [--directory] [--keep]
//!
//! Defaults: a seed from the clock (printed, so the run can be replayed),
//! 1800 s (half an hour) of faults, 8 senders, 1 to 20 pages. The logs of
//! every daemon are kept in a temp dir, printed, with `--keep` or when the
//! run fails. `--directory`: the relays share a Redis watched by Sentinel
//! (directory mode) instead of peering, and the Redis master is among the
//! things that fail.

use std::time::Duration;

use harness::chaos::{Plan, run};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| -> Option<u64> {
        let i = args.iter().position(|a| a == flag)?;
        let v = args
            .get(i + 1)
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        Some(
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag} {v}: not a whole number"))),
        )
    };
    let seed = value("--seed").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let plan = Plan {
        seed,
        length: Duration::from_secs(value("--secs").unwrap_or(1800)),
        senders: value("--senders").unwrap_or(8) as usize,
        max_pages: value("--max-pages").unwrap_or(20) as u32,
        directory: args.iter().any(|a| a == "--directory"),
    };
    let dir = tempfile::Builder::new()
        .prefix("faxmesh-chaos-")
        .tempdir()
        .expect("a temp dir");
    let report = run(&plan, dir.path()).unwrap_or_else(|e| {
        eprintln!("chaos: {e}");
        std::process::exit(2);
    });
    println!("{report}");
    let failed = !report.failures().is_empty();
    if failed || args.iter().any(|a| a == "--keep") {
        println!("logs: {}", dir.keep().display());
    }
    std::process::exit(i32::from(failed));
}

fn usage(why: &str) -> ! {
    eprintln!(
        "chaos: {why}\nusage: chaos [--seed N] [--secs S] [--senders N] [--max-pages N] [--directory] [--keep]"
    );
    std::process::exit(2);
}
