//! The queue on disk: a sled database in the gateway's state directory.
//! Tree `jobs`: job id (8 bytes, big-endian) -> the job as JSON. Tree
//! `pages`: job id and page index (4 bytes) -> the page's header
//! (postcard, after its 4-byte length) and data. Pages are written as they
//! arrive and the job records last, then the database is flushed: a job
//! whose record is on disk has all its pages. Pages without a record (a
//! submission cut short, or a crash during one) are removed at open.

use std::path::Path;

use common::codec::{EncodedPage, PageInfo};
use common::jobs::JobId;
use common::number::Number;
use common::storage::RoomError;

use super::job::Job;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("queue database: {0}")]
    Db(#[from] sled::Error),
    #[error("queue record {id}: {reason}")]
    Corrupt { id: JobId, reason: String },
}

/// sled's page cache for the queue.
const CACHE_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    jobs: sled::Tree,
    pages: sled::Tree,
}

fn page_key(id: JobId, index: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&id.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

impl Store {
    /// Opens (or creates) the queue under `dir` and drops orphan pages.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(sled::Error::Io)?;
        // A small cache: pages are read once per attempt, and queued pages
        // belong on disk, not in the gateway's memory (sled's default
        // cache is 1 GB).
        let db = sled::Config::new()
            .path(dir.join("queue"))
            .cache_capacity(CACHE_BYTES)
            .open()?;
        let store = Store {
            jobs: db.open_tree("jobs")?,
            pages: db.open_tree("pages")?,
            db,
        };
        let mut orphans = 0;
        let mut last: Option<(JobId, bool)> = None;
        for entry in store.pages.iter().keys() {
            let key = entry?;
            let id = JobId::from_be_bytes(key[..8].try_into().unwrap_or_default());
            let known = match last {
                Some((l, known)) if l == id => known,
                _ => store.jobs.contains_key(id.to_be_bytes())?,
            };
            last = Some((id, known));
            if !known {
                store.pages.remove(key)?;
                orphans += 1;
            }
        }
        if orphans > 0 {
            tracing::info!(orphans, "removed the pages of unfinished submissions");
            store.db.flush()?;
        }
        Ok(store)
    }

    /// A job id never handed out before, even across restarts.
    pub fn new_id(&self) -> Result<JobId, StoreError> {
        // sled's ids start at 0; job ids start at 1.
        Ok(self.db.generate_id()? + 1)
    }

    /// Whether `bytes` more of pages fit on the queue's disk
    /// (`common::storage::room_for`). A full disk must refuse a fax up
    /// front: sled takes a write the disk has no room for and fails later.
    pub fn room_for(&self, dir: &Path, bytes: u64) -> Result<(), String> {
        common::storage::room_for(dir, bytes).map_err(|e| match e {
            RoomError::Full { .. } => format!("the gateway's disk is full: {e}"),
            RoomError::Unknown { .. } => e.to_string(),
        })
    }

    pub fn put_page(&self, id: JobId, index: u32, page: &EncodedPage) -> Result<(), StoreError> {
        let header = postcard::to_stdvec(&page.info()).map_err(|e| StoreError::Corrupt {
            id,
            reason: e.to_string(),
        })?;
        let mut value = Vec::with_capacity(4 + header.len() + page.data.len());
        value.extend_from_slice(&(header.len() as u32).to_be_bytes());
        value.extend_from_slice(&header);
        value.extend_from_slice(&page.data);
        self.pages.insert(page_key(id, index), value)?;
        Ok(())
    }

    /// The job's pages, in order.
    pub fn pages(&self, id: JobId) -> Result<Vec<EncodedPage>, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { id, reason };
        let mut pages = Vec::new();
        for entry in self.pages.scan_prefix(id.to_be_bytes()) {
            let (_, value) = entry?;
            let len = value
                .get(..4)
                .map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()) as usize)
                .ok_or_else(|| corrupt("short page record".into()))?;
            let header = value
                .get(4..4 + len)
                .ok_or_else(|| corrupt("short page header".into()))?;
            let info: PageInfo =
                postcard::from_bytes(header).map_err(|e| corrupt(e.to_string()))?;
            let page = EncodedPage::from_info(&info, value[4 + len..].to_vec())
                .map_err(|e| corrupt(e.to_string()))?;
            pages.push(page);
        }
        Ok(pages)
    }

    /// Stores jobs (new or changed), atomically; [`Store::sync`] makes it durable.
    pub fn put(&self, jobs: &[&Job]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for job in jobs {
            let json = serde_json::to_vec(job).map_err(|e| StoreError::Corrupt {
                id: job.id(),
                reason: e.to_string(),
            })?;
            batch.insert(&job.id().to_be_bytes(), json);
        }
        self.jobs.apply_batch(batch)?;
        Ok(())
    }

    /// Syncs everything stored so far to disk.
    pub async fn sync(&self) -> Result<(), StoreError> {
        common::storage::flush(&self.db).await?;
        Ok(())
    }

    /// The queue's database (the mail outbox keeps its trees there).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Another tree of the queue's database (the notification outbox).
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Removes what a refused submission wrote (its pages, and records if any).
    pub async fn discard(&self, ids: &[JobId]) -> Result<(), StoreError> {
        for &id in ids {
            self.jobs.remove(id.to_be_bytes())?;
            self.drop_pages(id)?;
        }
        common::storage::flush(&self.db).await?;
        Ok(())
    }

    /// An ended job needs its pages no more (its record stays for faxstat).
    pub fn drop_pages(&self, id: JobId) -> Result<(), StoreError> {
        for key in self.pages.scan_prefix(id.to_be_bytes()).keys() {
            self.pages.remove(key?)?;
        }
        Ok(())
    }

    pub fn get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.jobs
            .get(id.to_be_bytes())?
            .map(|v| {
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    id,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// Every job, oldest first (`from`: only that number's).
    pub fn all(&self, from: Option<&Number>) -> Result<Vec<Job>, StoreError> {
        let mut jobs = Vec::new();
        for entry in self.jobs.iter() {
            let (key, value) = entry?;
            let id = JobId::from_be_bytes(key.as_ref().try_into().unwrap_or_default());
            let job: Job = serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                id,
                reason: e.to_string(),
            })?;
            if from.is_none_or(|f| *f == job.status.from) {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }
}
