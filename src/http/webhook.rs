//! `POST /fhir/notify`: a FHIR rest-hook (subscription) notification.
//! The body is not trusted for content; it only wakes the poller, which reads
//! the changes from the server itself. The shared secret is checked by a
//! layer on the route (`auth::require_webhook_secret`).

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub async fn notify(State(s): State<AppState>) -> Response {
    s.poll_wake.notify_one();
    (StatusCode::ACCEPTED, [(axum::http::header::CONTENT_TYPE, "application/fhir+json")], "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"information\",\"code\":\"informational\",\"diagnostics\":\"poll scheduled\"}]}").into_response()
}
