//! PDF to fax, side by side with what fax servers run, in one run:
//!
//! - speed: a long real-world PDF (the Asymptote manual: 196 pages of
//!   pdfTeX text, vector figures and raster images, from Debian's
//!   asymptote-doc) to a Group 4 fax file, whole process, against
//!   `gs -sDEVICE=tiffg4 -r204x196` (HylaFAX's converter) and
//!   `pdftoppm -mono -rx 204 -ry 196`;
//! - memory: faxsend's peak resident set on a 507-page PDF (the Asymptote
//!   and gnuplot manuals joined with `pdfunite`), from `/usr/bin/time -v`.
//!
//! `cargo bench -p faxsend --bench documents`. The manuals are unpacked from
//! their Debian packages into target/bench-docs (`apt-get download`, no root
//! needed); ghostscript, poppler-utils and time must be installed
//! (`./test.sh --deps` installs the first two; `apt-get install time`).
//! `BENCH_RUNS` sets how many runs of each tool (default 3; the best counts).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    // `cargo bench` passes --bench; a filter argument is ignored.
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let docs = manuals();
    let manual = docs.join("usr/share/doc/asymptote/asymptote.pdf");
    let joined = docs.join("joined.pdf");
    if !joined.exists() {
        let gnuplot = docs.join("usr/share/doc/gnuplot/gnuplot.pdf");
        run(Command::new("pdfunite")
            .arg(&manual)
            .arg(&gnuplot)
            .arg(&joined));
    }
    let out = tempfile::tempdir().expect("temp dir");
    let o = out.path();
    let faxsend = env!("CARGO_BIN_EXE_faxsend");
    let pages = pdf_pages(&manual);
    println!(
        "PDF to G4 fax, {pages} pages ({}), {} cores, best of {runs}:",
        manual.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let ours = best(runs, || {
        Command::new(faxsend)
            .arg(&manual)
            .args(["--resolution", "fine", "--paper", "letter", "--output"])
            .arg(o.join("faxsend.tif"))
            .env_remove("FAXMESH_SECRET")
            .status()
    });
    let gs = best(runs, || {
        Command::new("gs")
            .args([
                "-q",
                "-dNOPAUSE",
                "-dBATCH",
                "-dSAFER",
                "-sDEVICE=tiffg4",
                "-r204x196",
            ])
            .arg(format!("-sOutputFile={}", o.join("gs.tif").display()))
            .arg(&manual)
            .status()
    });
    let poppler = best(runs, || {
        Command::new("pdftoppm")
            .args(["-mono", "-rx", "204", "-ry", "196"])
            .arg(&manual)
            .arg(o.join("pp"))
            .status()
    });
    let line = |name: &str, t: Duration| {
        println!(
            "  {name:<44} {:>7.2} s  {:>6.1} pages/s  {:>5.2}x faxsend's time",
            t.as_secs_f64(),
            pages as f64 / t.as_secs_f64(),
            t.as_secs_f64() / ours.as_secs_f64()
        );
    };
    line("faxsend --output (hayro, G4 TIFF-F)", ours);
    line("gs -sDEVICE=tiffg4 -r204x196", gs);
    line("pdftoppm -mono -rx 204 -ry 196 (PBM only)", poppler);

    let big_pages = pdf_pages(&joined);
    let peak = peak_kb(
        Command::new(faxsend)
            .arg(&joined)
            .arg("--output")
            .arg(o.join("big.tif"))
            .env_remove("FAXMESH_SECRET"),
    );
    println!(
        "faxsend on {big_pages} pages ({}): peak resident {:.1} MB (/usr/bin/time -v)",
        joined.display(),
        peak as f64 / 1024.0
    );
}

/// The manuals, unpacked from their Debian packages under target/.
fn manuals() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-docs");
    std::fs::create_dir_all(&dir).expect("create target/bench-docs");
    for (package, file) in [
        ("asymptote-doc", "usr/share/doc/asymptote/asymptote.pdf"),
        ("gnuplot-doc", "usr/share/doc/gnuplot/gnuplot.pdf"),
    ] {
        if dir.join(file).exists() {
            continue;
        }
        run(Command::new("apt-get")
            .arg("download")
            .arg(package)
            .current_dir(&dir));
        let deb = std::fs::read_dir(&dir)
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{package}_")))
            })
            .expect("apt-get download left the .deb");
        run(Command::new("dpkg").arg("-x").arg(&deb).arg(&dir));
    }
    dir
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed");
}

fn pdf_pages(pdf: &Path) -> usize {
    let out = Command::new("pdfinfo")
        .arg(pdf)
        .output()
        .expect("pdfinfo runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:")?.trim().parse().ok())
        .expect("pdfinfo gives the page count")
}

/// The shortest wall time of `runs` runs.
fn best(
    runs: usize,
    mut start: impl FnMut() -> std::io::Result<std::process::ExitStatus>,
) -> Duration {
    (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            let status = start().expect("the tool runs");
            assert!(status.success(), "the tool failed");
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Peak resident set in KB of `cmd`, as `/usr/bin/time -v` reports it.
fn peak_kb(cmd: &mut Command) -> u64 {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .output()
        .expect("/usr/bin/time runs (apt-get install time)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes):")?
                .trim()
                .parse()
                .ok()
        })
        .expect("time -v reports the maximum resident set size")
}
