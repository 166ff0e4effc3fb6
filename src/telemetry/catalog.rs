//! Every metric the bridge exports, in one place: its name, kind and help,
//! and the series registered at zero when the process starts.
//!
//! Why register at zero: a counter that first appears at 1 is invisible to
//! `increase()` (Prometheus sees no earlier sample), so the first dead letter
//! or the first parked write would never fire an alert; and a dashboard or an
//! alert rule naming a metric the process has not touched yet cannot be told
//! apart from a misspelt one. So each series whose labels come from a closed
//! set of codes is registered for every code, and every metric has at least
//! its label-less or one coded series from the first scrape on.
//! `tests/metrics_catalog.rs` checks that every metric the code records is
//! listed here, and `tests/ops/dashboard.sh` that the dashboard and the alert
//! rules name only metrics a freshly started daemon exports.

use crate::domain::documents::DocumentKind;
use crate::domain::documents::delivery::DeliveryState;
use crate::domain::outreach::{AttemptMethod, AttemptOutcome};
use crate::domain::referral::DecisionOutcome;
use crate::domain::source::SourceKind;
use crate::engine::command::CommentSource;
use crate::engine::command::Source;
use crate::engine::handlers::outreach::Cause;
use crate::engine::handlers::outreach::closure::ClosureCause;
use crate::engine::outbox::OutboxKind;
use crate::engine::rejection::RejectCode;
use metrics::{counter, gauge, histogram};
use strum::IntoEnumIterator;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn m(name: &'static str, kind: Kind, help: &'static str) -> Metric {
    Metric { name, kind, help }
}

use Kind::{Counter as C, Gauge as G, Histogram as H};

/// The catalogue. Labels are codes and outcomes only, never patient data.
pub const METRICS: &[Metric] = &[
    // Intake.
    m(
        "ips_messages_total",
        C,
        "Inbound messages by source and outcome (processed, unchanged, duplicate, ignored, dead-lettered, requeued)",
    ),
    m(
        "ips_dead_letters_total",
        C,
        "Messages dead-lettered, by error code",
    ),
    m("ips_batch_seconds", H, "Time to commit one consumer batch"),
    m("ips_batch_messages", H, "Messages per consumer batch"),
    m(
        "ips_broker_connected",
        G,
        "1 while the AMQP consumer is connected",
    ),
    m(
        "ips_referrals_received_total",
        C,
        "New referrals by source kind",
    ),
    m(
        "ips_referrals_incomplete_total",
        C,
        "Referrals received incomplete",
    ),
    m(
        "ips_referrals_incomplete",
        G,
        "Referrals currently incomplete",
    ),
    m(
        "ips_referrals_incomplete_oldest_seconds",
        G,
        "Age of the oldest incomplete referral (0 when none)",
    ),
    m(
        "ips_referral_decisions_total",
        C,
        "Referral decisions by outcome",
    ),
    m(
        "ips_waiting_list_size",
        G,
        "Accepted referrals not yet started",
    ),
    m(
        "ips_referral_days_to_first_contact",
        H,
        "Days from referral received to first attended contact",
    ),
    // The record and the outbox.
    m(
        "ips_fhir_requests_total",
        C,
        "FHIR requests by method and status class",
    ),
    m(
        "ips_fhir_breaker_open",
        G,
        "1 while the FHIR circuit breaker holds requests back",
    ),
    m("ips_outbox_pending", G, "Outbox rows not yet delivered"),
    m(
        "ips_outbox_failed",
        G,
        "Outbox rows parked after a permanent error or too many attempts",
    ),
    m(
        "ips_outbox_delivered_total",
        C,
        "Outbox rows delivered, by kind",
    ),
    m("ips_outbox_parked_total", C, "Outbox rows parked, by kind"),
    m("ips_timers_fired_total", C, "Durable timers fired"),
    // Outreach.
    m(
        "ips_outreach_flags_raised_total",
        C,
        "Outreach flags raised, by discharge rule",
    ),
    m(
        "ips_outreach_flags_resolved_total",
        C,
        "Outreach flags resolved, by resolution",
    ),
    m("ips_outreach_flags_active", G, "Active outreach flags"),
    m(
        "ips_outreach_flags_due_soon",
        G,
        "Active outreach flags due within the next 48 hours",
    ),
    m(
        "ips_outreach_flags_overdue",
        G,
        "Active outreach flags past their due date",
    ),
    m(
        "ips_outreach_closures_total",
        C,
        "Closures for missed appointments prevented or that happened, by cause",
    ),
    m(
        "ips_outreach_closures_by_rule",
        G,
        "Closures by a missed-appointment rule on record",
    ),
    m(
        "ips_outreach_attempts_total",
        C,
        "Outreach attempts by method and outcome",
    ),
    // Documents.
    m(
        "ips_documents_published_total",
        C,
        "Documents published to the record, by kind",
    ),
    m(
        "ips_document_comments_total",
        C,
        "Comments received on published documents, by source",
    ),
    m(
        "ips_document_reviews_chased_total",
        C,
        "Review requests chased after their due date",
    ),
    m(
        "ips_document_reviews_overdue",
        G,
        "Review requests past their due date",
    ),
    m(
        "ips_document_review_turnaround_days",
        H,
        "Days from a review request to its first comment",
    ),
    m(
        "ips_document_deliveries",
        G,
        "Documents sent over MESH, by delivery state",
    ),
    m(
        "ips_document_deliveries_total",
        C,
        "MESH delivery state changes, by new state",
    ),
    // MESH.
    m(
        "ips_mesh_requests_total",
        C,
        "MESH API requests by operation and HTTP status",
    ),
    m(
        "ips_mesh_request_seconds",
        H,
        "MESH API request time by operation",
    ),
    m(
        "ips_mesh_messages_sent_total",
        C,
        "Messages sent over MESH, by workflow",
    ),
    m(
        "ips_mesh_messages_rejected_total",
        C,
        "MESH inbox messages dead-lettered, by error code",
    ),
    m(
        "ips_mesh_send_failures_total",
        C,
        "MESH sends that failed, by reason",
    ),
    m(
        "ips_mesh_inbox_failures_total",
        C,
        "MESH inbox reads that failed, by reason",
    ),
    // The rest-hook.
    m(
        "ips_webhook_tls_refused_total",
        C,
        "Rest-hook TLS handshakes refused",
    ),
];

