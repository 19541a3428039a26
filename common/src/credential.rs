//! Device secrets derived from a fleet key, so that every relay holding the key
//! can verify any device without a shared database of secrets.
//!
//! secret(number) = hex(HMAC-SHA256(fleet key, "faxmesh device v1\0" || number)).
//! Relays never store secrets; they recompute and compare in constant time.
//!
//! Revocation without a new fleet key: a secret has a *generation*. Generation
//! 0 is the secret above (so secrets issued before generations existed keep
//! working); generation G > 0 is `gG-` followed by
//! hex(HMAC-SHA256(fleet key, "faxmesh device v2\0" || number || 0 || G)).
//! The generation travels in clear in the secret, so a relay checks one MAC,
//! then that G is at least the number's minimum generation (raised by
//! `relayd revoke`).

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::number::{CallId, Number};

/// Fewer bytes than this would make the fleet key guessable.
pub const MIN_FLEET_KEY_LEN: usize = 16;
const DOMAIN: &[u8] = b"faxmesh device v1\0";
const DOMAIN_V2: &[u8] = b"faxmesh device v2\0";
const PEER_DOMAIN: &[u8] = b"faxmesh peer v1\0";
const JOB_DOMAIN: &[u8] = b"faxmesh job v1\0";
/// How a job credential begins; a device secret never does.
const JOB_PREFIX: &str = "job-";

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

    /// The secret a device with this number logs in with (generation 0).
    pub fn device_secret(&self, number: &Number) -> String {
        self.device_secret_gen(number, 0)
    }

    /// The secret of generation `generation` for this number.
    pub fn device_secret_gen(&self, number: &Number, generation: u32) -> String {
        if generation == 0 {
            return hex::encode(
                self.mac(DOMAIN, number.as_str().as_bytes())
                    .finalize()
                    .into_bytes(),
            );
        }
        let mut data = number.as_str().as_bytes().to_vec();
        data.push(0);
        data.extend_from_slice(&generation.to_be_bytes());
        let mac = self.mac(DOMAIN_V2, &data).finalize().into_bytes();
        format!("g{generation}-{}", hex::encode(mac))
    }

    /// Constant-time check of a presented secret, of any generation.
    pub fn verify_device(&self, number: &Number, presented: &str) -> bool {
        self.verify_device_gen(number, presented).is_some()
    }

    /// Checks a presented secret; returns its generation when it is genuine
    /// (the caller then compares it with the number's minimum generation).
    /// The MAC is compared in constant time; the generation prefix is public.
    pub fn verify_device_gen(&self, number: &Number, presented: &str) -> Option<u32> {
        let presented = presented.trim();
        let generation = secret_generation(presented)?;
        let expected = self.device_secret_gen(number, generation);
        bool::from(expected.as_bytes().ct_eq(presented.as_bytes())).then_some(generation)
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

/// What a relay issues to a gateway for one queued fax (one job): the
/// gateway places the job's calls as `number` with it, long after the
/// device that submitted the job is gone, without ever holding the device's
/// secret. It is bound to the number, the job's call id, an expiry (the
/// job's kill time) and the generation of the secret the device logged in
/// with, so `relayd revoke` voids it as it voids the secret. Any relay of
/// the fleet verifies it with the fleet key alone.
///
/// Text form: `job-G-EXPIRES-CALLID-MAC`, MAC being
/// hex(HMAC-SHA256(fleet key, "faxmesh job v1\0" || number || 0 || G || EXPIRES || CALLID)),
/// G and EXPIRES (Unix seconds) big-endian.
#[derive(Clone, PartialEq, Eq)]
pub struct JobCredential {
    pub generation: u32,
    pub expires_unix: u64,
    pub call_id: CallId,
    mac: String,
}

impl std::fmt::Debug for JobCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobCredential")
            .field("generation", &self.generation)
            .field("expires_unix", &self.expires_unix)
            .field("call_id", &self.call_id)
            .finish_non_exhaustive()
    }
}

/// Why a job credential does not log in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobCredentialError {
    #[error("the job credential is malformed or not for this number")]
    Forged,
    #[error("the job credential expired (the job's kill time passed)")]
    Expired,
}

impl JobCredential {
    /// Whether `secret` is a job credential's text (else a device secret).
    pub fn is_one(secret: &str) -> bool {
        secret.trim().starts_with(JOB_PREFIX)
    }

    /// Parses the text form; `None` when it is not one.
    pub fn parse(text: &str) -> Option<JobCredential> {
        let rest = text.trim().strip_prefix(JOB_PREFIX)?;
        let mut parts = rest.splitn(4, '-');
        let generation = parts.next()?.parse().ok()?;
        let expires_unix = parts.next()?.parse().ok()?;
        let call_id = parts.next()?.parse().ok()?;
        let mac = parts.next()?.to_owned();
        Some(JobCredential {
            generation,
            expires_unix,
            call_id,
            mac,
        })
    }
}

impl std::fmt::Display for JobCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{JOB_PREFIX}{}-{}-{}-{}",
            self.generation, self.expires_unix, self.call_id, self.mac
        )
    }
}

