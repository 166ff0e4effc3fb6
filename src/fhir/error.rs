//! Typed FHIR client errors: callers decide on retry, DLQ or surfacing by kind.

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FhirError {
    #[error("FHIR server unreachable: {0}")]
    Transport(String),
    #[error("FHIR server answered {status}: {detail}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        detail: String,
    },
    /// `If-Match` did not match: someone else updated the resource first.
    #[error(
        "version conflict on {resource}: the resource changed since version {expected} was read"
    )]
    VersionConflict { resource: String, expected: String },
    /// `If-None-Exist` matched more than one resource: the identifier is not unique on the server.
    #[error(
        "conditional create of {resource_type} matched several resources with identifier {identifier}"
    )]
    MultipleMatches {
        resource_type: String,
        identifier: String,
    },
    #[error(
        "circuit open for the FHIR server (repeated failures or its Retry-After); next attempt in {}s",
        .0.as_secs()
    )]
    CircuitOpen(Duration),
    #[error("FHIR authentication failed: {0}")]
    Auth(String),
    #[error("unexpected FHIR response: {0}")]
    InvalidResponse(String),
}

impl FhirError {
    /// Whether repeating the same (idempotent) request may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FhirError::Transport(_) | FhirError::CircuitOpen(_) => true,
            FhirError::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// The server's `Retry-After`, which wins over our own backoff.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FhirError::Status { retry_after, .. } => *retry_after,
            FhirError::CircuitOpen(d) => Some(*d),
            _ => None,
        }
    }

    /// Whether the failure says something about the server's health (for the breaker).
    pub fn counts_against_server(&self) -> bool {
        match self {
            FhirError::Transport(_) => true,
            FhirError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// What an OperationOutcome says, as its issue codes and element paths only,
/// e.g. `Bad Request: invalid at Task.for.identifier`. Servers echo the
/// offending values (identifiers, NHS numbers, names) in `diagnostics` and
/// `details.text`, and this text reaches logs and the outbox's `last_error`,
/// so free text is never taken, and a code or path that is not a plain token
/// is left out rather than trusted.
pub(crate) fn outcome_summary(body: &Value, status: StatusCode) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    let mut parts = Vec::new();
    for issue in body["issue"].as_array().into_iter().flatten().take(5) {
        let code = issue["code"]
            .as_str()
            .filter(|c| is_issue_code(c))
            .unwrap_or("unknown");
        let paths: Vec<&str> = ["expression", "location"]
            .iter()
            .flat_map(|k| issue[*k].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .filter(|p| is_element_path(p))
            .take(3)
            .collect();
        parts.push(if paths.is_empty() {
            code.to_owned()
        } else {
            format!("{code} at {}", paths.join(", "))
        });
    }
    if parts.is_empty() {
        reason.to_owned()
    } else {
        format!("{reason}: {}", parts.join("; "))
    }
}

/// A FHIR issue-type code (`invalid`, `not-found`, ...): lower-case letters and hyphens.
fn is_issue_code(c: &str) -> bool {
    !c.is_empty() && c.len() <= 40 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// A simple FHIRPath element path (`Task.for.identifier[0].value`): names and
/// short indexes only, so that a `where(value = '…')` clause carrying a value
/// is not taken.
fn is_element_path(p: &str) -> bool {
    p.len() <= 200
        && p.split('.').all(|seg| {
            let (name, index) = match seg.split_once('[') {
                Some((n, rest)) => (n, rest.strip_suffix(']')),
                None => (seg, Some("")),
            };
            let name_ok = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            let index_ok =
                index.is_some_and(|i| i.len() <= 3 && i.bytes().all(|b| b.is_ascii_digit()));
            name_ok && index_ok
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Diagnostics and details text may echo patient data: only codes and plain paths are kept.
    #[test]
    fn outcome_summary_keeps_codes_and_paths_only() {
        let body = serde_json::json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "NHS number 9912003888 unknown",
             "details": {"text": "9912003888"}, "expression": ["Task.for.identifier[0].value"]},
            {"severity": "error", "code": "9912003888", "expression": ["Patient.identifier.where(value='9912003888')"]}
        ]});
        let s = outcome_summary(&body, StatusCode::BAD_REQUEST);
        assert_eq!(
            s,
            "Bad Request: invalid at Task.for.identifier[0].value; unknown"
        );
        assert_eq!(
            outcome_summary(&Value::Null, StatusCode::BAD_GATEWAY),
            "Bad Gateway"
        );
    }
}
