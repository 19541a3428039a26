//! Storing a fax as it arrives: `<call id>.tif.part` grows page by page (each
//! page synced before it is confirmed), then becomes `<call id>.tif` with a
//! JSON description beside it. A `.part` file is never mistaken for a fax.
//!
//! A retry of the same call id finds what an earlier attempt left: a
//! complete `<call id>.tif` is offered as held in full (confirmed again,
//! never stored twice); a `<call id>.tif.part` is reopened, any page written
//! but never linked in is cut off, the pages left are read back (which
//! checks them) and offered, and the fax goes on from the first missing page.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::codec::{Compression, EncodedPage, PageInfo, Resolution, TiffFWriter, read_pages};
use common::device::answer::PageSink;
use common::device::resume;
use common::link::message::{CallRequest, HeldPages};
use serde::Serialize;

use crate::extras::{self, Extras};
use crate::hooks::ReceiveHooks;
use crate::pause::PagePause;

/// The JSON file beside each fax (and the line printed with --json).
#[derive(Clone, Debug, Serialize)]
pub struct FaxRecord {
    pub caller: String,
    pub callee: String,
    pub call_id: String,
    pub pages: u32,
    pub resolution: Option<Resolution>,
    pub compression: Option<Compression>,
    /// RFC 3339, UTC.
    pub received: String,
    /// Relays the call went through, in order.
    pub relays: Vec<String>,
    pub file: PathBuf,
    /// Pages kept from an earlier, interrupted call with this call id (the
    /// caller sent only the rest).
    pub pages_resumed: u32,
}

/// Called with each complete fax (its record, then its .tif and any .png
/// and .pdf) before the caller's final confirmation; an error withholds the
/// confirmation, so the caller tries again and the call is offered whole.
/// Not called again for a fax whose JSON was written.
#[derive(Clone)]
pub struct OnFax(pub Arc<FaxCallback>);

/// What [`OnFax`] calls.
pub type FaxCallback = dyn Fn(&FaxRecord, &[PathBuf]) -> std::io::Result<()> + Send + Sync;

impl std::fmt::Debug for OnFax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnFax")
    }
}

/// Receives one fax into a directory.
pub struct FaxStore {
    dir: PathBuf,
    request: CallRequest,
    part: PathBuf,
    writer: Option<TiffFWriter<File>>,
    first: Option<(Resolution, Compression)>,
    pages: u32,
    /// What an earlier attempt left, offered to the caller.
    held: Option<HeldPages>,
    /// The fax was complete before this call: nothing is written.
    complete: bool,
    /// Hold a page's confirmation until released (`--pause-at-page`).
    pause: Option<PagePause>,
    /// PNG and PDF files to write once the fax is complete.
    extras: Extras,
    /// The pages, kept only when extras are wanted.
    kept: Vec<EncodedPage>,
    /// Told of the fax once it is complete (`--on-receive`, `--notify-url`).
    hooks: Option<ReceiveHooks>,
    on_fax: Option<OnFax>,
}

impl std::fmt::Debug for FaxStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaxStore")
            .field("part", &self.part)
            .finish()
    }
}

impl FaxStore {
    /// Starts `<call id>.tif.part` in `dir`.
    pub fn create(dir: &Path, request: &CallRequest) -> std::io::Result<FaxStore> {
        FaxStore::create_with(dir, request, Extras::default())
    }

    /// [`FaxStore::create`], also writing PNG pages and/or a PDF at the end.
    /// When an earlier attempt of this call id left a complete fax or a
    /// `.part` file, the store takes it up (see the module's comment).
    pub fn create_with(
        dir: &Path,
        request: &CallRequest,
        extras: Extras,
    ) -> std::io::Result<FaxStore> {
        let part = dir.join(format!("{}.tif.part", request.call_id));
        let mut store = FaxStore {
            dir: dir.to_owned(),
            request: request.clone(),
            part,
            writer: None,
            first: None,
            pages: 0,
            held: None,
            complete: false,
            pause: None,
            extras,
            kept: Vec::new(),
            hooks: None,
            on_fax: None,
        };
        let done = store.final_path();
        if done.exists() {
            let pages = read_pages(&done).map_err(std::io::Error::other)?;
            store.take_up(pages, true);
            return Ok(store);
        }
        if store.part.exists() {
            match resume_part(&store.part) {
                Ok((writer, pages)) => {
                    store.writer = Some(writer);
                    store.take_up(pages, false);
                    return Ok(store);
                }
                Err(e) => tracing::warn!(part = %store.part.display(), error = %e,
                    "cannot take up the partly received fax; starting it over"),
            }
        }
        store.start_over()?;
        Ok(store)
    }

