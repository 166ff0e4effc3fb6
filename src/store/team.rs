//! The team's records: job starts and ends, employment status, who holds
//! each case, the staff roster; and the snapshot the reports and pages read.

use super::{Result, StoreError};
use crate::domain::documents::Draft;
use crate::domain::employment::{EmploymentStatus, HoursBand};
use crate::domain::outreach::{AppointmentFact, AttemptOutcome, Attendance};
use crate::domain::reports::{
    AttemptFacts, CaseFacts, ClosureFacts, DocumentFacts, EpisodeFacts, JobFacts, ReferralFacts,
    Snapshot, StatusFacts,
};
use async_trait::async_trait;
use serde::Serialize;
use time::{Date, OffsetDateTime};

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct JobRow {
    pub id: String,
    pub job_key: String,
    pub case_id: String,
    pub employer: String,
    /// `YYYY-MM-DD`.
    pub started_on: String,
    pub hours_band: String,
    pub hours_per_week: Option<f64>,
    pub paid: i64,
    pub recorded_by: String,
    pub ended_on: Option<String>,
    pub end_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq, Eq)]
pub struct StatusRow {
    pub id: String,
    pub status_key: String,
    pub case_id: String,
    pub status: String,
    pub recorded_on: String,
    pub started_on: Option<String>,
    pub hours_band: Option<String>,
    pub recorded_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq, Eq)]
pub struct AssignmentRow {
    pub case_id: String,
    pub specialist: String,
    pub assigned_by: String,
    pub assigned_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq, Eq)]
pub struct StaffRow {
    pub sub: String,
    pub name: String,
    /// Comma-separated role codes.
    pub roles: String,
    pub last_seen_at: i64,
}

/// Team writes inside a unit of work (each through the engine, audited).
#[async_trait]
pub trait TeamTx: Send {
    /// `false` when a job with this `job_key` is already recorded.
    async fn job_insert(&mut self, j: &JobRow) -> Result<bool>;
    /// The case's job with this key (the sender's id) or this row id (the bridge's).
    async fn job_find(&mut self, case_id: &str, job_key: &str, id: &str) -> Result<Option<JobRow>>;
    /// Writes `ended_on`, `end_reason` and `updated_at`.
    async fn job_update_end(&mut self, j: &JobRow) -> Result<()>;
    /// `false` when a status with this `status_key` is already recorded.
    async fn status_insert(&mut self, s: &StatusRow) -> Result<bool>;
    /// Who held the case before, if anyone.
    async fn assignment_set(&mut self, a: &AssignmentRow) -> Result<Option<String>>;
}

/// The raw rows of a snapshot, as the SQL reads them.
#[derive(Debug, Default)]
pub struct SnapshotRows {
    pub cases: Vec<(String, i64, Option<i64>, Option<String>)>,
    pub referrals: Vec<super::ReferralRow>,
    pub jobs: Vec<JobRow>,
    pub statuses: Vec<StatusRow>,
    pub episodes: Vec<super::EpisodeRow>,
    pub attempts: Vec<super::AttemptRow>,
    pub closures: Vec<super::ClosureByRuleRow>,
    pub documents: Vec<super::DocumentRow>,
    /// (case id, AppointmentFact JSON).
    pub facts: Vec<(String, String)>,
    /// Drafts of every kind.
    pub drafts: Vec<super::DraftRow>,
    pub comments: Vec<super::CommentRow>,
}

/// Team reads (and the roster, written at sign-in) outside any unit of work.
#[async_trait]
pub trait TeamStore: Send + Sync {
    async fn snapshot_rows(&self) -> Result<SnapshotRows>;
    /// `(case id, NHS number)` of every case: for the MHSDS rows only.
    async fn case_nhs_numbers(&self) -> Result<Vec<(String, String)>>;
    async fn jobs_for_case(&self, case_id: &str) -> Result<Vec<JobRow>>;
    async fn statuses_for_case(&self, case_id: &str) -> Result<Vec<StatusRow>>;
    async fn assignment_of(&self, case_id: &str) -> Result<Option<AssignmentRow>>;
    async fn document_exists(&self, id: &str) -> Result<bool>;
    async fn staff_seen(&self, s: &StaffRow) -> Result<()>;
    async fn staff_list(&self) -> Result<Vec<StaffRow>>;
}

fn at(ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| StoreError::Corrupt(format!("time {ms} out of range")))
}

pub fn parse_date(s: &str) -> Result<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, fmt).map_err(|_| StoreError::Corrupt(format!("stored date {s:?} is not a date")))
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {v:?}"))
}

impl JobRow {
    pub fn facts(&self) -> Result<JobFacts> {
        Ok(JobFacts {
            id: self.id.clone(),
            case_id: self.case_id.clone(),
            employer: self.employer.clone(),
            started_on: parse_date(&self.started_on)?,
            band: self
                .hours_band
                .parse::<HoursBand>()
                .map_err(|_| corrupt("hours band", &self.hours_band))?,
            hours: self.hours_per_week,
            paid: self.paid != 0,
            ended_on: self.ended_on.as_deref().map(parse_date).transpose()?,
        })
    }
}

