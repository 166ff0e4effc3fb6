//! `[fhir]`, `[fhir.auth]` and `[poller]`: the FHIR server, how the bridge
//! authenticates to it, and how it is polled.

use super::checks::{Secret, check_url, is_set, positive, positive_durations, serialize_secret};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FhirSettings {
    pub base_url: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub retry_min_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    pub breaker_threshold: u32,
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    pub auth: FhirAuthSettings,
}

impl FhirSettings {
    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        check_url("fhir.base_url", &self.base_url, &["http", "https"], bad);
        positive("fhir.max_attempts", self.max_attempts as u64, bad);
        positive("fhir.breaker_threshold", self.breaker_threshold as u64, bad);
        positive_durations(
            &[
                ("fhir.timeout", self.timeout),
                ("fhir.connect_timeout", self.connect_timeout),
                ("fhir.retry_min_delay", self.retry_min_delay),
                ("fhir.retry_max_delay", self.retry_max_delay),
                ("fhir.breaker_cooldown", self.breaker_cooldown),
            ],
            bad,
        );
        self.auth.check(bad);
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FhirAuthKind {
    None,
    Bearer,
    /// OAuth2 client credentials with a shared `client_secret`.
    ClientCredentials,
    /// OAuth2 client credentials with a signed JWT client assertion (RFC 7523),
    /// as NHS England's application-restricted APIs and SMART Backend Services use.
    PrivateKeyJwt,
}

/// Signature algorithm of a `private-key-jwt` assertion: the two NHS England accepts.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-512 (an RSA key; NHS England asks for 4096 bits).
    RS512,
    /// ECDSA on P-384 with SHA-384.
    ES384,
}

/// NHS England refuses an assertion whose `exp` is more than 5 minutes ahead.
const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// `[fhir.auth]`. Its `Debug` holds no secret: secrets are `Secret`s, and the
/// private key of `private-key-jwt` is only named by `key_file` (checked when
/// the configuration loads, held parsed by the FHIR client, never here).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FhirAuthSettings {
    pub kind: FhirAuthKind,
    #[serde(serialize_with = "serialize_secret")]
    pub token: Secret,
    pub token_file: String,
    pub token_url: String,
    pub client_id: String,
    #[serde(serialize_with = "serialize_secret")]
    pub client_secret: Secret,
    pub client_secret_file: String,
    pub scope: String,
    /// `private-key-jwt`: PEM file of the private key that signs assertions.
    pub key_file: String,
    /// `private-key-jwt`: the key's algorithm.
    pub algorithm: JwtAlgorithm,
    /// `private-key-jwt`: the key id the public key is registered under.
    pub kid: String,
    /// `private-key-jwt`: how long an assertion is valid (`exp - iat`).
    #[serde(with = "humantime_serde")]
    pub assertion_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_before: Duration,
}

impl FhirAuthSettings {
    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        match self.kind {
            FhirAuthKind::None => {}
            FhirAuthKind::Bearer if !is_set(&self.token) => bad(
                "fhir.auth.token",
                "kind = \"bearer\" needs a token (fhir.auth.token or fhir.auth.token_file)".into(),
            ),
            FhirAuthKind::Bearer => {}
            FhirAuthKind::ClientCredentials => {
                self.check_token_endpoint("client-credentials", bad);
                if !is_set(&self.client_secret) {
                    bad("fhir.auth.client_secret", "kind = \"client-credentials\" needs a client_secret (or client_secret_file)".into());
                }
            }
            FhirAuthKind::PrivateKeyJwt => self.check_private_key_jwt(bad),
        }
    }

    fn check_token_endpoint(&self, kind: &str, bad: &mut dyn FnMut(&str, String)) {
        check_url(
            "fhir.auth.token_url",
            &self.token_url,
            &["http", "https"],
            bad,
        );
        if self.client_id.is_empty() {
            bad(
                "fhir.auth.client_id",
                format!(
                    "kind = \"{kind}\" needs the client_id the authorisation server gave the bridge"
                ),
            );
        }
    }

    fn check_private_key_jwt(&self, bad: &mut dyn FnMut(&str, String)) {
        self.check_token_endpoint("private-key-jwt", bad);
        if self.kid.is_empty() {
            bad(
                "fhir.auth.kid",
                "kind = \"private-key-jwt\" needs the kid under which the public key is \
                 registered with the authorisation server (the \"kid\" of its JWKS entry)"
                    .into(),
            );
        }
        if self.key_file.is_empty() {
            bad(
                "fhir.auth.key_file",
                format!(
                    "kind = \"private-key-jwt\" needs key_file, the PEM private key that signs \
                     the client assertions ({})",
                    match self.algorithm {
                        JwtAlgorithm::RS512 => "an RSA key for algorithm RS512",
                        JwtAlgorithm::ES384 => "an EC P-384 key for algorithm ES384",
                    }
                ),
            );
        } else if let Err(e) =
            super::SigningKey::load(std::path::Path::new(&self.key_file), self.algorithm)
        {
            bad("fhir.auth.key_file", e);
        }
        // Claims are whole seconds: under 1s, exp would equal iat.
        if self.assertion_lifetime.as_secs() == 0 {
            bad(
                "fhir.auth.assertion_lifetime",
                "expected a duration of at least 1s, such as \"5m\"".into(),
            );
        } else if self.assertion_lifetime > MAX_ASSERTION_LIFETIME {
            bad(
                "fhir.auth.assertion_lifetime",
                format!(
                    "must be at most 5m (NHS England refuses a client assertion whose exp is \
                     more than 5 minutes ahead); got {}",
                    humantime::format_duration(self.assertion_lifetime)
                ),
            );
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PollerSettings {
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    #[serde(with = "humantime_serde")]
    pub overlap: Duration,
    pub page_size: u32,
    /// Resource types to poll, each with its own cursor.
    pub resources: Vec<PolledResource>,
}

impl PollerSettings {
    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        positive_durations(&[("poller.interval", self.interval)], bad);
        positive("poller.page_size", self.page_size as u64, bad);
        if self.enabled && self.resources.is_empty() {
            bad(
                "poller.resources",
                "an enabled poller needs at least one resource type (ServiceRequest, Appointment)"
                    .into(),
            );
        }
        for (i, r) in self.resources.iter().enumerate() {
            if self.resources[..i].contains(r) {
                bad(
                    "poller.resources",
                    format!("{} is listed twice", r.as_str()),
                );
            }
        }
    }
}

/// A resource type the poller reads (`poller.resources`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Deserialize,
    serde::Serialize,
    strum::IntoStaticStr,
)]
pub enum PolledResource {
    ServiceRequest,
    Appointment,
    /// VP and IWSP answers from a forms system.
    QuestionnaireResponse,
    /// Review Tasks the bridge wrote, completed by the GP or care coordinator.
    Task,
    /// Comments about a published document.
    Communication,
}

