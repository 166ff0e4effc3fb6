//! Rows as the store holds them. Times are milliseconds since the epoch.

use crate::domain::case::CaseStatus;
use crate::domain::referral::ReferralState;
use serde::Serialize;

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct CaseRow {
    pub id: String,
    pub patient_id: String,
    #[sqlx(try_from = "String")]
    pub status: CaseStatus,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
    pub closed_reason: Option<String>,
    pub referral_count: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct ReferralRow {
    pub id: String,
    pub referral_key: String,
    pub case_id: Option<String>,
    pub resource_ref: Option<String>,
    pub channel: String,
    #[sqlx(try_from = "String")]
    pub state: ReferralState,
    pub fhir_status: String,
    /// JSON array of reasons (rule names, never patient data).
    pub incomplete_reasons: String,
    pub content_hash: String,
    pub source_updated_at: Option<i64>,
    pub authored_at: Option<i64>,
    pub received_at: i64,
    pub completed_at: Option<i64>,
    pub source_ods: Option<String>,
    pub source_kind: String,
    pub is_multiple: i64,
    #[sqlx(try_from = "Option<String>")]
    pub decision: StoredDecision,
    pub decline_reason: Option<String>,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub assistance_commenced_at: Option<i64>,
    pub updated_at: i64,
    #[serde(skip)]
    pub raw: String,
    /// The BaRS message the referral arrived in (JSON), for answering the BaRS way.
    #[serde(skip)]
    pub origin: Option<String>,
}

impl ReferralRow {
    /// The referral's business identifier `(system, value)`, when its key is
    /// one (`system|value`); the other key shapes (`ServiceRequest/{id}`,
    /// requester-scoped ids) are the bridge's own.
    pub fn business_identifier(&self) -> Option<(&str, &str)> {
        self.referral_key
            .split_once('|')
            .filter(|(system, _)| system.contains(':'))
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct AppointmentRow {
    pub id: String,
    pub appointment_key: String,
    pub case_id: Option<String>,
    pub status: String,
    pub start_at: Option<i64>,
    pub content_hash: String,
    pub source_updated_at: Option<i64>,
    pub updated_at: i64,
    #[serde(skip)]
    pub raw: String,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    pub ordering_key: String,
    pub payload: String,
    #[sqlx(try_from = "String")]
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub created_at: i64,
}

/// A row to add to the outbox.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub kind: &'static str,
    pub dedupe_key: String,
    pub ordering_key: String,
    pub payload: String,
}

#[derive(Debug, Clone)]
pub struct InboxEntry<'a> {
    pub source: &'a str,
    pub message_id: &'a str,
    pub received_at: i64,
    pub processed_at: i64,
    pub kind: &'a str,
    pub outcome: &'a str,
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct TimerRow {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub due_at: i64,
    pub payload: String,
}

/// How one outbox delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    Done {
        id: i64,
        at: i64,
        result: Option<String>,
    },
    Retry {
        id: i64,
        next_attempt_at: i64,
        error: String,
    },
    Failed {
        id: i64,
        error: String,
    },
}

/// Where an outbox row is: waiting (or in flight), delivered, or parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum OutboxStatus {
    Pending,
    Done,
    Failed,
}

/// A stored code this version does not know: refused, never defaulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown outbox status code {0:?}")]
pub struct UnknownOutboxStatus(pub String);

impl TryFrom<String> for OutboxStatus {
    type Error = UnknownOutboxStatus;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map_err(|_| UnknownOutboxStatus(s))
    }
}

/// A referral's stored decision as the domain's enum; `None` while undecided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(transparent)]
pub struct StoredDecision(pub Option<crate::domain::referral::DecisionOutcome>);

impl StoredDecision {
    pub fn as_str(self) -> Option<&'static str> {
        self.0.map(crate::domain::referral::DecisionOutcome::as_str)
    }
}

impl TryFrom<Option<String>> for StoredDecision {
    type Error = super::StoreError;
    fn try_from(s: Option<String>) -> Result<Self, Self::Error> {
        match s {
            None => Ok(StoredDecision(None)),
            Some(s) => s
                .parse()
                .map(|d| StoredDecision(Some(d)))
                .map_err(|_| super::StoreError::Corrupt(format!("unknown decision {s:?}"))),
        }
    }
}
