//! The ledger check: what faxsend reported against what is in the inboxes.
//!
//! - every fax reported delivered is at its callee exactly once, pixel for pixel;
//! - a partial delivery's confirmed pages are on the callee's disk, pixel for pixel;
//! - no fax is in an inbox but its addressee's, none is stored twice under
//!   one call id, and every fax in an inbox is one the workload sent.
//!
//! Faxes whose sender gave up (or was killed) may still have arrived: the
//! callee confirmed the last page but the confirmation was lost. They count
//! as "arrived, reported failed", which is no violation; they must still be
//! whole and at the right callee.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::codec::{Bitmap, decode, read_pages};

use super::workload::Fax;

/// A fax file found in an inbox.
#[derive(Debug)]
pub struct Found {
    pub number: String,
    pub call_id: String,
    pub path: PathBuf,
    /// A `.tif.part`: a fax still arriving or cut short.
    pub part: bool,
}

/// What the check found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub delivered: usize,
    pub partial: usize,
    /// Other outcomes, by faxsend's result.
    pub failed: HashMap<String, usize>,
    /// Reported failed, but whole at the callee.
    pub arrived_unreported: usize,
    /// One line per fax not delivered: who, and why in the sender's words.
    pub failed_details: Vec<String>,
    pub lost: Vec<String>,
    pub doubled: Vec<String>,
    pub misrouted: Vec<String>,
    pub damaged: Vec<String>,
}

impl Verdict {
    pub fn violations(&self) -> Vec<&String> {
        self.lost
            .iter()
            .chain(&self.doubled)
            .chain(&self.misrouted)
            .chain(&self.damaged)
            .collect()
    }
}

/// Lists the fax files (`<id>.tif`, `<id>.tif.part`) in each inbox.
pub fn scan(inboxes: &[(String, PathBuf)]) -> Vec<Found> {
    let mut found = Vec::new();
    for (number, dir) in inboxes {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (call_id, part) = match (name.strip_suffix(".tif.part"), name.strip_suffix(".tif"))
            {
                (Some(id), _) => (id.to_owned(), true),
                (None, Some(id)) => (id.to_owned(), false),
                _ => continue,
            };
            found.push(Found {
                number: number.clone(),
                call_id,
                path: entry.path(),
                part,
            });
        }
    }
    found
}

