//! Finding the faxmesh binaries the tests run.
//!
//! Cargo sets `CARGO_BIN_EXE_<name>` only for a package's own binaries, and
//! relayd, gatewayd, faxsend and faxrecv live in other packages. So, on first
//! use (once per test process, behind a `OnceLock`), the harness runs
//!
//! ```text
//! cargo build --bins -p relayd -p gatewayd -p faxsend -p faxrecv \
//!       --target-dir <target> [--release | --profile <name>] [--target <triple>]
//! ```
//!
//! with the profile, target directory and target triple of the running test
//! binary, read from its own path (`<target>/[<triple>/]<profile>/deps/<exe>`),
//! and `$CARGO` (set by `cargo test`) or else `cargo` on the PATH. The paths
//! come from cargo's own `--message-format=json` artifact messages, which in
//! the default layout are `<target>/<profile>/<name>`. This guarantees that
//! the test command itself builds the binaries it runs, never a stale copy
//! left by an earlier `cargo build`. The one exception is deliberate:
//! [`DAEMONS_FROM`] names another build's daemons, for benchmarks that
//! compare two commits in one run.
//!
//! The nested build runs without the variables cargo set for the test
//! binary (`CARGO_PKG_NAME` and the like): inherited, they made ring's build
//! script rerun, so every test run rebuilt the daemons twice over.
//!
//! This does not deadlock on cargo's build lock: `cargo test` releases the
//! target directory's lock once compilation is over, before it runs the test
//! binaries, so the nested build takes it freely. It is quick, too: `cargo
//! test -p faxmesh-tests` has just compiled `common` for the harness, and the
//! nested build usually only links the four binaries (or finds them fresh).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The packages whose binaries the tests run; each has one binary of the same name.
const PACKAGES: [&str; 4] = ["relayd", "gatewayd", "faxsend", "faxrecv"];

/// A directory holding relayd and gatewayd built from another commit: the
/// harness runs those daemons instead of this tree's (the devices still run
/// this tree's code), so a benchmark can put two builds side by side.
pub const DAEMONS_FROM: &str = "FAXMESH_DAEMONS_FROM";
const DAEMONS: [&str; 2] = ["relayd", "gatewayd"];

/// The path of a freshly built faxmesh binary: `relayd`, `gatewayd`,
/// `faxsend` or `faxrecv`. Builds them all on the first call.
///
/// # Panics
///
/// When the build fails (its errors are on stderr) or `name` is not one of the four.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(DAEMONS_FROM)
        && DAEMONS.contains(&name)
    {
        return Path::new(&dir).join(name);
    }
    static BUILT: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    let built = BUILT.get_or_init(|| build().unwrap_or_else(|e| panic!("{e}")));
    built
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("no faxmesh binary named {name}; known: {PACKAGES:?}"))
}

/// Where the running test binary was built: target directory, profile, triple.
#[derive(Debug, PartialEq, Eq)]
struct BuildLayout {
    target_dir: PathBuf,
    profile: String,
    triple: Option<String>,
}

impl BuildLayout {
    /// Reads `<target>/[<triple>/]<profile>/deps/<exe>`. A cross build has a
    /// triple directory between the target directory (marked by cargo's
    /// CACHEDIR.TAG) and the profile directory.
    fn of(exe: &Path) -> Result<BuildLayout, String> {
        let bad = || {
            format!(
                "cannot tell the cargo profile from the test binary's path {}: \
                 expected <target>/<profile>/deps/<exe>",
                exe.display()
            )
        };
        let deps = exe.parent().ok_or_else(bad)?;
        if deps.file_name().is_none_or(|n| n != "deps") {
            return Err(bad());
        }
        let profile_dir = deps.parent().ok_or_else(bad)?;
        let profile = name_of(profile_dir).ok_or_else(bad)?;
        let above = profile_dir.parent().ok_or_else(bad)?;
        if above.join("CACHEDIR.TAG").exists() {
            return Ok(BuildLayout {
                target_dir: above.to_owned(),
                profile,
                triple: None,
            });
        }
        let target_dir = above.parent().ok_or_else(bad)?;
        if !target_dir.join("CACHEDIR.TAG").exists() {
            return Err(bad());
        }
        Ok(BuildLayout {
            target_dir: target_dir.to_owned(),
            profile,
            triple: Some(name_of(above).ok_or_else(bad)?),
        })
    }

