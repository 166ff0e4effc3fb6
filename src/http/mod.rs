//! HTTP surface (axum): probes, metrics, the FHIR rest-hook and the API.

pub mod api;
pub mod error;
pub mod probes;
pub mod webhook;

use crate::amqp::BrokerHealth;
use crate::config::Secret;
use crate::engine::Engine;
use crate::fhir::FhirClient;
use axum::Router;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub fhir: Arc<FhirClient>,
    pub broker: Arc<BrokerHealth>,
    pub prometheus: PrometheusHandle,
    pub api_token: Secret,
    pub webhook_secret: Secret,
    pub poll_wake: Arc<Notify>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .route("/fhir/notify", post(webhook::notify))
        .route("/api/cases", get(api::list_cases))
        .route("/api/cases/{id}", get(api::get_case))
        .route("/api/referrals", get(api::list_referrals))
        .route("/api/referrals/{id}", get(api::get_referral))
        .route("/api/referrals/{id}/decision", post(api::decide))
        .with_state(state)
}

/// Compares secrets in constant time, so response timing does not leak them.
pub fn secret_matches(expected: &Secret, presented: Option<&str>) -> bool {
    let Some(p) = presented else { return false };
    let (a, b) = (expected.expose().as_bytes(), p.as_bytes());
    expected.is_set()
        && a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}