/// Checks `faxes` against what was `found`.
pub fn check(faxes: &[Fax], found: &[Found]) -> Verdict {
    let mut v = Verdict::default();
    // Files to compare page by page, done last and on every core: decoding
    // thousands of pages is most of the check's time.
    let mut to_compare: Vec<(&Fax, &Path, usize)> = Vec::new();
    let by_id: HashMap<&str, &Fax> = faxes.iter().map(|f| (f.call_id.as_str(), f)).collect();
    let mut whole: HashMap<&str, Vec<&Found>> = HashMap::new();
    let mut parts: HashMap<&str, Vec<&Found>> = HashMap::new();
    for f in found {
        let Some(fax) = by_id.get(f.call_id.as_str()) else {
            // A queued fax whose faxsend never heard the gateway take it
            // (the gateway died after syncing the job): known by its pages.
            match faxes
                .iter()
                .find(|q| q.call_id.is_empty() && first_page_is(q, &f.path))
            {
                Some(q) if q.to == f.number && !f.part => {
                    v.arrived_unreported += 1;
                    to_compare.push((q, &f.path, q.rows.len()));
                }
                Some(q) if q.to == f.number => {}
                Some(q) => v.misrouted.push(format!(
                    "{}: queued fax {} to {} is in {}'s inbox",
                    f.path.display(),
                    q.serial,
                    q.to,
                    f.number
                )),
                None => v.misrouted.push(format!(
                    "{}: a fax the workload never sent",
                    f.path.display()
                )),
            }
            continue;
        };
        if fax.to != f.number {
            v.misrouted.push(format!(
                "{}: fax {} from {} to {} is in {}'s inbox",
                f.path.display(),
                fax.serial,
                fax.from,
                fax.to,
                f.number
            ));
        }
        let slot = if f.part { &mut parts } else { &mut whole };
        slot.entry(fax.call_id.as_str()).or_default().push(f);
    }
    for (id, files) in &whole {
        if files.len() > 1 {
            let places: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
            v.doubled.push(format!(
                "call {id} is stored {} times: {places:?}",
                files.len()
            ));
        }
        if let Some(part) = parts.get(id) {
            v.doubled.push(format!(
                "call {id} is whole and also a .part: {}",
                part[0].path.display()
            ));
        }
    }
    for fax in faxes {
        let result = fax.result();
        if fax.call_id.is_empty() {
            // Never queued as far as faxsend knows: counted above if it arrived.
            v.failed_details.push(format!(
                "fax {} ({} to {}, not queued): {result}: {}",
                fax.serial,
                fax.from,
                fax.to,
                fax.why()
            ));
            *v.failed.entry(result).or_default() += 1;
            continue;
        }
        let held = whole.get(fax.call_id.as_str()).and_then(|f| f.first());
        let part = parts.get(fax.call_id.as_str()).and_then(|f| f.first());
        match result.as_str() {
            "delivered" => {
                v.delivered += 1;
                match held {
                    None => v.lost.push(format!(
                        "fax {} ({} to {}, call {}) was reported delivered but is not at {}",
                        fax.serial, fax.from, fax.to, fax.call_id, fax.to
                    )),
                    Some(f) => to_compare.push((fax, &f.path, fax.rows.len())),
                }
            }
            "partial" => {
                v.partial += 1;
                let confirmed = fax.confirmed() as usize;
                match held.or(part) {
                    None => v.lost.push(format!(
                        "fax {} ({} to {}): {confirmed} pages reported confirmed, none at {}",
                        fax.serial, fax.from, fax.to, fax.to
                    )),
                    Some(f) => to_compare.push((fax, &f.path, confirmed)),
                }
            }
            other => {
                *v.failed.entry(other.to_owned()).or_default() += 1;
                v.failed_details.push(format!(
                    "fax {} ({} to {}, {}): {other}: {}",
                    fax.serial,
                    fax.from,
                    fax.to,
                    if fax.queued { "queued" } else { "called" },
                    fax.why()
                ));
                if let Some(f) = held {
                    v.arrived_unreported += 1;
                    to_compare.push((fax, &f.path, fax.rows.len()));
                }
            }
        }
    }
    v.damaged.extend(compare_all(&to_compare));
    v
}

/// [`compare`] for each of `files`, spread over the machine's cores.
fn compare_all(files: &[(&Fax, &Path, usize)]) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut damaged = Vec::new();
                    for &(fax, path, pages) in part {
                        compare(fax, path, pages, &mut damaged);
                    }
                    damaged
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a ledger thread"))
            .collect()
    })
}

/// Checks that the fax file at `path` starts with the first `pages` pages of
/// `fax`, pixel for pixel (a whole `.tif` must hold exactly all of them);
/// what is wrong goes to `damaged`.
fn compare(fax: &Fax, path: &Path, pages: usize, damaged: &mut Vec<String>) {
    let got = match read_pages(path) {
        Ok(p) => p,
        Err(e) => {
            damaged.push(format!("{}: {e}", path.display()));
            return;
        }
    };
    let whole = path.extension().is_some_and(|e| e == "tif");
    let want = fax.pages();
    if got.len() < pages || (whole && got.len() != want.len()) {
        damaged.push(format!(
            "{}: {} pages, fax {} has {} and {pages} were confirmed",
            path.display(),
            got.len(),
            fax.serial,
            want.len()
        ));
        return;
    }
    for (i, (page, want)) in got
        .iter()
        .zip(&want)
        .take(got.len().min(want.len()))
        .enumerate()
    {
        let same = decode(page).map(|b: Bitmap| b == *want);
        if !matches!(same, Ok(true)) {
            damaged.push(format!(
                "{}: page {} differs from what fax {} sent",
                path.display(),
                i + 1,
                fax.serial
            ));
        }
    }
}

/// Whether the fax file at `path` starts with `fax`'s first page.
fn first_page_is(fax: &Fax, path: &Path) -> bool {
    let Ok(pages) = read_pages(path) else {
        return false;
    };
    let first = fax.pages().into_iter().next();
    pages
        .first()
        .and_then(|p| decode(p).ok())
        .is_some_and(|b| Some(&b) == first.as_ref())
}