    /// Holds the confirmation of page `pause.page` until it is released.
    pub fn with_pause(mut self, pause: Option<PagePause>) -> FaxStore {
        self.pause = pause;
        self
    }

    /// Queues the hooks' notifications once the fax is complete.
    pub fn with_hooks(mut self, hooks: Option<ReceiveHooks>) -> FaxStore {
        self.hooks = hooks;
        self
    }

    /// Hands each complete fax to `on_fax` before it is confirmed.
    pub fn with_on_fax(mut self, on_fax: Option<OnFax>) -> FaxStore {
        self.on_fax = on_fax;
        self
    }

    fn take_up(&mut self, pages: Vec<EncodedPage>, complete: bool) {
        self.held = Some(resume::held(&pages, complete));
        self.complete = complete;
        self.pages = pages.len() as u32;
        self.first = pages.first().map(|p| (p.resolution, p.compression));
        if self.extras.any() {
            self.kept = pages;
        }
    }

    fn final_path(&self) -> PathBuf {
        self.dir.join(format!("{}.tif", self.request.call_id))
    }

    /// The description of the finished fax.
    pub fn record(&self) -> FaxRecord {
        FaxRecord {
            caller: self.request.from.to_string(),
            callee: self.request.to.to_string(),
            call_id: self.request.call_id.to_string(),
            pages: self.pages,
            resolution: self.first.map(|f| f.0),
            compression: self.first.map(|f| f.1),
            received: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            relays: self.request.via.clone(),
            file: self.final_path(),
            pages_resumed: self.held.as_ref().map_or(0, |h| h.pages),
        }
    }
}

impl PageSink for FaxStore {
    fn store_page(&mut self, index: u32, info: &PageInfo, data: &[u8]) -> std::io::Result<()> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| std::io::Error::other("a fax with this call id is complete already"))?;
        // append_data writes the strip and its directory and syncs the file.
        writer
            .append_data(info, data)
            .map_err(std::io::Error::other)?;
        if self.extras.any() {
            let page =
                EncodedPage::from_info(info, data.to_vec()).map_err(std::io::Error::other)?;
            self.kept.push(page);
        }
        self.first
            .get_or_insert((info.resolution, info.compression));
        self.pages += 1;
        if let Some(pause) = self.pause.as_ref().filter(|p| p.page == index + 1) {
            pause.wait(&self.request.call_id);
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<String> {
        let json_path = self.dir.join(format!("{}.json", self.request.call_id));
        let record = self.record();
        if self.complete {
            // A retry of a fax already stored: nothing to write, unless the
            // earlier call stopped between the TIFF and its JSON.
            if json_path.exists() {
                return Ok(record.file.display().to_string());
            }
        } else {
            let writer = self
                .writer
                .take()
                .ok_or_else(|| std::io::Error::other("the fax is already finished"))?;
            let file = writer.finish().map_err(std::io::Error::other)?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&self.part, &record.file)?;
        }
        // The extras follow the complete TIFF; a failure costs the extras,
        // never the fax, which is already safe (and confirmed page by page).
        let mut files = vec![record.file.clone()];
        if self.extras.any() {
            let call_id = self.request.call_id.to_string();
            let pages = std::mem::take(&mut self.kept);
            match extras::write(self.extras, &self.dir, &call_id, &pages) {
                Ok(written) => {
                    tracing::debug!(files = written.len(), "extras written");
                    files.extend(written);
                }
                Err(e) => tracing::error!(error = %e, "cannot write the PNG/PDF extras"),
            }
        }
        if let Some(on_fax) = &self.on_fax {
            (on_fax.0)(&record, &files)?;
        }
        // The JSON comes last: a watcher may take it as "the fax is complete".
        write_atomically(&json_path, &serde_json::to_vec_pretty(&record)?)?;
        File::open(&self.dir)?.sync_all()?;
        // Then the hooks, with the same JSON. A fax confirmed again on a
        // retry (its JSON was there: returned above) is not announced twice.
        if let Some(hooks) = &self.hooks {
            hooks.fax_received(&serde_json::to_value(&record)?, &files);
        }
        Ok(record.file.display().to_string())
    }

    fn held(&self) -> Option<HeldPages> {
        self.held.clone()
    }

    fn start_over(&mut self) -> std::io::Result<()> {
        if self.complete {
            return Err(std::io::Error::other(format!(
                "call id {} already holds a different, complete fax",
                self.request.call_id
            )));
        }
        // Close the old writer before truncating under it.
        self.writer = None;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.part)?;
        self.writer = Some(TiffFWriter::create(file).map_err(std::io::Error::other)?);
        self.first = None;
        self.pages = 0;
        self.held = None;
        self.kept.clear();
        Ok(())
    }
}

