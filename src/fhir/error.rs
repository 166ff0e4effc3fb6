//! Typed FHIR client errors: callers decide on retry, DLQ or surfacing by kind.

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
    #[error("circuit open for the FHIR server after repeated failures; retrying after {0:?}")]
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
