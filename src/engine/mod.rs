//! The engine: applies commands in store transactions and delivers what they cause.
//!
//! Sources (AMQP consumer, FHIR poller, HTTP API, timer runner, outbox
//! conflicts) turn their input into [`command::Command`]s and hand them to
//! [`Engine::execute`], the one commit path ([`execute`]). [`handlers`] hold
//! the per-command logic (read, decide with the pure domain, write state +
//! outbox + timers + audit); [`outbox`] delivers outbox rows to the sinks,
//! which the engine knows only through a trait; [`timers`] fires durable
//! deadlines. The engine imports no adapter: adapters import it.

pub mod clock;
pub mod command;
pub mod events;
mod execute;
pub mod gauges;
pub mod handlers;
pub mod housekeeping;
pub mod outbox;
pub mod outcome;
pub mod rejection;
pub mod timers;

pub use clock::{Clock, FileClock, SystemClock};
pub use command::{Command, Inbound, Source};
pub use outcome::{Applied, Signal};
pub use rejection::{RejectCode, Rejection};

use crate::config::Settings;
use crate::domain::outreach::RuleSet;
use crate::domain::{NhsNumber, PatientKey};
use crate::render::outreach::FlagCoding;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;

/// What handlers need to know about this deployment.
pub struct Context {
    pub actor: String,
    pub service_ods: String,
    /// Where BaRS answers say they come from (`MessageHeader.source.endpoint`).
    pub service_endpoint: Option<String>,
    pub identifier_system: String,
    pub decline_reasons: Vec<String>,
    /// IPS fidelity: everyone on the waiting list is seen within this.
    pub waiting_list_target: Duration,
    /// Keys the patient lookup hashes; never a default, `app::start` refuses to run without one.
    pub patient_key: PatientKey,
    pub outreach: OutreachContext,
    pub documents: crate::config::DocumentSettings,
    /// The team: its care setting (caseload limit) and configured roster.
    pub team: crate::config::TeamSettings,
    /// Which way documents go, and what MESH sends need (no credentials).
    pub delivery: DeliveryContext,
}

/// Document routing and the MESH settings a handler needs to queue a send.
#[derive(Debug, Clone)]
pub struct DeliveryContext {
    pub routing: crate::config::RoutingSettings,
    pub mesh_enabled: bool,
    /// The bridge's own mailbox (the message's source endpoint).
    pub mailbox: String,
    pub workflow_id: String,
    pub format: crate::render::send_document::Format,
    pub patient_routing: bool,
    pub ack_within: Duration,
    /// Practice ODS code → mailbox id.
    pub mailboxes: std::collections::BTreeMap<String, String>,
}

impl DeliveryContext {
    pub fn from_settings(s: &Settings) -> Self {
        DeliveryContext {
            routing: s.routing.clone(),
            mesh_enabled: s.mesh.enabled,
            mailbox: s.mesh.mailbox.clone(),
            workflow_id: s.mesh.workflow_id.clone(),
            format: s.mesh.format,
            patient_routing: s.mesh.patient_routing,
            ack_within: s.mesh.ack_within,
            mailboxes: s.mesh.mailboxes.clone(),
        }
    }

    pub fn mailbox_for(&self, ods: &str) -> Option<&str> {
        crate::config::mailbox_in(&self.mailboxes, ods)
    }
}

/// The discharge rules and how outreach episodes are written.
#[derive(Debug, Clone, Default)]
pub struct OutreachContext {
    pub rules: RuleSet,
    pub flag: FlagCoding,
    /// The specialist's Task is due no later than this after the flag.
    pub task_lead: Duration,
}

impl OutreachContext {
    pub fn from_settings(o: &crate::config::OutreachSettings) -> Self {
        OutreachContext {
            rules: o.rules().clone(),
            flag: FlagCoding {
                category_system: o.flag_category_system.clone(),
                category_code: o.flag_category_code.clone(),
                category_display: o.flag_category_display.clone(),
                code_text: o.flag_code_text.clone(),
                code: o
                    .flag_code_coding()
                    .map(|(s, c, d)| (s.to_owned(), c.to_owned(), d.to_owned())),
            },
            task_lead: o.task_lead,
        }
    }

    /// A rule's name for people (its id when the rules changed since).
    pub fn rule_name(&self, id: &str) -> String {
        self.rules
            .rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    /// A rule's id as a metric label: only configured ids, so the label set stays bounded.
    pub fn rule_label(&self, id: &str) -> String {
        if self.rules.rules.iter().any(|r| r.id == id) {
            id.to_owned()
        } else {
            "unknown".into()
        }
    }
}

impl Context {
    pub fn from_settings(s: &Settings, patient_key: PatientKey) -> Self {
        Context {
            actor: s.service.name.clone(),
            service_ods: s.service.ods_code.clone(),
            service_endpoint: s.service.endpoint.clone(),
            identifier_system: s.service.identifier_system.clone(),
            decline_reasons: s.intake.decline_reasons.clone(),
            waiting_list_target: Duration::from_secs(
                u64::from(s.intake.waiting_list_weeks) * 7 * 86_400,
            ),
            patient_key,
            outreach: OutreachContext::from_settings(&s.outreach),
            documents: s.documents.clone(),
            team: s.team.clone(),
            delivery: DeliveryContext::from_settings(s),
        }
    }

    /// The key patients are looked up by.
    pub fn lookup_hash(&self, n: &NhsNumber) -> String {
        n.lookup_hash(&self.patient_key)
    }
}

#[derive(Clone)]
pub struct Engine {
    pub store: Arc<dyn Store>,
    pub ctx: Arc<Context>,
    pub clock: Arc<dyn Clock>,
    /// Woken after a commit that queued outbox rows.
    pub outbox_wake: Arc<Notify>,
    /// Woken after a commit that may have scheduled a timer.
    pub timer_wake: Arc<Notify>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, ctx: Context, clock: Arc<dyn Clock>) -> Self {
        Engine {
            store,
            ctx: Arc::new(ctx),
            clock,
            outbox_wake: Arc::new(Notify::new()),
            timer_wake: Arc::new(Notify::new()),
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

/// A new row id: a UUIDv7 (RFC 9562) stamped with `now`.
///
/// Why not random (v4): ids are primary keys and foreign keys, and random
/// keys spread each batch's inserts over every page of each index, so each
/// commit rewrote most index pages; during a drain SQLite's WAL took 5.5
/// times the database's size. Time-ordered ids land on each index's last
/// pages instead. Times before 1970 (never the engine's clock) stamp 0.
pub fn new_id(now: OffsetDateTime) -> String {
    let nanos = now.unix_timestamp_nanos().max(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        (nanos / 1_000_000_000) as u64,
        (nanos % 1_000_000_000) as u32,
    );
    uuid::Uuid::new_v7(ts).to_string()
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
