//! A small disk of its own for a daemon's data (a tmpfs mount, so it needs
//! root), which a test can fill and free again: a full disk as the daemon
//! sees it, writes failing with ENOSPC, without filling the machine's.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sys::run;

/// A tmpfs mounted at a directory; unmounted when dropped.
#[derive(Debug)]
pub struct SmallDisk {
    mount: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as mount(8) takes it: `256m`) at `path`,
    /// creating the directory. Only what is used takes memory.
    pub fn mount(path: &Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(path).map_err(|e| format!("{path:?}: {e}"))?;
        let options = format!("size={size}");
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &options,
                "tmpfs",
                &path.to_string_lossy(),
            ],
        )
        .map_err(|e| format!("{e} (a small disk needs root)"))?;
        Ok(SmallDisk {
            mount: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// Takes every free byte with one file (tmpfs reserves fallocate(1)'s
    /// pages, so writes after it fail with ENOSPC).
    pub fn fill(&self) -> Result<(), String> {
        let filler = self.filler();
        let file = filler.to_string_lossy();
        // Free space changes while the daemon writes: take what is free,
        // then halves of what is left, down to a page.
        let mut want = self.free_bytes()?;
        let mut have = 0;
        while want >= 4096 {
            let offset = have.to_string();
            match run(
                "fallocate",
                &["-o", &offset, "-l", &want.to_string(), &file],
            ) {
                Ok(()) => {
                    have += want;
                    want = self.free_bytes()?;
                }
                Err(_) => want /= 2,
            }
        }
        Ok(())
    }

    /// Gives back what [`SmallDisk::fill`] took.
    pub fn free(&self) -> Result<(), String> {
        let filler = self.filler();
        std::fs::remove_file(&filler).map_err(|e| format!("{filler:?}: {e}"))
    }

    /// Bytes free for unprivileged use.
    pub fn free_bytes(&self) -> Result<u64, String> {
        let out = Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(&self.mount)
            .output()
            .map_err(|e| format!("cannot run stat: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>());
        match (fields.next(), fields.next()) {
            (Some(Ok(blocks)), Some(Ok(size))) => Ok(blocks * size),
            _ => Err(format!("stat -f {:?} printed {text:?}", self.mount)),
        }
    }

    fn filler(&self) -> PathBuf {
        self.mount.join("filler")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a daemon killed a moment ago may still hold a file open.
        let _ = run("umount", &["-l", &self.mount.to_string_lossy()]);
    }
}
