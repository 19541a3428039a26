//! Reading a daemon's TOML configuration file. The file's structs deny
//! unknown keys, and the error names the file, the line and the key, so a
//! typo is never silently ignored.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Reads the config file (if any) into a layer and merges the `flags`
/// layer over it with the daemon's `merge` (flag > environment > file >
/// default).
pub fn load_under<L, S>(
    flags: &L,
    file: Option<&Path>,
    merge: impl FnOnce(L, L) -> Result<S, String>,
) -> anyhow::Result<S>
where
    L: DeserializeOwned + Default + Clone,
{
    let file_layer = match file {
        Some(path) => load(path).map_err(anyhow::Error::msg)?,
        None => L::default(),
    };
    merge(flags.clone(), file_layer).map_err(anyhow::Error::msg)
}

/// Reads and parses `path`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// Parses TOML text; the error says where (line N) and what, e.g.
/// ``line 3: unknown field `pear`, expected one of `name`, `listen`, ...``.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = e.message().trim_end().to_owned();
        match line {
            Some(line) => format!("line {line}: {message}"),
            None => message,
        }
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: Option<String>,
        peers: Option<Vec<String>>,
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = super::parse::<Sample>("name = \"a\"\n\npear = 1\n").unwrap_err();
        assert!(err.contains("unknown field `pear`"), "{err}");
        assert!(err.starts_with("line 3:"), "{err}");
    }

    #[test]
    fn known_keys_parse() {
        let s: Sample = super::parse("peers = [\"a:1\"]").unwrap();
        assert_eq!(s.peers.unwrap(), ["a:1"]);
        assert!(s.name.is_none());
    }
}
