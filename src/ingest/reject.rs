//! A message the bridge cannot act on, with a code for machines and a reason for people.

use super::guard::GuardError;

/// Why a message goes to the dead-letter queue. `code` travels in the
/// `x-ips-error-code` header and as a metric label; `reason` in `x-ips-error`.
/// Neither ever contains patient data: reasons name elements and rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct Rejection {
    pub code: &'static str,
    pub reason: String,
}

impl Rejection {
    pub fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Rejection {
            code,
            reason: reason.into(),
        }
    }
}

impl From<GuardError> for Rejection {
    fn from(e: GuardError) -> Self {
        Rejection::new(e.code(), e.to_string())
    }
}