    /// The cargo flags that select this profile: the `debug` directory is
    /// the dev (and test) profile, `release` the release (and bench) one,
    /// any other directory a custom profile of that name.
    fn profile_args(&self) -> Vec<String> {
        match self.profile.as_str() {
            "debug" => vec![],
            "release" => vec!["--release".into()],
            other => vec!["--profile".into(), other.into()],
        }
    }
}

fn name_of(p: &Path) -> Option<String> {
    p.file_name()?.to_str().map(str::to_owned)
}

fn build() -> Result<Vec<(String, PathBuf)>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let layout = BuildLayout::of(&exe)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "build",
        "--bins",
        "--message-format=json-render-diagnostics",
    ]);
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    cmd.arg("--target-dir").arg(&layout.target_dir);
    cmd.args(layout.profile_args());
    if let Some(triple) = &layout.triple {
        cmd.args(["--target", triple]);
    }
    // The workspace is the one the tests belong to, wherever cargo test was run from.
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_for_the_running_test) {
            cmd.env_remove(name);
        }
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    let mut found = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
            if let Some(artifact) = executable(&line) {
                found.push(artifact);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the faxmesh binaries failed ({status}): {shown}"
        ));
    }
    for p in PACKAGES {
        if !found.iter().any(|(n, _)| n == p) {
            return Err(format!("cargo built no executable named {p}: {shown}"));
        }
    }
    Ok(found)
}

/// Whether `name` is one of the variables cargo sets for the test binary it
/// runs (`CARGO_PKG_NAME=faxmesh-tests`, `CARGO_MANIFEST_DIR`, ...), which
/// the nested build must not inherit: ring's build script reruns when
/// `CARGO_PKG_NAME` or `CARGO_MANIFEST_DIR` changes, so with them the nested
/// build rebuilt ring and everything above it (rustls, redis, lettre and
/// the four daemons: 11 minutes in the bench profile), and the next `cargo
/// build` or `cargo bench` rebuilt it all again. cargo's own settings
/// (`CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_PROFILE_*`, ...) stay.
fn set_for_the_running_test(name: &str) -> bool {
    const SET: [&str; 8] = [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    SET.iter().any(|prefix| name.starts_with(prefix))
}

/// The binary name and path from a `compiler-artifact` message that carries an executable.
fn executable(line: &str) -> Option<(String, PathBuf)> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg["reason"] != "compiler-artifact" {
        return None;
    }
    let path = msg["executable"].as_str()?;
    let name = msg["target"]["name"].as_str()?;
    Some((name.to_owned(), PathBuf::from(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nested_build_drops_what_cargo_set_for_the_test_and_keeps_cargos_settings() {
        for set in [
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_LINKS",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_EXE_relayd",
            "CARGO_TARGET_TMPDIR",
            "OUT_DIR",
        ] {
            assert!(set_for_the_running_test(set), "{set} is inherited");
        }
        for kept in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
            "CARGO_PROFILE_DEV_DEBUG",
            "CARGO_BUILD_JOBS",
            "RUSTFLAGS",
        ] {
            assert!(!set_for_the_running_test(kept), "{kept} is dropped");
        }
    }

    #[test]
    fn layout_is_read_from_the_test_binary_path() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::create_dir_all(target.join("x86_64-unknown-linux-gnu/bench-fast/deps")).unwrap();
        std::fs::create_dir_all(target.join("release/deps")).unwrap();
        std::fs::write(target.join("CACHEDIR.TAG"), "").unwrap();

        let native = BuildLayout::of(&target.join("release/deps/calls-0123")).unwrap();
        assert_eq!(native.target_dir, target);
        assert_eq!(native.triple, None);
        assert_eq!(native.profile_args(), ["--release"]);

        let cross = target.join("x86_64-unknown-linux-gnu/bench-fast/deps/calls-0123");
        let cross = BuildLayout::of(&cross).unwrap();
        assert_eq!(cross.target_dir, target);
        assert_eq!(cross.triple.as_deref(), Some("x86_64-unknown-linux-gnu"));
        assert_eq!(cross.profile_args(), ["--profile", "bench-fast"]);

        assert!(BuildLayout::of(&target.join("release/calls")).is_err());
    }
}
