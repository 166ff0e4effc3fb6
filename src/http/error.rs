//! Error responses: JSON for the API, OperationOutcome for FHIR endpoints.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Per-field problems (`[{"field": ..., "message": ...}]`), when there are several.
    pub problems: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            problems: vec![],
        }
    }

    /// 422 with `error.problems[]`: each `(field, what is wrong)`.
    pub fn unprocessable(
        code: &'static str,
        message: impl Into<String>,
        problems: Vec<(String, String)>,
    ) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).with_problems(problems)
    }

    pub fn with_problems(mut self, problems: Vec<(String, String)>) -> Self {
        self.problems = problems;
        self
    }
    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the service log",
        )
    }
}

/// A store failure is the server's problem: logged, and answered 500 without detail.
impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if !self.problems.is_empty() {
            error["problems"] = self
                .problems
                .iter()
                .map(|(field, message)| json!({"field": field, "message": message}))
                .collect();
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

/// Why a JSON body was refused, by path and kind only: axum's own text
/// carries serde's message, which quotes the offending value (an NHS number
/// put in the wrong field would be echoed, and proxies log error bodies).
pub fn json_rejection_summary(e: &axum::extract::rejection::JsonRejection) -> String {
    use axum::extract::rejection::JsonRejection as R;
    match e {
        R::JsonDataError(_) | R::JsonSyntaxError(_) => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
            while let Some(c) = cause {
                if let Some(pe) = c.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>()
                {
                    return format!("body: {}", crate::ingest::summary::serde_summary(pe));
                }
                cause = c.source();
            }
            "body does not match the expected JSON".into()
        }
        R::MissingJsonContentType(_) => "expected Content-Type: application/json".into(),
        _ => "cannot read the body".into(),
    }
}

/// A FHIR OperationOutcome error.
pub fn operation_outcome(status: StatusCode, code: &str, diagnostics: &str) -> Response {
    let body = json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]
    });
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/fhir+json")],
        body.to_string(),
    )
        .into_response()
}
