//! `[outbox]`, `[timers]` and `[clock]`: how the engine delivers, retries,
//! runs its durable timers and reads the time.

use super::checks::{positive, positive_durations};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OutboxSettings {
    pub concurrency: usize,
    pub batch_size: u32,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    pub retry: OutboxRetrySettings,
}

impl OutboxSettings {
    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        positive_durations(
            &[
                ("outbox.poll_interval", self.poll_interval),
                ("outbox.lease", self.lease),
                ("outbox.retry.fhir.min_delay", self.retry.fhir.min_delay),
                ("outbox.retry.fhir.max_delay", self.retry.fhir.max_delay),
                ("outbox.retry.events.min_delay", self.retry.events.min_delay),
                ("outbox.retry.events.max_delay", self.retry.events.max_delay),
                ("outbox.retry.mesh.min_delay", self.retry.mesh.min_delay),
                ("outbox.retry.mesh.max_delay", self.retry.mesh.max_delay),
            ],
            bad,
        );
        positive("outbox.concurrency", self.concurrency as u64, bad);
        positive("outbox.batch_size", self.batch_size as u64, bad);
        self.retry.fhir.check("outbox.retry.fhir", bad);
        self.retry.events.check("outbox.retry.events", bad);
        self.retry.mesh.check("outbox.retry.mesh", bad);
        // The lease is renewed every third of itself while a row is in flight;
        // shorter than a second would be mostly renewals.
        if self.lease < Duration::from_secs(1) {
            bad(
                "outbox.lease",
                "expected at least \"1s\" (leases are renewed while a delivery runs)".into(),
            );
        }
    }
}

/// Retry policy per kind of outbox message.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxRetrySettings {
    /// Writes to the FHIR server (creates, updates, transactions).
    pub fhir: RetrySettings,
    /// Publishes to the events exchange.
    pub events: RetrySettings,
    /// Sends over MESH. Fewer and slower than FHIR writes: MESH asks
    /// clients not to hammer it, and what MESH refuses for good (credentials,
    /// recipient, size) is parked at once, never retried.
    pub mesh: RetrySettings,
}

/// Exponential backoff with jitter between `min_delay` and `max_delay`;
/// after `max_attempts` the row is parked as failed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    pub max_attempts: u32,
}

impl RetrySettings {
    /// `key` is where this policy sits, such as `outbox.retry.fhir`.
    fn check(&self, key: &str, bad: &mut dyn FnMut(&str, String)) {
        positive(
            &format!("{key}.max_attempts"),
            self.max_attempts as u64,
            bad,
        );
        if self.min_delay > self.max_delay {
            bad(
                &format!("{key}.min_delay"),
                "must not be longer than max_delay".into(),
            );
        }
    }
}

/// The durable timer runner.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimerSettings {
    /// The longest the runner sleeps between looks for due timers.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl TimerSettings {
    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        positive_durations(&[("timers.poll_interval", self.poll_interval)], bad);
    }
}

/// Where the engine reads the time.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClockSettings {
    /// For tests only: a file holding an RFC 3339 instant that is "now".
    /// Empty (the default): the system clock.
    #[serde(default)]
    pub file: Option<PathBuf>,
}