/// Reopens a `.part` file: cuts off what was written after the last
/// complete page, then reads every page left (decoding them: a damaged file
/// is not taken up).
fn resume_part(part: &Path) -> std::io::Result<(TiffFWriter<File>, Vec<EncodedPage>)> {
    let file = OpenOptions::new().read(true).write(true).open(part)?;
    let (writer, count) = TiffFWriter::resume(file).map_err(std::io::Error::other)?;
    let pages = match count {
        0 => Vec::new(),
        _ => read_pages(part).map_err(std::io::Error::other)?,
    };
    if pages.len() != count {
        return Err(std::io::Error::other(format!(
            "{} pages are linked but {} can be read",
            count,
            pages.len()
        )));
    }
    Ok((writer, pages))
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.part");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::codec::{Bitmap, encode};
    use common::number::CallId;

    fn page(seed: u32) -> EncodedPage {
        let mut bitmap = Bitmap::new_fax(1728, 40, Resolution::Fine);
        bitmap.fill_rect(10 * seed, 5, 10 * seed + 300, 30);
        encode(&bitmap, Compression::G4).expect("encodes")
    }

    fn request() -> CallRequest {
        CallRequest {
            call_id: CallId::random(),
            from: "1001".parse().expect("a number"),
            to: "1002".parse().expect("a number"),
            pages: 3,
            bytes: 0,
            via: vec![],
        }
    }

    fn store(store: &mut FaxStore, pages: &[EncodedPage]) {
        for (i, p) in pages.iter().enumerate() {
            store
                .store_page(i as u32, &p.info(), &p.data)
                .expect("stored");
        }
    }

    #[test]
    fn a_part_file_is_taken_up_without_its_unlinked_tail() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let req = request();
        let pages = [page(1), page(2), page(3)];
        let mut first = FaxStore::create(dir.path(), &req).expect("created");
        assert_eq!(first.held(), None, "a new fax holds nothing");
        store(&mut first, &pages[..2]);
        drop(first);
        // Half a strip written but never linked: the attempt died mid-page.
        let part = dir.path().join(format!("{}.tif.part", req.call_id));
        let linked = std::fs::metadata(&part).expect("the part").len();
        let mut f = OpenOptions::new().append(true).open(&part).expect("opens");
        f.write_all(&pages[2].data[..pages[2].data.len() / 2])
            .expect("writes");
        drop(f);

        let mut again = FaxStore::create(dir.path(), &req).expect("taken up");

        assert_eq!(again.held(), Some(resume::held(&pages[..2], false)));
        assert_eq!(std::fs::metadata(&part).expect("the part").len(), linked);
        again
            .store_page(2, &pages[2].info(), &pages[2].data)
            .expect("page 3");
        let file = again.finish().expect("finished");
        assert_eq!(read_pages(Path::new(&file)).expect("reads"), pages);
        assert_eq!(again.record().pages_resumed, 2);
    }

    #[test]
    fn a_complete_fax_is_offered_whole_and_never_written_again() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let req = request();
        let pages = [page(1), page(2)];
        let mut first = FaxStore::create(dir.path(), &req).expect("created");
        store(&mut first, &pages);
        let file = first.finish().expect("finished");
        let json = dir.path().join(format!("{}.json", req.call_id));
        let before = (std::fs::read(&file).unwrap(), std::fs::read(&json).unwrap());

        let mut again = FaxStore::create(dir.path(), &req).expect("opened");

        assert_eq!(again.held(), Some(resume::held(&pages, true)));
        let err = again.start_over().expect_err("a complete fax is kept");
        assert!(
            err.to_string()
                .contains("already holds a different, complete fax")
        );
        assert_eq!(again.finish().expect("confirmed"), file);
        let after = (std::fs::read(&file).unwrap(), std::fs::read(&json).unwrap());
        assert_eq!(before, after);
    }

    #[test]
    fn starting_over_drops_the_held_pages_and_a_damaged_part_is_not_taken_up() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let req = request();
        let mut first = FaxStore::create(dir.path(), &req).expect("created");
        store(&mut first, &[page(1)]);
        drop(first);
        let mut again = FaxStore::create(dir.path(), &req).expect("taken up");
        again.start_over().expect("starts over");
        assert_eq!(again.held(), None);
        store(&mut again, &[page(7)]);
        let file = again.finish().expect("finished");
        assert_eq!(read_pages(Path::new(&file)).expect("reads"), [page(7)]);

        let other = request();
        let part = dir.path().join(format!("{}.tif.part", other.call_id));
        std::fs::write(&part, b"not a tiff at all").expect("writes");
        let fresh = FaxStore::create(dir.path(), &other).expect("started over");
        assert_eq!(fresh.held(), None);
    }
}
