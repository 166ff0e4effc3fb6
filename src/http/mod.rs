//! HTTP surface (axum): probes, metrics, the FHIR rest-hook and the API.

pub mod api;
pub mod auth;
pub mod documents;
pub mod employment;
pub mod error;
pub mod outreach;
pub mod probes;
pub mod tls;
pub mod webhook;

use crate::amqp::BrokerHealth;
use crate::config::Secret;
use crate::engine::Engine;
use crate::fhir::FhirClient;
use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
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

/// Every `/api` route sits in one sub-router whose `route_layer` checks the
/// bearer token, so a new API route is authenticated by being put there.
/// `with_hook`: whether the rest-hook is served here too (not when it has a
/// mutual-TLS listener of its own: see [`hook_router`]).
pub fn router(state: AppState, with_hook: bool) -> Router {
    let api = Router::new()
        .route("/api/cases", get(api::list_cases))
        .route("/api/cases/{id}", get(api::get_case))
        .route("/api/referrals", get(api::list_referrals))
        .route("/api/referrals/{id}", get(api::get_referral))
        .route("/api/referrals/{id}/decision", post(api::decide))
        .route("/api/outreach", get(outreach::board))
        .route("/api/cases/{id}/close", post(outreach::close_case))
        .route(
            "/api/cases/{id}/outreach-attempts",
            post(outreach::record_attempt),
        )
        .route("/api/cases/{id}/outreach/resolve", post(outreach::resolve))
        .route("/api/cases/{id}/documents", get(documents::list))
        .route(
            "/api/cases/{id}/documents/{kind}/sections",
            post(documents::add_sections),
        )
        .route(
            "/api/cases/{id}/documents/{kind}/complete",
            post(documents::complete),
        )
        .route("/api/cases/{id}/notes", post(documents::add_note))
        .route("/api/cases/{id}/job-starts", post(employment::job_start))
        .route("/api/cases/{id}/job-ends", post(employment::job_end))
        .route(
            "/api/cases/{id}/employment-status",
            post(employment::employment_status),
        )
        .route("/api/cases/{id}/assignment", put(employment::assign))
        .route("/api/staff", get(employment::staff))
        .route("/api/reports/fidelity", get(employment::fidelity_report))
        .route("/api/reports/ips-grow", get(employment::ips_grow_report))
        .route_layer(from_fn_with_state(state.clone(), auth::require_api_token));
    let mut routes = Router::new()
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .merge(api);
    if with_hook {
        routes = routes.merge(hook_routes(&state));
    }
    routes.with_state(state)
}

/// The rest-hook alone, for its mutual-TLS listener.
pub fn hook_router(state: AppState) -> Router {
    hook_routes(&state).with_state(state)
}

fn hook_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/fhir/notify", post(webhook::notify))
        .route_layer(from_fn_with_state(
            state.clone(),
            auth::require_webhook_secret,
        ))
}
