//! A message the bridge cannot act on, with a code for machines and a reason for people.

/// Why a message was refused. The code's kebab-case name travels in the
/// `x-ips-error-code` header, in API errors and as a metric label, so a
/// rename here is a breaking change for the people who alert on it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::EnumIter,
)]
#[strum(serialize_all = "kebab-case")]
pub enum RejectCode {
    // The transport guard (size, encoding, JSON shape).
    MessageTooLarge,
    InvalidUtf8,
    InvalidJson,
    DuplicateJsonKey,
    JsonTooDeep,
    StringTooLong,
    // What the message is.
    NotAResource,
    Stu3Resource,
    UnknownResourceType,
    UnsupportedResourceType,
    InvalidBundle,
    UnsupportedBundleType,
    TooManyEntries,
    MissingMessageHeader,
    InvalidMessageHeader,
    MissingFocus,
    // What is in it.
    MissingRequiredElement,
    InvalidElement,
    InvalidCode,
    InvalidEvent,
    UnknownEventType,
    // What it asks for, against what the bridge knows.
    UnknownReferral,
    ReferralIncomplete,
    AlreadyDecided,
    NotDecidable,
    UnknownDeclineReason,
    UnknownCase,
    CaseClosed,
    NoActiveOutreach,
    InvalidOutreachAttempt,
    /// A document input breaks a rule (unknown section, text too long).
    InvalidDocument,
    /// Completing a VP or IWSP whose required sections are missing.
    IncompleteDocument,
    /// A QuestionnaireResponse for a Questionnaire the bridge does not know.
    UnknownQuestionnaire,
    /// A comment about a document the bridge did not publish.
    UnknownDocument,
    /// A job start, job end or employment status breaks a rule (a code
    /// outside the NHS Data Dictionary's, a date in the future).
    InvalidEmploymentRecord,
    /// A job end for a job the bridge has not recorded.
    UnknownJob,
    /// An assignment that breaks a rule.
    InvalidAssignment,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a message goes to the dead-letter queue. Neither the code nor the
/// reason ever contains patient data: reasons name elements and rules, never
/// values taken from the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct Rejection {
    pub code: RejectCode,
    pub reason: String,
}

impl Rejection {
    pub fn new(code: RejectCode, reason: impl Into<String>) -> Self {
        Rejection {
            code,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn codes_round_trip_and_keep_their_published_spelling() {
        for c in RejectCode::iter() {
            assert_eq!(c.as_str().parse::<RejectCode>(), Ok(c));
            assert!(
                c.as_str()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '-' || ch.is_ascii_digit())
            );
        }
        assert_eq!(RejectCode::InvalidUtf8.as_str(), "invalid-utf8");
        assert_eq!(RejectCode::Stu3Resource.as_str(), "stu3-resource");
        assert_eq!(RejectCode::DuplicateJsonKey.as_str(), "duplicate-json-key");
    }
}