impl PolledResource {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The store cursor of this type's poll.
    pub const fn cursor_key(self) -> &'static str {
        match self {
            PolledResource::ServiceRequest => "fhir-poll:ServiceRequest",
            PolledResource::Appointment => "fhir-poll:Appointment",
            PolledResource::QuestionnaireResponse => "fhir-poll:QuestionnaireResponse",
            PolledResource::Task => "fhir-poll:Task",
            PolledResource::Communication => "fhir-poll:Communication",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt_settings() -> FhirAuthSettings {
        FhirAuthSettings {
            kind: FhirAuthKind::PrivateKeyJwt,
            token: Secret::from(String::new()),
            token_file: String::new(),
            token_url: "https://auth.example.nhs.uk/oauth2/token".into(),
            client_id: "ips-bridge".into(),
            client_secret: Secret::from(String::new()),
            client_secret_file: String::new(),
            scope: String::new(),
            key_file: String::new(),
            algorithm: JwtAlgorithm::RS512,
            kid: "ips-1".into(),
            assertion_lifetime: Duration::from_secs(300),
            refresh_before: Duration::from_secs(60),
        }
    }

    fn problems(s: &FhirAuthSettings) -> Vec<(String, String)> {
        let mut found = Vec::new();
        s.check(&mut |k: &str, m: String| found.push((k.to_owned(), m)));
        found
    }

    fn keys(p: &[(String, String)]) -> Vec<&str> {
        p.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn private_key_jwt_lists_every_problem_by_setting() {
        let s = FhirAuthSettings {
            token_url: "not a url".into(),
            client_id: String::new(),
            kid: String::new(),
            assertion_lifetime: Duration::from_secs(600),
            ..jwt_settings()
        };
        let p = problems(&s);
        assert_eq!(
            keys(&p),
            [
                "fhir.auth.token_url",
                "fhir.auth.client_id",
                "fhir.auth.kid",
                "fhir.auth.key_file",
                "fhir.auth.assertion_lifetime",
            ],
            "{p:?}"
        );
        assert!(p[3].1.contains("PEM private key"), "{}", p[3].1);
        assert!(
            p[4].1.contains("at most 5m") && p[4].1.contains("10m"),
            "{}",
            p[4].1
        );
    }

    #[test]
    fn private_key_jwt_reports_an_unreadable_or_unusable_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let s = FhirAuthSettings {
            key_file: missing.display().to_string(),
            ..jwt_settings()
        };
        let p = problems(&s);
        assert_eq!(keys(&p), ["fhir.auth.key_file"]);
        assert!(p[0].1.contains("cannot read"), "{}", p[0].1);

        let cases = [
            ("secret text, not PEM\n", "not a PEM file"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "not a usable private key",
            ),
            (
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                "PKCS#8",
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                "not the private key",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted",
            ),
        ];
        for (text, expected) in cases {
            let path = dir.path().join("key.pem");
            std::fs::write(&path, text).unwrap();
            let s = FhirAuthSettings {
                key_file: path.display().to_string(),
                algorithm: JwtAlgorithm::ES384,
                ..jwt_settings()
            };
            let p = problems(&s);
            assert_eq!(keys(&p), ["fhir.auth.key_file"], "{text}");
            assert!(p[0].1.contains(expected), "{text}: {}", p[0].1);
            assert!(
                !p[0].1.contains("AAAA"),
                "the key file is quoted: {}",
                p[0].1
            );
        }
    }

    #[test]
    fn zero_assertion_lifetime_is_refused_and_other_kinds_ignore_jwt_settings() {
        let s = FhirAuthSettings {
            assertion_lifetime: Duration::ZERO,
            key_file: "/nonexistent/key.pem".into(),
            ..jwt_settings()
        };
        assert_eq!(
            keys(&problems(&s)),
            ["fhir.auth.key_file", "fhir.auth.assertion_lifetime"]
        );
        let s = FhirAuthSettings {
            kind: FhirAuthKind::None,
            ..s
        };
        assert!(problems(&s).is_empty());
    }
}
