//! Authentication as layers on the router, not calls inside handlers: a route
//! added under `/api` is covered without anyone remembering to check, and a
//! handler cannot run before the check has passed.

use super::AppState;
use super::error::{ApiError, operation_outcome};
use crate::config::{ExposeSecret, Secret, is_set};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// Lets a request through to the `/api` routes only with `Authorization:
/// Bearer <http.api_token>`; otherwise answers 401 with a JSON error.
pub async fn require_api_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if !is_set(&s.api_token) {
        return ApiError::unauthorized("API disabled: set http.api_token (or http.api_token_file)")
            .into_response();
    }
    if !secret_matches(&s.api_token, bearer(req.headers())) {
        return ApiError::unauthorized("missing or wrong bearer token").into_response();
    }
    next.run(req).await
}

/// The same for the FHIR rest-hook, with `http.webhook_secret`, answering as FHIR does.
pub async fn require_webhook_secret(
    State(s): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if !is_set(&s.webhook_secret) {
        return operation_outcome(
            StatusCode::UNAUTHORIZED,
            "security",
            "rest-hook disabled: set http.webhook_secret",
        );
    }
    if !secret_matches(&s.webhook_secret, bearer(req.headers())) {
        return operation_outcome(
            StatusCode::UNAUTHORIZED,
            "security",
            "missing or wrong bearer secret",
        );
    }
    next.run(req).await
}

/// Compares secrets in constant time (`subtle`), so response timing does not
/// leak how much of a guess was right. An unset secret matches nothing.
pub fn secret_matches(expected: &Secret, presented: Option<&str>) -> bool {
    let Some(p) = presented else { return false };
    is_set(expected) && bool::from(expected.expose_secret().as_bytes().ct_eq(p.as_bytes()))
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_exactly() {
        let s = Secret::from("abc123".to_owned());
        assert!(secret_matches(&s, Some("abc123")));
        assert!(!secret_matches(&s, Some("abc124")));
        assert!(!secret_matches(&s, Some("abc12")));
        assert!(!secret_matches(&s, None));
        assert!(!secret_matches(&Secret::from(String::new()), Some("")));
    }
}
