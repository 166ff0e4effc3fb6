//! The engine: applies inbound commands in store transactions and delivers
//! what they cause.
//!
//! `apply` runs a batch of messages through inbox dedupe and the handlers in
//! one transaction; `handlers` hold the per-command logic (read, decide with
//! the pure domain, write state + outbox + audit); `outbox` delivers outbox
//! rows to FHIR and AMQP. Sources (AMQP consumer, FHIR poller, HTTP API) only
//! ever talk to [`Engine`].

pub mod apply;
pub mod handlers;
pub mod housekeeping;
pub mod outbox;

pub use apply::{Applied, Inbound, Signal};

use crate::config::Settings;
use crate::domain::PatientKey;
use crate::ingest::Limits;
use crate::ingest::classify::IntakeRules;
use crate::store::Store;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::Notify;

/// Source of the current time. The domain takes time as a parameter; this is
/// where the engine gets it, so tests can pin it.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// What handlers need to know about this deployment.
pub struct Context {
    pub actor: String,
    pub service_ods: String,
    pub identifier_system: String,
    pub decline_reasons: Vec<String>,
    pub limits: Limits,
    pub rules: IntakeRules,
    /// Keys the patient lookup hashes; never a default, `app::start` refuses to run without one.
    pub patient_key: PatientKey,
}

impl Context {
    pub fn from_settings(s: &Settings, patient_key: PatientKey) -> Self {
        Context {
            actor: s.service.name.clone(),
            service_ods: s.service.ods_code.clone(),
            identifier_system: s.service.identifier_system.clone(),
            decline_reasons: s.intake.decline_reasons.clone(),
            limits: s.limits(),
            rules: s.intake_rules(),
            patient_key,
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    pub store: Arc<dyn Store>,
    pub ctx: Arc<Context>,
    pub clock: Arc<dyn Clock>,
    /// Woken after a commit that queued outbox rows.
    pub outbox_wake: Arc<Notify>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, ctx: Context) -> Self {
        Engine {
            store,
            ctx: Arc::new(ctx),
            clock: Arc::new(SystemClock),
            outbox_wake: Arc::new(Notify::new()),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// Milliseconds since the epoch, the store's time unit.
pub fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 3339 in UTC with milliseconds, the precision the store keeps.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t
        .replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
