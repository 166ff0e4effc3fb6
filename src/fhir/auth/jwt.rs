//! `private_key_jwt` client authentication (RFC 7523 §2.2): each token
//! request carries a fresh JWT signed with the bridge's private key.
//!
//! Signing is `jsonwebtoken` with its aws-lc-rs backend, the same crypto
//! library rustls already builds for reqwest and lapin.

use crate::config::{FhirAuthSettings, Secret, SigningKey};
use crate::fhir::error::FhirError;
use jsonwebtoken::Header;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a client assertion says about the bridge, and the key that signs it.
pub(super) struct Assertion {
    client_id: String,
    audience: String,
    kid: String,
    lifetime: Duration,
    key: SigningKey,
}

/// The claims RFC 7523 §3 and NHS England require.
#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    exp: u64,
}

impl Assertion {
    pub(super) fn new(s: &FhirAuthSettings, key: SigningKey) -> Self {
        Assertion {
            client_id: s.client_id.clone(),
            // The audience is the token endpoint's URL, exactly as configured.
            audience: s.token_url.clone(),
            kid: s.kid.clone(),
            lifetime: s.assertion_lifetime,
            key,
        }
    }

    /// A newly signed assertion: `iss` = `sub` = the client id, `aud` the
    /// token URL, a random `jti` (servers keep the ones they saw until `exp`
    /// and refuse repeats) and `exp` = `iat` + the configured lifetime.
    pub(super) fn sign(&self) -> Result<Secret, FhirError> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| FhirError::Auth("the system clock is before 1970".into()))?
            .as_secs();
        let claims = Claims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: &self.audience,
            jti: uuid::Uuid::new_v4().to_string(),
            iat,
            exp: iat + self.lifetime.as_secs(),
        };
        let mut header = Header::new(self.key.jws_algorithm());
        header.typ = Some("JWT".into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, self.key.encoding_key())
            .map(Secret::from)
            .map_err(|e| FhirError::Auth(format!("cannot sign the client assertion: {e}")))
    }
}
