//! Assertive outreach state: appointment facts per case, outreach episodes
//! (a Flag and a Task in the record), attempts, and closures by a source
//! system's DNA rule.
//!
//! Inside a unit of work, a case's outreach state is read once (in bulk for
//! a batch) and kept in `pending::outreach`; appointment facts are buffered
//! to commit, episodes and attempts are written straight through (their
//! unique indexes must answer at once) and the cache follows them.

use super::Result;
use async_trait::async_trait;
use serde::Serialize;

/// Whether an outreach episode is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum EpisodeStatus {
    Active,
    Resolved,
}

impl EpisodeStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl TryFrom<String> for EpisodeStatus {
    type Error = super::StoreError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
            .map_err(|_| super::StoreError::Corrupt(format!("unknown episode status {s:?}")))
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct EpisodeRow {
    pub id: String,
    pub case_id: String,
    pub rule_id: String,
    #[sqlx(try_from = "String")]
    pub status: EpisodeStatus,
    pub opened_at: i64,
    pub due_at: i64,
    /// `ClosureRisk` JSON as assessed when the episode opened.
    pub risk: String,
    pub trigger_key: String,
    pub resolved_at: Option<i64>,
    pub resolution: Option<String>,
    pub updated_at: i64,
}

impl EpisodeRow {
    /// An attempt belongs to this episode when it was linked to it or made
    /// after it opened.
    pub fn covers(&self, a: &AttemptRow) -> bool {
        a.attempted_at >= self.opened_at || a.episode_id.as_deref() == Some(self.id.as_str())
    }
}

/// A case's appointment facts as the discharge rules see them (rows that do
/// not parse are skipped, as the views always have).
pub async fn appointment_facts(
    store: &(impl OutreachReads + ?Sized),
    case_id: &str,
) -> Result<Vec<crate::domain::outreach::AppointmentFact>> {
    Ok(store
        .facts_for_case_read(case_id)
        .await?
        .iter()
        .filter_map(|f| serde_json::from_str(f).ok())
        .collect())
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct AttemptRow {
    pub id: String,
    pub attempt_key: String,
    pub case_id: String,
    pub episode_id: Option<String>,
    pub method: String,
    pub outcome: String,
    pub attempted_at: i64,
    pub specialist: String,
    pub note: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct ClosureByRuleRow {
    pub id: String,
    pub case_id: String,
    pub referral_id: String,
    pub cause: String,
    pub closed_at: i64,
    pub recorded_at: i64,
}

/// Outreach writes and reads inside a unit of work.
#[async_trait]
pub trait OutreachTx: Send {
    /// Records (or replaces) an appointment's fact for its case.
    async fn fact_upsert(&mut self, key: &str, case_id: &str, fact: &str, now: i64) -> Result<()>;
    /// Every fact JSON of a case.
    async fn facts_for_case(&mut self, case_id: &str) -> Result<Vec<String>>;
    /// The latest successful contact of the case.
    async fn last_contact(&mut self, case_id: &str) -> Result<Option<i64>>;

    async fn episode_active(&mut self, case_id: &str) -> Result<Option<EpisodeRow>>;
    /// The most recent episode of a case, active or not.
    async fn episode_latest(&mut self, case_id: &str) -> Result<Option<EpisodeRow>>;
    async fn episode_insert(&mut self, e: &EpisodeRow) -> Result<()>;
    async fn episode_resolve(&mut self, id: &str, at: i64, resolution: &str) -> Result<()>;

    /// Inserts an attempt; `false` when one with its `attempt_key` exists.
    async fn attempt_insert(&mut self, a: &AttemptRow) -> Result<bool>;

    /// Records a closure by rule; `false` when this referral's closure of this cause is known.
    async fn closure_by_rule_insert(&mut self, c: &ClosureByRuleRow) -> Result<bool>;

    /// Closes a case with a reason; `false` when it was not open.
    async fn case_close(&mut self, id: &str, reason: &str, at: i64) -> Result<bool>;
}

/// Outreach figures for the gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutreachCounts {
    pub active: i64,
    /// Active and due between now and `soon`.
    pub due_soon: i64,
    /// Active and past due.
    pub overdue: i64,
    pub closures_by_rule: i64,
}

/// Outreach reads for the API and the board, outside any unit of work.
#[async_trait]
pub trait OutreachReads: Send + Sync {
    async fn episodes_active(&self, limit: i64) -> Result<Vec<EpisodeRow>>;
    async fn episodes_for_case(&self, case_id: &str) -> Result<Vec<EpisodeRow>>;
    async fn attempts_for_case(&self, case_id: &str) -> Result<Vec<AttemptRow>>;
    async fn facts_for_case_read(&self, case_id: &str) -> Result<Vec<String>>;
    async fn closures_by_rule_for_case(&self, case_id: &str) -> Result<Vec<ClosureByRuleRow>>;
    /// Active episodes, how many are due before `soon` or already past
    /// `now`, and closures by rule, across the service, for gauges.
    async fn outreach_counts(&self, now: i64, soon: i64) -> Result<OutreachCounts>;
}