impl StatusRow {
    pub fn facts(&self) -> Result<StatusFacts> {
        Ok(StatusFacts {
            case_id: self.case_id.clone(),
            status: self
                .status
                .parse::<EmploymentStatus>()
                .map_err(|_| corrupt("employment status", &self.status))?,
            recorded_on: parse_date(&self.recorded_on)?,
            started_on: self.started_on.as_deref().map(parse_date).transpose()?,
            band: self
                .hours_band
                .as_deref()
                .map(|b| b.parse::<HoursBand>().map_err(|_| corrupt("hours band", b)))
                .transpose()?,
            created_at: at(self.created_at)?,
        })
    }
}

impl SnapshotRows {
    /// Domain facts from the rows; `roster` is every specialist known
    /// (signed in or configured), by staff id, with names.
    pub fn into_snapshot(
        self,
        roster: std::collections::BTreeMap<String, String>,
    ) -> Result<Snapshot> {
        let mut s = Snapshot {
            specialists: roster,
            ..Snapshot::default()
        };
        for (id, opened, closed, specialist) in self.cases {
            s.cases.push(CaseFacts {
                id,
                opened_at: at(opened)?,
                closed_at: closed.map(at).transpose()?,
                specialist,
                nhs_number: None,
            });
        }
        for r in self.referrals {
            s.referrals.push(ReferralFacts {
                id: r.id,
                case_id: r.case_id,
                state: r.state,
                received_at: at(r.received_at)?,
                completed_at: r.completed_at.map(at).transpose()?,
                incomplete_reasons: serde_json::from_str(&r.incomplete_reasons).unwrap_or_default(),
                source_kind: r.source_kind,
                is_multiple: r.is_multiple != 0,
                decision: r.decision.0,
                decline_reason: r.decline_reason,
                decided_at: r.decided_at.map(at).transpose()?,
                assistance_commenced_at: r.assistance_commenced_at.map(at).transpose()?,
            });
        }
        s.jobs = self.jobs.iter().map(JobRow::facts).collect::<Result<_>>()?;
        s.statuses = self
            .statuses
            .iter()
            .map(StatusRow::facts)
            .collect::<Result<_>>()?;
        for e in self.episodes {
            s.episodes.push(EpisodeFacts {
                id: e.id,
                case_id: e.case_id,
                opened_at: at(e.opened_at)?,
                due_at: at(e.due_at)?,
                resolved_at: e.resolved_at.map(at).transpose()?,
                resolution: e.resolution,
            });
        }
        for a in self.attempts {
            let outcome: AttemptOutcome = a
                .outcome
                .parse()
                .map_err(|_| corrupt("attempt outcome", &a.outcome))?;
            s.attempts.push(AttemptFacts {
                case_id: a.case_id,
                episode_id: a.episode_id,
                attempted_at: at(a.attempted_at)?,
                reached: outcome.is_contact(),
            });
        }
        for c in self.closures {
            s.closures_by_rule.push(ClosureFacts {
                case_id: c.case_id,
                closed_at: at(c.closed_at)?,
            });
        }
        for d in self.documents {
            s.documents.push(DocumentFacts {
                case_id: d.case_id,
                kind: d.kind.0,
                version: d.version,
                created_at: at(d.created_at)?,
                review: d.review_status.0,
                review_due_at: d.review_due_at.map(at).transpose()?,
            });
        }
        for (case_id, fact) in self.facts {
            let f: AppointmentFact = serde_json::from_str(&fact)
                .map_err(|_| StoreError::Corrupt("an appointment fact is not valid JSON".into()))?;
            if let (Attendance::Attended, Some(start)) = (f.attendance, f.start) {
                s.attended.push((case_id, start));
            }
        }
        for d in self
            .drafts
            .iter()
            .filter(|d| d.kind.0 == crate::domain::documents::DocumentKind::Vp)
        {
            let draft: Draft = serde_json::from_str(&d.draft)
                .map_err(|_| StoreError::Corrupt("a draft is not valid JSON".into()))?;
            if let Some(first) = draft.sessions.iter().next() {
                s.vp_first_session.insert(d.case_id.clone(), *first);
            }
        }
        Ok(s)
    }
}

/// The specialists a case can be given to, by staff id with names: the
/// configured ones and everyone who signed in with the specialist role (a
/// sign-in's name wins).
pub async fn roster(
    store: &(impl TeamStore + ?Sized),
    configured: &[(String, String)],
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut roster: std::collections::BTreeMap<String, String> =
        configured.iter().cloned().collect();
    for s in store.staff_list().await? {
        if s.roles.split(',').any(|r| r.trim() == "specialist") {
            roster.insert(s.sub, s.name);
        }
    }
    Ok(roster)
}

/// The report snapshot with its roster.
pub async fn team_snapshot(
    store: &(impl TeamStore + ?Sized),
    configured: &[(String, String)],
) -> Result<Snapshot> {
    let roster = roster(store, configured).await?;
    store.snapshot_rows().await?.into_snapshot(roster)
}
