//! Logs and metrics set-up.
//!
//! Logs never carry patient identifiers: the domain types mask themselves
//! (`NhsNumber` prints `***`), and code logs case and referral ids, which are
//! the bridge's own UUIDs. Metric labels are codes and outcomes only.

pub mod catalog;

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
            // Histograms with buckets (not summaries), so that replicas'
            // figures can be added up and quantiles taken over any window.
            use metrics_exporter_prometheus::Matcher;
            let days = [1.0, 3.0, 7.0, 14.0, 21.0, 28.0, 42.0, 56.0, 90.0, 180.0];
            let seconds = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let messages = [1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_days".into()), &days)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("ips_referral_days_to_first_contact".into()),
                        &days,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("ips_batch_messages".into()), &messages)
                })
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_ok() {
                catalog::describe();
            }
            handle
        })
        .clone()
}
