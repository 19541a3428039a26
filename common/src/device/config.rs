//! The device config file: after one-time setup a person types
//! `faxsend --to 1002 letter.pdf`. faxsend, faxstat, faxrm and faxrecv
//! take each setting from their flags, then `FAXMESH_*` environment
//! variables, then `~/.config/faxmesh/device.toml` (`$XDG_CONFIG_HOME`),
//! then `/etc/faxmesh/device.toml`. `FAXMESH_DEVICE_CONFIG=FILE` reads
//! that file alone instead; set to the empty string, no file at all.
//!
//! ```toml
//! gateway = "gw.lan:4700"
//! number = "1001"              # faxsend --from, faxrecv --number
//! secret_file = "1001.secret"  # relative to this file's directory
//! # ca_file = "ca.pem"
//! # queue = true               # faxsend hands faxes to the gateway's queue
//! # from_name = "Front desk"   # cover pages and tag lines
//! # kill_after = "8h"          # with queue
//! # dir = "/home/me/faxes"     # faxrecv's inbox
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::number::Number;

/// The variable that names the one file to read ("" for none).
pub const CONFIG_ENV: &str = "FAXMESH_DEVICE_CONFIG";
/// The system-wide file.
pub const SYSTEM_FILE: &str = "/etc/faxmesh/device.toml";

/// A device config file's settings; each is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFile {
    pub gateway: Option<String>,
    pub number: Option<Number>,
    pub secret_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub queue: Option<bool>,
    pub from_name: Option<String>,
    pub kill_after: Option<String>,
    pub dir: Option<PathBuf>,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceFileError {
    #[error("cannot read device config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("device config {path}: {message}")]
    Parse { path: String, message: String },
}

impl DeviceFile {
    /// The files to read, the first one winning: `FAXMESH_DEVICE_CONFIG`
    /// alone when set, else the user's file then the system's.
    pub fn paths() -> Vec<PathBuf> {
        if let Some(one) = std::env::var_os(CONFIG_ENV) {
            return match one.is_empty() {
                true => Vec::new(),
                false => vec![PathBuf::from(one)],
            };
        }
        let user = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        user.map(|d| d.join("faxmesh/device.toml"))
            .into_iter()
            .chain([PathBuf::from(SYSTEM_FILE)])
            .collect()
    }

    /// Reads the config files: each setting from the first file that has
    /// it. A missing file is skipped, unless named by `FAXMESH_DEVICE_CONFIG`.
    pub fn load() -> Result<DeviceFile, DeviceFileError> {
        let named = std::env::var_os(CONFIG_ENV).is_some();
        let mut merged = DeviceFile::default();
        for path in DeviceFile::paths() {
            match std::fs::read_to_string(&path) {
                Ok(text) => merged = merged.over(DeviceFile::parse(&text, &path)?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => {}
                Err(source) => {
                    return Err(DeviceFileError::Read {
                        path: path.display().to_string(),
                        source,
                    });
                }
            }
        }
        Ok(merged)
    }

    /// Parses one file; relative paths in it are relative to its directory.
    pub fn parse(text: &str, path: &Path) -> Result<DeviceFile, DeviceFileError> {
        let mut file: DeviceFile = toml::from_str(text).map_err(|e| DeviceFileError::Parse {
            path: path.display().to_string(),
            message: e.message().to_owned(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut file.secret_file, &mut file.ca_file, &mut file.dir]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(file)
    }

    /// What to say when a setting is in neither the flags (`flag`) nor a
    /// config file (`key`).
    pub fn missing(flag: &str, key: &str) -> String {
        format!("give {flag} (or `{key}` in the device config file, ~/.config/faxmesh/device.toml)")
    }

    /// `self`'s settings, and `lower`'s where `self` has none.
    pub fn over(self, lower: DeviceFile) -> DeviceFile {
        DeviceFile {
            gateway: self.gateway.or(lower.gateway),
            number: self.number.or(lower.number),
            secret_file: self.secret_file.or(lower.secret_file),
            ca_file: self.ca_file.or(lower.ca_file),
            queue: self.queue.or(lower.queue),
            from_name: self.from_name.or(lower.from_name),
            kill_after: self.kill_after.or(lower.kill_after),
            dir: self.dir.or(lower.dir),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_file_and_the_upper_file_wins() {
        let user = DeviceFile::parse(
            "gateway = \"gw.lan:4700\"\nsecret_file = \"1001.secret\"\n",
            Path::new("/home/a/.config/faxmesh/device.toml"),
        )
        .unwrap();
        let system = DeviceFile::parse(
            "gateway = \"other:1\"\nnumber = \"1001\"\nca_file = \"/etc/faxmesh/ca.pem\"\nqueue = true\n",
            Path::new("/etc/faxmesh/device.toml"),
        )
        .unwrap();
        let both = user.over(system);
        assert_eq!(both.gateway.as_deref(), Some("gw.lan:4700"));
        assert_eq!(
            both.secret_file,
            Some(PathBuf::from("/home/a/.config/faxmesh/1001.secret"))
        );
        assert_eq!(both.number, Some("1001".parse().unwrap()));
        assert_eq!(both.ca_file, Some(PathBuf::from("/etc/faxmesh/ca.pem")));
        assert_eq!(both.queue, Some(true));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file() {
        let path = Path::new("/etc/faxmesh/device.toml");
        let err = DeviceFile::parse("gatway = \"x\"\n", path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/faxmesh/device.toml") && err.contains("gatway"),
            "{err}"
        );
        let err = DeviceFile::parse("number = \"12ab\"\n", path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("12ab"), "{err}");
    }
}
