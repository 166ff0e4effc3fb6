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
    ClientCredentials,
}

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
                check_url(
                    "fhir.auth.token_url",
                    &self.token_url,
                    &["http", "https"],
                    bad,
                );
                if self.client_id.is_empty() {
                    bad(
                        "fhir.auth.client_id",
                        "kind = \"client-credentials\" needs a client_id".into(),
                    );
                }
                if !is_set(&self.client_secret) {
                    bad("fhir.auth.client_secret", "kind = \"client-credentials\" needs a client_secret (or client_secret_file)".into());
                }
            }
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
