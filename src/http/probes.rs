//! `/healthz` (the process is alive), `/readyz` (each dependency and its state;
//! 503 when one is down) and `/metrics` (Prometheus text).

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;
use std::time::Duration;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let store = match tokio::time::timeout(Duration::from_secs(2), s.engine.store.ping()).await {
        Ok(Ok(())) => json!({"status": "up", "backend": s.engine.store.backend()}),
        Ok(Err(e)) => json!({"status": "down", "error": e.to_string()}),
        Err(_) => json!({"status": "down", "error": "timed out"}),
    };
    let broker = if s.broker.is_up() {
        json!({"status": "up"})
    } else {
        json!({"status": "down", "error": "the consumer has no broker connection"})
    };
    let fhir = match s.fhir.probe().await {
        Ok(()) => json!({"status": "up"}),
        Err(e) => json!({"status": "down", "error": e.to_string()}),
    };
    let ready = [&store, &broker, &fhir].iter().all(|c| c["status"] == "up");
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(
            json!({"status": if ready { "ready" } else { "not-ready" }, "checks": {"store": store, "broker": broker, "fhir": fhir}}),
        ),
    )
}

pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    // Gauges of stored state are read by `engine::gauges` on its own
    // interval: a scrape costs the store nothing.
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.prometheus.render(),
    )
}
