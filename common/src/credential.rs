//! Device secrets derived from a fleet key, so that every relay holding the key
//! can verify any device without a shared database of secrets.
//!
//! secret(number) = hex(HMAC-SHA256(fleet key, "faxmesh device v1\0" || number)).
//! Relays never store secrets; they recompute and compare in constant time.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::number::Number;

/// Fewer bytes than this would make the fleet key guessable.
pub const MIN_FLEET_KEY_LEN: usize = 16;
const DOMAIN: &[u8] = b"faxmesh device v1\0";
const PEER_DOMAIN: &[u8] = b"faxmesh peer v1\0";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read fleet key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "fleet key file {path} holds {len} bytes; it needs at least {MIN_FLEET_KEY_LEN} (e.g. `head -c 32 /dev/urandom | base64 > {path}`)"
    )]
    TooShort { path: String, len: usize },
}

/// The fleet's shared key. Debug never prints it.
#[derive(Clone)]
pub struct FleetKey(Vec<u8>);

impl std::fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetKey(..)")
    }
}

impl FleetKey {
    /// Reads a key file; surrounding whitespace (a trailing newline) is not part of the key.
    pub fn load(path: &Path) -> Result<FleetKey, CredentialError> {
        let raw = std::fs::read(path).map_err(|source| CredentialError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let key = raw.trim_ascii().to_vec();
        if key.len() < MIN_FLEET_KEY_LEN {
            return Err(CredentialError::TooShort {
                path: path.display().to_string(),
                len: key.len(),
            });
        }
        Ok(FleetKey(key))
    }

    pub fn from_bytes(key: &[u8]) -> FleetKey {
        FleetKey(key.to_vec())
    }

    /// A key derived from this one for another purpose (e.g. the mesh key),
    /// so one file can serve both without the two ever being equal.
    pub fn derive(&self, purpose: &[u8]) -> FleetKey {
        FleetKey(
            self.mac(b"faxmesh derive v1\0", purpose)
                .finalize()
                .into_bytes()
                .to_vec(),
        )
    }

    /// The key relays prove fleet membership with, when no separate mesh key
    /// file is given.
    pub fn mesh_key(&self) -> FleetKey {
        self.derive(b"faxmesh mesh key v1")
    }

    /// A new random key, hex encoded, as written to a fresh key file.
    pub fn generate_hex() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    fn mac(&self, domain: &[u8], data: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so new_from_slice cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(domain);
        mac.update(data);
        mac
    }

    /// The secret a device with this number logs in with.
    pub fn device_secret(&self, number: &Number) -> String {
        hex::encode(
            self.mac(DOMAIN, number.as_str().as_bytes())
                .finalize()
                .into_bytes(),
        )
    }

    /// Constant-time check of a presented secret.
    pub fn verify_device(&self, number: &Number, presented: &str) -> bool {
        let expected = self.device_secret(number);
        expected
            .as_bytes()
            .ct_eq(presented.trim().as_bytes())
            .into()
    }
}

impl FleetKey {
    /// A relay's answer to a peer's challenge: proves it holds the key
    /// without revealing it, bound to the nonce and to both names so the
    /// proof cannot be replayed elsewhere.
    pub fn peer_proof(&self, nonce: &[u8], prover: &str, verifier: &str) -> Vec<u8> {
        let mut data = Vec::with_capacity(nonce.len() + prover.len() + verifier.len() + 2);
        data.extend_from_slice(nonce);
        data.extend_from_slice(prover.as_bytes());
        data.push(0);
        data.extend_from_slice(verifier.as_bytes());
        self.mac(PEER_DOMAIN, &data)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Constant-time check of a peer's proof.
    pub fn verify_peer(&self, nonce: &[u8], prover: &str, verifier: &str, proof: &[u8]) -> bool {
        self.peer_proof(nonce, prover, verifier).ct_eq(proof).into()
    }
}

/// A fresh random challenge.
pub fn nonce() -> Vec<u8> {
    rand::random::<[u8; 32]>().to_vec()
}

/// Reads a device secret from a file (trailing whitespace ignored).
pub fn read_secret_file(path: &Path) -> std::io::Result<String> {
    let s = std::fs::read_to_string(path)?;
    Ok(s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_verify_only_for_their_number() {
        let key = FleetKey::from_bytes(b"0123456789abcdef0123");
        let a: Number = "1001".parse().unwrap();
        let b: Number = "1002".parse().unwrap();
        let secret = key.device_secret(&a);
        assert_eq!(secret.len(), 64);
        assert!(key.verify_device(&a, &secret));
        assert!(key.verify_device(&a, &format!("{secret}\n")));
        assert!(!key.verify_device(&b, &secret));
        assert!(!key.verify_device(&a, ""));
        let other = FleetKey::from_bytes(b"another fleet key 123");
        assert!(!other.verify_device(&a, &secret));
    }

    #[test]
    fn peer_proofs_bind_key_nonce_and_names() {
        let key = FleetKey::from_bytes(b"mesh key of the fleet");
        let n = nonce();
        let proof = key.peer_proof(&n, "a", "b");
        assert!(key.verify_peer(&n, "a", "b", &proof));
        assert!(!key.verify_peer(&n, "b", "a", &proof), "names are bound");
        assert!(
            !key.verify_peer(&nonce(), "a", "b", &proof),
            "nonce is bound"
        );
        let stranger = FleetKey::from_bytes(b"some other key 12345");
        assert!(!stranger.verify_peer(&n, "a", "b", &proof));
        assert!(!key.verify_peer(&n, "a", "b", &[]));
    }

    #[test]
    fn short_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "short\n").unwrap();
        let err = FleetKey::load(&path).unwrap_err().to_string();
        assert!(err.contains("holds 5 bytes"), "{err}");
        assert!(err.contains(&path.display().to_string()));
    }
}
