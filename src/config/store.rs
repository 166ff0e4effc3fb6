//! `[store]`: the database, its housekeeping and the patient lookup key.

use super::checks::{Secret, is_set, positive, positive_durations, serialize_secret};
use crate::domain::{PatientKey, PatientKeyError};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StoreSettings {
    pub url: String,
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub inbox_retention: Duration,
    #[serde(with = "humantime_serde")]
    pub outbox_retention: Duration,
    #[serde(with = "humantime_serde")]
    pub housekeeping_interval: Duration,
    #[serde(serialize_with = "serialize_secret")]
    pub password: Secret,
    pub password_file: String,
    /// Key of the patient lookup hashes (HMAC-SHA256); `run` refuses to start without it.
    #[serde(serialize_with = "serialize_secret")]
    pub patient_key: Secret,
    pub patient_key_file: String,
}

impl StoreSettings {
    /// The patient lookup key, `None` when none is configured.
    pub(super) fn patient_key(&self) -> Option<Result<PatientKey, PatientKeyError>> {
        is_set(&self.patient_key)
            .then(|| PatientKey::from_bytes(self.patient_key.expose_secret().as_bytes()))
    }

    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        let s = &self.url;
        if !(s.starts_with("sqlite:")
            || s.starts_with("postgres://")
            || s.starts_with("postgresql://"))
        {
            bad(
                "store.url",
                format!("expected sqlite://PATH or postgres://..., got {s:?}"),
            );
        }
        if let Some(Err(e)) = self.patient_key() {
            bad("store.patient_key", e.to_string());
        }
        positive("store.max_connections", self.max_connections as u64, bad);
        positive_durations(
            &[
                ("store.busy_timeout", self.busy_timeout),
                ("store.inbox_retention", self.inbox_retention),
                ("store.outbox_retention", self.outbox_retention),
                ("store.housekeeping_interval", self.housekeeping_interval),
            ],
            bad,
        );
    }
}
