//! SMTP AUTH users (`smtp_users_file`): one `USER:HASH` per line, `#`
//! comments and blank lines ignored, as Dovecot's passwd-file and Apache's
//! htpasswd write them. HASH is a crypt(3) string: SHA-512-crypt (`$6$`,
//! `openssl passwd -6`, `mkpasswd -m sha-512`), SHA-256-crypt (`$5$`) or
//! bcrypt (`$2b$`/`$2y$`/`$2a$`, `htpasswd -nB`). A plaintext password is
//! refused at load: the file names the line.

use std::collections::HashMap;
use std::path::Path;

use sha_crypt::{PasswordVerifier, ShaCrypt};

/// The users and their password hashes.
#[derive(Clone, Default)]
pub struct Users {
    hashes: HashMap<String, String>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("users", &self.hashes.len())
            .finish_non_exhaustive()
    }
}

/// What hashed a password, from its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    ShaCrypt,
    Bcrypt,
}

fn scheme(hash: &str) -> Option<Scheme> {
    if hash.starts_with("$6$") || hash.starts_with("$5$") {
        Some(Scheme::ShaCrypt)
    } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        Some(Scheme::Bcrypt)
    } else {
        None
    }
}

/// Checked against when the user is unknown, so an unknown user takes as
/// long as a wrong password (SHA-512-crypt of "x", 5000 rounds).
const DUMMY: &str = "$6$faxmeshdummy$7NBxJDIR6DZYMtgXV5./1PIvgDY/5BJgJ9SiH6XFdJKxYbHz23h.rxdF3kMsUfeVCMsV6AFXZ3.AtsoUtkpie.";

impl Users {
    /// Reads `path`; an error names the file and line.
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read smtp_users_file {}: {e}", path.display()))?;
        Users::parse(&text).map_err(|e| format!("smtp_users_file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Users, String> {
        let mut hashes = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            let Some((user, hash)) = line.split_once(':') else {
                return Err(format!("line {n}: write USER:HASH"));
            };
            // passwd-file lines may carry more fields after the hash.
            let hash = hash.split(':').next().unwrap_or_default();
            if user.is_empty() {
                return Err(format!("line {n}: the user is empty"));
            }
            if scheme(hash).is_none() {
                return Err(format!(
                    "line {n} (user {user}): the password is not a $6$, $5$ or $2b$ crypt hash (make one with `openssl passwd -6`)"
                ));
            }
            if hashes.insert(user.to_owned(), hash.to_owned()).is_some() {
                return Err(format!("line {n}: user {user} is listed twice"));
            }
        }
        Ok(Users { hashes })
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `password` is `user`'s. Slow on purpose (the hash's rounds):
    /// call it off the async threads.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let (hash, known) = match self.hashes.get(user) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY, false),
        };
        let ok = match scheme(hash) {
            Some(Scheme::ShaCrypt) => ShaCrypt::default()
                .verify_password(password.as_bytes(), hash)
                .is_ok(),
            Some(Scheme::Bcrypt) => bcrypt::verify(password, hash).unwrap_or(false),
            None => false,
        };
        ok && known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `openssl passwd -6 -salt saltsalt secret`.
    const ALICE: &str = "alice:$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

    #[test]
    fn sha512_crypt_from_openssl_verifies() {
        let users = Users::parse(&format!("# users\n\n{ALICE}\n")).unwrap();
        assert_eq!(users.len(), 1);
        assert!(users.verify("alice", "secret"));
        assert!(!users.verify("alice", "Secret"));
        assert!(!users.verify("mallory", "secret"));
    }

    #[test]
    fn bcrypt_verifies() {
        let hash = bcrypt::hash_with_salt("hunter2", 4, [7; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let users = Users::parse(&format!("bob:{hash}\n")).unwrap();
        assert!(users.verify("bob", "hunter2"));
        assert!(!users.verify("bob", "hunter3"));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = Users::parse("alice:$6$a$b\nbob:plaintext\n").unwrap_err();
        assert!(e.starts_with("line 2 (user bob)"), "{e}");
        let e = Users::parse("nocolon\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = Users::parse(&format!("{ALICE}\n{ALICE}\n")).unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn the_dummy_hash_is_well_formed() {
        // Else an unknown user would answer faster than a wrong password.
        assert!(ShaCrypt::default().verify_password(b"x", DUMMY).is_ok());
    }
}
