//! A test's fleet: a fresh fleet key file and the device secrets derived
//! from it, made the way an operator makes them (`relayd credential`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bins::bin;

/// A fleet key in a test's temp dir.
#[derive(Debug)]
pub struct Fleet {
    dir: PathBuf,
    key_file: PathBuf,
}

impl Fleet {
    /// Writes a random fleet key to `dir/fleet.key`.
    pub fn create(dir: &Path) -> Fleet {
        let key_file = dir.join("fleet.key");
        let key: [u8; 32] = rand::random();
        std::fs::write(&key_file, format!("{}\n", hex(&key)))
            .unwrap_or_else(|e| panic!("cannot write {key_file:?}: {e}"));
        Fleet {
            dir: dir.to_owned(),
            key_file,
        }
    }

    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The secret file of `number` (`dir/<number>.secret`), made with
    /// `relayd credential` on first use.
    #[track_caller]
    pub fn secret_file(&self, number: &str) -> PathBuf {
        let path = self.dir.join(format!("{number}.secret"));
        if path.exists() {
            return path;
        }
        let out = Command::new(bin("relayd"))
            .arg("credential")
            .arg("--fleet-key-file")
            .arg(&self.key_file)
            .arg(number)
            .output()
            .expect("relayd credential runs");
        assert!(
            out.status.success(),
            "relayd credential {number} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&path, &out.stdout).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
        path
    }

    /// A secret file for `number` that the relay will refuse: a well-formed
    /// secret of another number.
    pub fn wrong_secret_file(&self, number: &str) -> PathBuf {
        let other = self.secret_file(&format!("9{number}"));
        let path = self.dir.join(format!("{number}.wrong.secret"));
        std::fs::copy(&other, &path).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
        path
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
