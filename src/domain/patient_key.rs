//! The secret that keys patient lookup hashes.
//!
//! Patients are found by a hash of their NHS number, so that the number
//! itself need not appear in keys or indexes. A plain hash of a 10-digit
//! number with a check digit is reversed by trying every number (about 10^9,
//! minutes on a laptop), so the hash is an HMAC keyed with this secret: a copy
//! of the database without the key tells nothing. The key is a parameter, never
//! a global, so that the domain stays pure and tests can use several keys.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// Fewest key bytes accepted: HMAC-SHA256 wants at least its output size.
pub const MIN_KEY_BYTES: usize = 32;

/// An HMAC-SHA256 key for patient lookup hashes. `Debug` never shows it.
#[derive(Clone)]
pub struct PatientKey {
    bytes: SecretSlice<u8>,
    fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatientKeyError {
    #[error(
        "the patient key must be at least {MIN_KEY_BYTES} bytes, found {0} (make one with `openssl rand -hex 32`)"
    )]
    TooShort(usize),
}

impl PatientKey {
    /// A key from its bytes (a configured key is the bytes of its text).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PatientKeyError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(PatientKeyError::TooShort(bytes.len()));
        }
        let fingerprint = format!(
            "hmac-sha256:{}",
            hex::encode(&mac(bytes, &[b"ips-bridge/patient-key/fingerprint"])[..8])
        );
        Ok(PatientKey {
            bytes: SecretSlice::from(bytes.to_vec()),
            fingerprint,
        })
    }

    /// Names the hashing scheme and this key without revealing it (the first
    /// 8 bytes of an HMAC of a fixed label), so the store can tell which rows
    /// were hashed under which key and re-hash the others.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// HMAC-SHA256 of `parts`, hex-encoded.
    pub(crate) fn hash(&self, parts: &[&[u8]]) -> String {
        hex::encode(mac(self.bytes.expose_secret(), parts))
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

impl fmt::Debug for PatientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PatientKey(<redacted> {})", self.fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_short_keys_and_never_shows_the_key() {
        assert_eq!(
            PatientKey::from_bytes(b"short").unwrap_err(),
            PatientKeyError::TooShort(5)
        );
        let k = PatientKey::from_bytes(&[b'k'; 32]).unwrap();
        assert!(!format!("{k:?}").contains("kkkk"), "{k:?}");
        assert!(k.fingerprint().starts_with("hmac-sha256:"));
        let other = PatientKey::from_bytes(&[b'j'; 32]).unwrap();
        assert_ne!(k.fingerprint(), other.fingerprint());
    }
}
