//! Storing a fax as it arrives: `<call id>.tif.part` grows page by page (each
//! page synced before it is confirmed), then becomes `<call id>.tif` with a
//! JSON description beside it. A `.part` file is never mistaken for a fax.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::codec::{Compression, EncodedPage, PageInfo, Resolution, TiffFWriter};
use common::device::answer::PageSink;
use common::link::message::CallRequest;
use serde::Serialize;

use crate::extras::{self, Extras};

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
}

/// Receives one fax into a directory.
pub struct FaxStore {
    dir: PathBuf,
    request: CallRequest,
    part: PathBuf,
    writer: Option<TiffFWriter<File>>,
    first: Option<(Resolution, Compression)>,
    pages: u32,
    /// PNG and PDF files to write once the fax is complete.
    extras: Extras,
    /// The pages, kept only when extras are wanted.
    kept: Vec<EncodedPage>,
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
    pub fn create_with(
        dir: &Path,
        request: &CallRequest,
        extras: Extras,
    ) -> std::io::Result<FaxStore> {
        let part = dir.join(format!("{}.tif.part", request.call_id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)?;
        let writer = TiffFWriter::create(file).map_err(std::io::Error::other)?;
        Ok(FaxStore {
            dir: dir.to_owned(),
            request: request.clone(),
            part,
            writer: Some(writer),
            first: None,
            pages: 0,
            extras,
            kept: Vec::new(),
        })
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
        }
    }
}

impl PageSink for FaxStore {
    fn store_page(&mut self, _index: u32, info: &PageInfo, data: Vec<u8>) -> std::io::Result<()> {
        let page = EncodedPage::from_info(info, data).map_err(std::io::Error::other)?;
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the fax is already finished"))?;
        // append_page writes the strip and its directory and syncs the file.
        writer.append_page(&page).map_err(std::io::Error::other)?;
        if self.extras.any() {
            self.kept.push(page);
        }
        self.first
            .get_or_insert((info.resolution, info.compression));
        self.pages += 1;
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<String> {
        let writer = self
            .writer
            .take()
            .ok_or_else(|| std::io::Error::other("the fax is already finished"))?;
        let file = writer.finish().map_err(std::io::Error::other)?;
        file.sync_all()?;
        drop(file);
        let record = self.record();
        std::fs::rename(&self.part, &record.file)?;
        // The extras follow the complete TIFF; a failure costs the extras,
        // never the fax, which is already safe (and confirmed page by page).
        if self.extras.any() {
            let call_id = self.request.call_id.to_string();
            let pages = std::mem::take(&mut self.kept);
            match extras::write(self.extras, &self.dir, &call_id, &pages) {
                Ok(files) => tracing::debug!(files = files.len(), "extras written"),
                Err(e) => tracing::error!(error = %e, "cannot write the PNG/PDF extras"),
            }
        }
        // The JSON comes last: a watcher may take it as "the fax is complete".
        let json_path = self.dir.join(format!("{}.json", self.request.call_id));
        write_atomically(&json_path, &serde_json::to_vec_pretty(&record)?)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(record.file.display().to_string())
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.part");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
