//! Logs and metrics set-up.
//!
//! Logs never carry patient identifiers: the domain types mask themselves
//! (`NhsNumber` prints `***`), and code logs case and referral ids, which are
//! the bridge's own UUIDs. Metric labels are codes and outcomes only.

use crate::config::{LogFormat, LogSettings};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global tracing subscriber (once; later calls are no-ops).
pub fn init_logging(s: &LogSettings) {
    let filter = EnvFilter::try_new(&s.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match s.format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
}

/// Installs the Prometheus recorder once per process and returns its handle;
/// `/metrics` renders it. The exporter's own HTTP listener is not used: axum
/// serves `/metrics`.
pub fn init_metrics() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [1.0, 3.0, 7.0, 14.0, 21.0, 28.0, 42.0, 56.0, 90.0, 180.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "ips_referral_days_to_first_contact".into(),
                    ),
                    &buckets,
                )
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_ok() {
                describe();
            }
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "ips_messages_total",
        "Inbound messages by source and outcome (processed, duplicate, ignored, dead-lettered, retried)"
    );
    describe_counter!(
        "ips_dead_letters_total",
        "Messages sent to the dead-letter queue, by error code"
    );
    describe_counter!(
        "ips_fhir_requests_total",
        "FHIR requests by method and status class"
    );
    describe_gauge!("ips_outbox_pending", "Outbox rows not yet delivered");
    describe_gauge!(
        "ips_outbox_failed",
        "Outbox rows parked after too many attempts"
    );
    describe_counter!(
        "ips_referrals_received_total",
        "New referrals by source kind"
    );
    describe_counter!(
        "ips_referrals_incomplete_total",
        "Referrals received incomplete"
    );
    describe_gauge!("ips_referrals_incomplete", "Referrals currently incomplete");
    describe_counter!(
        "ips_referral_decisions_total",
        "Referral decisions by outcome"
    );
    describe_gauge!(
        "ips_waiting_list_size",
        "Accepted referrals not yet started"
    );
    describe_histogram!(
        "ips_referral_days_to_first_contact",
        "Days from referral received to first attended contact"
    );
    describe_gauge!(
        "ips_broker_connected",
        "1 while the AMQP consumer is connected"
    );
}
