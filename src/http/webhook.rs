//! `POST /fhir/notify`: a FHIR rest-hook (subscription) notification.
//! The body is not trusted for content; it only wakes the poller, which reads
//! the changes from the server itself.

use super::error::operation_outcome;
use super::{AppState, bearer, secret_matches};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

pub async fn notify(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if !s.webhook_secret.is_set() {
        return operation_outcome(
            StatusCode::UNAUTHORIZED,
            "security",
            "rest-hook disabled: set http.webhook_secret",
        );
    }
    if !secret_matches(&s.webhook_secret, bearer(&headers)) {
        return operation_outcome(
            StatusCode::UNAUTHORIZED,
            "security",
            "missing or wrong bearer secret",
        );
    }
    s.poll_wake.notify_one();
    (StatusCode::ACCEPTED, [(axum::http::header::CONTENT_TYPE, "application/fhir+json")], "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"information\",\"code\":\"informational\",\"diagnostics\":\"poll scheduled\"}]}").into_response()
}
