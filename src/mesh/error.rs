//! What can go wrong talking to MESH, sorted by what to do about it.
//!
//! MESH's error bodies carry an `errorCode` and a generic description; the
//! messages here name the status, the code and what to check, never a
//! message's content.

use reqwest::StatusCode;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum MeshError {
    /// 403: the mailbox, password, shared key or client certificate was refused.
    #[error(
        "MESH refused the bridge's credentials (HTTP 403{code}): check mesh.mailbox, mesh.password, mesh.shared_key and the client certificate"
    )]
    Auth { code: String },
    /// 417: MESH has no such recipient mailbox (or it may not take this workflow).
    #[error(
        "MESH does not know the recipient mailbox or it does not take this workflow (HTTP 417{code}): check mesh.mailboxes"
    )]
    UnknownRecipient { code: String },
    /// Over `mesh.max_message_bytes`, or MESH said 413.
    #[error("the message is too large for MESH ({bytes} bytes; the limit is {limit})")]
    TooLarge { bytes: u64, limit: u64 },
    /// Another 4xx: the request is wrong and repeating it will not help.
    #[error("MESH refused the request (HTTP {status}{code})")]
    Refused { status: u16, code: String },
    /// 429 or 5xx: MESH is busy or down; try later.
    #[error("MESH is unavailable (HTTP {status})")]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Connection, TLS or timeout.
    #[error("cannot reach MESH: {0}")]
    Transport(String),
    /// A setting the client cannot be built from (a certificate file that
    /// is missing or does not parse); nothing was sent.
    #[error("{0}")]
    Config(String),
    /// A 2xx whose body is not what the MESH API documents.
    #[error("MESH answered in an unexpected shape: {0}")]
    Protocol(String),
}

impl MeshError {
    /// Repeating the same request cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            MeshError::Auth { .. }
                | MeshError::UnknownRecipient { .. }
                | MeshError::TooLarge { .. }
                | MeshError::Refused { .. }
                | MeshError::Config(_)
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            MeshError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A metric label: the kind, never a value.
    pub fn label(&self) -> &'static str {
        match self {
            MeshError::Auth { .. } => "auth",
            MeshError::UnknownRecipient { .. } => "unknown-recipient",
            MeshError::TooLarge { .. } => "too-large",
            MeshError::Refused { .. } => "refused",
            MeshError::Unavailable { .. } => "unavailable",
            MeshError::Transport(_) => "transport",
            MeshError::Config(_) => "config",
            MeshError::Protocol(_) => "protocol",
        }
    }

    /// Sorts a non-success response. `error_code` is MESH's `errorCode`
    /// (or `error_code`) from the body, when there is one.
    pub fn from_status(
        status: StatusCode,
        error_code: Option<String>,
        retry_after: Option<Duration>,
    ) -> MeshError {
        // Error codes are short upper-case tokens or numbers; anything else
        // is not repeated.
        let code = error_code
            .filter(|c| {
                c.len() <= 20
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            })
            .map(|c| format!(", error code {c}"))
            .unwrap_or_default();
        match status.as_u16() {
            401 | 403 => MeshError::Auth { code },
            417 => MeshError::UnknownRecipient { code },
            413 => MeshError::TooLarge { bytes: 0, limit: 0 },
            429 | 500..=599 => MeshError::Unavailable {
                status: status.as_u16(),
                retry_after,
            },
            s => MeshError::Refused { status: s, code },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_permanent_and_outages_are_not() {
        let e = |s: u16| MeshError::from_status(StatusCode::from_u16(s).unwrap(), None, None);
        assert!(e(403).is_permanent());
        assert!(e(417).is_permanent());
        assert!(e(413).is_permanent());
        assert!(e(400).is_permanent());
        assert!(!e(503).is_permanent());
        assert!(!e(429).is_permanent());
        assert!(!MeshError::Transport("timeout".into()).is_permanent());
    }

    #[test]
    fn error_codes_that_are_not_plain_tokens_are_not_repeated() {
        let e = MeshError::from_status(
            StatusCode::EXPECTATION_FAILED,
            Some("9912003888 Jane".into()),
            None,
        );
        assert!(!e.to_string().contains("9912003888"), "{e}");
        let e = MeshError::from_status(StatusCode::FORBIDDEN, Some("EPL-151".into()), None);
        assert!(e.to_string().contains("EPL-151"), "{e}");
    }
}