/// MESH failure reasons (`MeshError::label`), kept here so that the zero
/// series do not pull the MESH adapter into the catalogue.
const MESH_REASONS: &[&str] = &[
    "auth",
    "unknown-recipient",
    "too-large",
    "refused",
    "unavailable",
    "transport",
    "config",
    "protocol",
];
const FHIR_METHODS: &[&str] = &["GET", "POST", "PUT"];
const STATUS_CLASSES: &[&str] = &["2xx", "4xx", "5xx", "error"];
const MESH_OPS: &[&str] = &[
    "handshake",
    "inbox",
    "download",
    "download-chunk",
    "acknowledge",
    "send",
    "send-chunk",
    "track",
];

/// Describes every metric to the recorder.
pub fn describe() {
    for m in METRICS {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

/// Registers the zero series (see the module comment). `rules` are the
/// configured discharge rules' ids. Counters are incremented by 0, so calling
/// this again never resets them.
pub fn register_zero(rules: &[&str]) {
    for source in Source::iter() {
        for outcome in crate::engine::outcome::OUTCOMES {
            counter!("ips_messages_total", "source" => source.as_str(), "outcome" => *outcome)
                .increment(0);
        }
    }
    for code in RejectCode::iter() {
        counter!("ips_dead_letters_total", "code" => code.as_str()).increment(0);
        counter!("ips_mesh_messages_rejected_total", "code" => code.as_str()).increment(0);
    }
    for kind in SourceKind::ALL {
        counter!("ips_referrals_received_total", "source" => kind.as_str()).increment(0);
    }
    for outcome in DecisionOutcome::iter() {
        counter!("ips_referral_decisions_total", "outcome" => outcome.as_str()).increment(0);
    }
    for method in FHIR_METHODS {
        for status in STATUS_CLASSES {
            counter!("ips_fhir_requests_total", "method" => *method, "status" => *status)
                .increment(0);
        }
    }
    for kind in OutboxKind::iter() {
        counter!("ips_outbox_delivered_total", "kind" => kind.as_str()).increment(0);
        counter!("ips_outbox_parked_total", "kind" => kind.as_str()).increment(0);
    }
    for rule in rules {
        counter!("ips_outreach_flags_raised_total", "rule" => rule.to_string()).increment(0);
    }
    for cause in Cause::iter().filter(|c| c.resolves()) {
        let resolution: &'static str = cause.into();
        counter!("ips_outreach_flags_resolved_total", "resolution" => resolution).increment(0);
    }
    counter!("ips_outreach_closures_total", "result" => "prevented").increment(0);
    for cause in ClosureCause::iter() {
        let cause: &'static str = cause.into();
        counter!("ips_outreach_closures_total", "result" => "happened", "cause" => cause)
            .increment(0);
    }
    for method in AttemptMethod::iter() {
        for outcome in AttemptOutcome::iter() {
            let (method, outcome): (&'static str, &'static str) = (method.into(), outcome.into());
            counter!("ips_outreach_attempts_total", "method" => method, "outcome" => outcome)
                .increment(0);
        }
    }
    for kind in DocumentKind::iter() {
        counter!("ips_documents_published_total", "kind" => kind.as_str()).increment(0);
    }
    for source in CommentSource::iter() {
        let source: &'static str = source.into();
        counter!("ips_document_comments_total", "source" => source).increment(0);
    }
    for state in DeliveryState::iter() {
        let state: &'static str = state.into();
        counter!("ips_document_deliveries_total", "state" => state).increment(0);
        gauge!("ips_document_deliveries", "state" => state).set(0.0);
    }
    for op in MESH_OPS {
        counter!("ips_mesh_requests_total", "op" => *op, "status" => "200").increment(0);
        let _ = histogram!("ips_mesh_request_seconds", "op" => *op);
    }
    counter!("ips_mesh_messages_sent_total", "workflow" => "GPCONNECT_SEND_DOCUMENT").increment(0);
    for reason in MESH_REASONS {
        counter!("ips_mesh_send_failures_total", "reason" => *reason).increment(0);
        counter!("ips_mesh_inbox_failures_total", "reason" => *reason).increment(0);
    }
    for name in [
        "ips_referrals_incomplete_total",
        "ips_timers_fired_total",
        "ips_document_reviews_chased_total",
        "ips_webhook_tls_refused_total",
    ] {
        counter!(name).increment(0);
    }
    for name in [
        "ips_batch_seconds",
        "ips_batch_messages",
        "ips_referral_days_to_first_contact",
        "ips_document_review_turnaround_days",
    ] {
        let _ = histogram!(name);
    }
    // Gauges start at zero; the stored-state ones are set from the store at
    // the first refresh (`engine::gauges`).
    for m in METRICS.iter().filter(|m| m.kind == Kind::Gauge) {
        if m.name != "ips_document_deliveries" {
            gauge!(m.name).set(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prometheus_shaped() {
        let mut seen = std::collections::HashSet::new();
        for m in METRICS {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("ips_"), "{}", m.name);
            assert!(
                m.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                m.name
            );
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                m.name
            );
        }
    }
}
