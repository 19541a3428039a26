//! Where a notification goes: a webhook URL or a hook command.

use serde::{Deserialize, Serialize};

/// A notification's destination. Events for one target are delivered in
/// the order they were pushed; targets do not wait for each other.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Target {
    /// POST the JSON to this http:// or https:// URL (see [`Target::url`]).
    Url(String),
    /// Run `sh -c 'CMD "$@"' faxmesh-hook ARGS...` with the JSON on stdin:
    /// CMD may carry its own arguments, and the event's paths follow them.
    Command(String),
}

/// A URL that cannot be a webhook target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid webhook URL '{url}': {reason}")]
pub struct BadUrl {
    pub url: String,
    pub reason: String,
}

impl Target {
    /// A webhook target, checked now so that a typo is a usage error at
    /// start and not a failure on every retry: an absolute http:// or
    /// https:// URL with a host.
    pub fn url(url: &str) -> Result<Target, BadUrl> {
        parse_url(url)?;
        Ok(Target::Url(url.to_owned()))
    }

    /// A hook command (a shell command line).
    pub fn command(cmd: impl Into<String>) -> Target {
        Target::Command(cmd.into())
    }
}

/// Parses a webhook URL: http or https, with a host.
pub(crate) fn parse_url(text: &str) -> Result<url::Url, BadUrl> {
    let bad = |reason: String| BadUrl {
        url: text.to_owned(),
        reason,
    };
    let url = url::Url::parse(text).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "the scheme is {}, use http:// or https://",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(bad("no host in it".to_owned()));
    }
    // Credentials in a URL end up in logs and process listings; the body's
    // signature is what authenticates a webhook.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "a user or password in the URL is not supported (bodies are signed instead)".to_owned(),
        ));
    }
    Ok(url)
}

impl std::fmt::Display for Target {
    /// What a log line shows. A URL never holds a password (refused by
    /// [`Target::url`]), so it is shown whole.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Url(url) => f.write_str(url),
            Target::Command(cmd) => write!(f, "command `{cmd}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_urls_with_a_host_are_targets() {
        assert!(Target::url("http://127.0.0.1:8080/hook").is_ok());
        assert!(Target::url("https://hooks.example.net/fax?x=1").is_ok());
        let err = Target::url("hooks.example.net/fax").expect_err("relative");
        assert_eq!(
            err.to_string(),
            "invalid webhook URL 'hooks.example.net/fax': relative URL without a base"
        );
        let err = Target::url("ftp://example.net/").expect_err("ftp");
        assert!(err.to_string().contains("use http:// or https://"), "{err}");
    }

    #[test]
    fn a_url_with_credentials_is_refused_and_a_command_shows_as_one() {
        let err = Target::url("https://bot:hunter2@example.net/hook").expect_err("userinfo");
        assert!(err.to_string().contains("not supported"), "{err}");
        assert_eq!(
            Target::command("mail -s fax ops").to_string(),
            "command `mail -s fax ops`"
        );
    }
}