impl FleetKey {
    fn job_mac(
        &self,
        number: &Number,
        generation: u32,
        expires_unix: u64,
        call_id: &CallId,
    ) -> String {
        let mut data = number.as_str().as_bytes().to_vec();
        data.push(0);
        data.extend_from_slice(&generation.to_be_bytes());
        data.extend_from_slice(&expires_unix.to_be_bytes());
        data.extend_from_slice(call_id.as_str().as_bytes());
        hex::encode(self.mac(JOB_DOMAIN, &data).finalize().into_bytes())
    }

    /// Issues the credential for job `call_id` of `number`, whose device
    /// logged in with a secret of `generation`.
    pub fn issue_job(
        &self,
        number: &Number,
        generation: u32,
        expires_unix: u64,
        call_id: &CallId,
    ) -> JobCredential {
        JobCredential {
            generation,
            expires_unix,
            call_id: call_id.clone(),
            mac: self.job_mac(number, generation, expires_unix, call_id),
        }
    }

    /// Checks a presented job credential for `number` at `now_unix`;
    /// returns it (its generation is then compared with the number's
    /// minimum, as a secret's is). The MAC is compared in constant time.
    pub fn verify_job(
        &self,
        number: &Number,
        presented: &str,
        now_unix: u64,
    ) -> Result<JobCredential, JobCredentialError> {
        let job = JobCredential::parse(presented).ok_or(JobCredentialError::Forged)?;
        let expected = self.job_mac(number, job.generation, job.expires_unix, &job.call_id);
        if !bool::from(expected.as_bytes().ct_eq(job.mac.as_bytes())) {
            return Err(JobCredentialError::Forged);
        }
        if now_unix >= job.expires_unix {
            return Err(JobCredentialError::Expired);
        }
        Ok(job)
    }
}

/// The generation a secret claims: `gG-...` is G, a plain hex secret is 0.
/// `None` for a malformed prefix (such a secret can never verify).
pub fn secret_generation(secret: &str) -> Option<u32> {
    match secret.strip_prefix('g') {
        None => Some(0),
        Some(rest) => {
            let (g, _) = rest.split_once('-')?;
            g.parse::<u32>().ok().filter(|&g| g > 0)
        }
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
    fn generations_are_distinct_and_zero_is_the_old_secret() {
        let key = FleetKey::from_bytes(b"0123456789abcdef0123");
        let a: Number = "1001".parse().unwrap();
        let g0 = key.device_secret(&a);
        assert_eq!(key.device_secret_gen(&a, 0), g0);
        let g2 = key.device_secret_gen(&a, 2);
        assert!(g2.starts_with("g2-"), "{g2}");
        assert_eq!(key.verify_device_gen(&a, &g0), Some(0));
        assert_eq!(key.verify_device_gen(&a, &format!("{g2}\n")), Some(2));
        // A generation prefix moved onto another secret does not verify.
        let forged = format!("g3-{}", &g2[3..]);
        assert_eq!(key.verify_device_gen(&a, &forged), None);
        for bad in ["g-00", "g0-00", "gx-1", "g99999999999-00"] {
            assert_eq!(key.verify_device_gen(&a, bad), None, "{bad}");
        }
        let b: Number = "1002".parse().unwrap();
        assert_eq!(key.verify_device_gen(&b, &g2), None);
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
    fn job_credentials_bind_number_job_expiry_and_generation() {
        let key = FleetKey::from_bytes(b"0123456789abcdef0123");
        let a: Number = "1001".parse().unwrap();
        let b: Number = "1002".parse().unwrap();
        let job = CallId::random();
        let cred = key.issue_job(&a, 2, 1_000, &job).to_string();
        assert!(JobCredential::is_one(&cred), "{cred}");
        assert!(!JobCredential::is_one(&key.device_secret(&a)));

        let ok = key.verify_job(&a, &cred, 999).unwrap();
        assert_eq!((ok.generation, ok.expires_unix), (2, 1_000));
        assert_eq!(ok.call_id, job);
        assert_eq!(
            key.verify_job(&a, &cred, 1_000),
            Err(JobCredentialError::Expired)
        );
        assert_eq!(
            key.verify_job(&b, &cred, 999),
            Err(JobCredentialError::Forged)
        );
        // Each bound field changed in the text breaks the MAC.
        let c = JobCredential::parse(&cred).unwrap();
        let other_job = CallId::random();
        for forged in [
            format!("job-3-1000-{job}-{}", c.mac),
            format!("job-2-2000-{job}-{}", c.mac),
            format!("job-2-1000-{other_job}-{}", c.mac),
            "job-2-1000-nonsense".to_owned(),
            String::new(),
        ] {
            assert_eq!(
                key.verify_job(&a, &forged, 999).map(|_| ()),
                Err(JobCredentialError::Forged),
                "{forged}"
            );
        }
        let stranger = FleetKey::from_bytes(b"another fleet key 123");
        assert_eq!(
            stranger.verify_job(&a, &cred, 999).map(|_| ()),
            Err(JobCredentialError::Forged)
        );
        // Debug never shows the MAC.
        assert!(!format!("{ok:?}").contains(&c.mac));
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
