//! The private key behind `fhir.auth.key_file` (`private-key-jwt`), read and
//! checked while the configuration loads, like the other `*_file` settings,
//! so `check-config` says what is wrong with a key before `run` uses it. The
//! FHIR client takes the checked key from here and only signs with it.

use super::{ExposeSecret, JwtAlgorithm, Secret};
use jsonwebtoken::{Algorithm, EncodingKey};
use std::fmt;
use std::path::Path;

/// A private key checked to sign with its algorithm. Its `Debug` shows the
/// algorithm only; the key material never leaves this struct except into
/// the signer.
#[derive(Clone)]
pub struct SigningKey {
    key: EncodingKey,
    algorithm: JwtAlgorithm,
}

impl SigningKey {
    /// Reads and checks the PEM private key at `path`. Errors say what is
    /// wrong and what to do, and never quote the file.
    pub fn load(path: &Path, algorithm: JwtAlgorithm) -> Result<Self, String> {
        if path.as_os_str().is_empty() {
            return Err(format!(
                "no key file given: set it to the PEM private key ({})",
                needs(algorithm)
            ));
        }
        let pem = Secret::from(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        );
        Self::from_pem(pem.expose_secret(), algorithm)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a PEM private key for `algorithm` and signs a test message with
    /// it: `jsonwebtoken` only unwraps the PEM when loading, so a key of the
    /// wrong size or curve would otherwise first fail at the first token request.
    pub fn from_pem(pem: &str, algorithm: JwtAlgorithm) -> Result<Self, String> {
        let label = pem
            .lines()
            .find_map(|l| l.trim().strip_prefix("-----BEGIN "))
            .and_then(|l| l.strip_suffix("-----"))
            .unwrap_or("");
        let to_pkcs8 = "`openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`";
        match label {
            "" => return Err(format!("not a PEM file; {}", needs(algorithm))),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(format!(
                    "the key is encrypted; give an unencrypted PKCS#8 key ({to_pkcs8}) \
                     and protect the file's permissions instead"
                ));
            }
            "EC PRIVATE KEY" => {
                return Err(format!(
                    "the EC key is in SEC1 form; convert it to PKCS#8 with {to_pkcs8}"
                ));
            }
            "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE" => {
                return Err(format!(
                    "this is a public key or certificate, not the private key; {}",
                    needs(algorithm)
                ));
            }
            _ => {}
        }
        if let Some(key) = signing_key(pem, algorithm) {
            return Ok(SigningKey { key, algorithm });
        }
        // The usual mistake: a key for the other algorithm.
        let other = match algorithm {
            JwtAlgorithm::RS512 => JwtAlgorithm::ES384,
            JwtAlgorithm::ES384 => JwtAlgorithm::RS512,
        };
        if signing_key(pem, other).is_some() {
            Err(format!(
                "the key suits algorithm {other:?}, not {algorithm:?}: set \
                 fhir.auth.algorithm = \"{other:?}\" or give another key ({})",
                needs(algorithm)
            ))
        } else {
            Err(format!("not a usable private key; {}", needs(algorithm)))
        }
    }

    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }
}

/// The key in `pem`, if it parses for `algorithm` and signs with it.
fn signing_key(pem: &str, algorithm: JwtAlgorithm) -> Option<EncodingKey> {
    let key = match algorithm {
        JwtAlgorithm::RS512 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        JwtAlgorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
    }
    .ok()?;
    jsonwebtoken::crypto::sign(b"ips-bridge key check", &key, jws(algorithm)).ok()?;
    Some(key)
}

fn jws(algorithm: JwtAlgorithm) -> Algorithm {
    match algorithm {
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::ES384 => Algorithm::ES384,
    }
}

/// What `algorithm` needs, for messages.
fn needs(algorithm: JwtAlgorithm) -> &'static str {
    match algorithm {
        JwtAlgorithm::RS512 => "algorithm RS512 needs an RSA private key (PEM, 2048 bits or more)",
        JwtAlgorithm::ES384 => {
            "algorithm ES384 needs an EC private key on curve P-384 (secp384r1, PEM PKCS#8)"
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// The key for the signer (`jsonwebtoken::encode`).
    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }

    /// The JWS `alg` this key signs with.
    pub(crate) fn jws_algorithm(&self) -> Algorithm {
        jws(self.algorithm)
    }
}
