//! The team's numbers: caseloads, waiting list, the fidelity items the data
//! can show, the IPS Grow quarterly return and the MHSDS employment status
//! rows (DESIGN §4.5).
//!
//! Pure functions over a [`Snapshot`] of the service's facts. The CLI
//! (`ips-bridge report …`), the API and the pages all call the same
//! functions on the same snapshot, so they cannot disagree. "Now" and the
//! period are parameters: a report for last quarter run today gives the
//! numbers as they stood at the end of that quarter where the data allows.

pub mod caseload;
pub mod fidelity;
pub mod ips_grow;
pub mod mhs004;
mod period;
#[cfg(test)]
mod tests;

pub use period::{Period, PeriodError};

use crate::domain::documents::{DocumentKind, ReviewStatus};
use crate::domain::employment::{EmploymentStatus, HoursBand};
use crate::domain::referral::{DecisionOutcome, ReferralState};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use time::{Date, OffsetDateTime};

/// Everything the reports read, as plain facts (no patient identifiers
/// except `CaseFacts::nhs_number`, which only the MHSDS rows print).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub cases: Vec<CaseFacts>,
    pub referrals: Vec<ReferralFacts>,
    pub jobs: Vec<JobFacts>,
    pub statuses: Vec<StatusFacts>,
    pub episodes: Vec<EpisodeFacts>,
    pub attempts: Vec<AttemptFacts>,
    pub closures_by_rule: Vec<ClosureFacts>,
    pub documents: Vec<DocumentFacts>,
    /// Attended appointments: (case id, start).
    pub attended: Vec<(String, OffsetDateTime)>,
    /// The first session of each case's vocational profile draft.
    pub vp_first_session: HashMap<String, Date>,
    /// Specialists by staff id, with display names (roster and config).
    pub specialists: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct CaseFacts {
    pub id: String,
    pub opened_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
    pub specialist: Option<String>,
    /// Only for the MHSDS rows; never shown on a page or in a log.
    pub nhs_number: Option<String>,
}

impl CaseFacts {
    pub fn open_at(&self, t: OffsetDateTime) -> bool {
        self.opened_at <= t && self.closed_at.is_none_or(|c| c > t)
    }

    /// Open at any time in the period.
    pub fn open_during(&self, p: Period) -> bool {
        self.opened_at < p.end() && self.closed_at.is_none_or(|c| c >= p.start())
    }
}

#[derive(Debug, Clone)]
pub struct ReferralFacts {
    pub id: String,
    pub case_id: Option<String>,
    pub state: ReferralState,
    pub received_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
    pub incomplete_reasons: Vec<String>,
    pub source_kind: String,
    pub is_multiple: bool,
    pub decision: Option<DecisionOutcome>,
    pub decline_reason: Option<String>,
    pub decided_at: Option<OffsetDateTime>,
    pub assistance_commenced_at: Option<OffsetDateTime>,
}

impl ReferralFacts {
    pub fn accepted_at(&self) -> Option<OffsetDateTime> {
        match self.decision {
            Some(DecisionOutcome::Accepted) => self.decided_at,
            _ => None,
        }
    }

    /// On the waiting list at `t`: accepted by then, assistance not yet
    /// commenced, not withdrawn or closed.
    pub fn waiting_at(&self, t: OffsetDateTime) -> bool {
        self.accepted_at().is_some_and(|a| a <= t)
            && self.assistance_commenced_at.is_none_or(|c| c > t)
            && matches!(self.state, ReferralState::Accepted | ReferralState::Started)
    }
}

#[derive(Debug, Clone)]
pub struct JobFacts {
    pub id: String,
    pub case_id: String,
    pub employer: String,
    pub started_on: Date,
    pub band: HoursBand,
    pub hours: Option<f64>,
    pub paid: bool,
    pub ended_on: Option<Date>,
}

#[derive(Debug, Clone)]
pub struct StatusFacts {
    pub case_id: String,
    pub status: EmploymentStatus,
    pub recorded_on: Date,
    pub started_on: Option<Date>,
    pub band: Option<HoursBand>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct EpisodeFacts {
    pub id: String,
    pub case_id: String,
    pub opened_at: OffsetDateTime,
    pub due_at: OffsetDateTime,
    pub resolved_at: Option<OffsetDateTime>,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AttemptFacts {
    pub case_id: String,
    pub episode_id: Option<String>,
    pub attempted_at: OffsetDateTime,
    pub reached: bool,
}

#[derive(Debug, Clone)]
pub struct ClosureFacts {
    pub case_id: String,
    pub closed_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct DocumentFacts {
    pub case_id: String,
    pub kind: DocumentKind,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub review: Option<ReviewStatus>,
    pub review_due_at: Option<OffsetDateTime>,
}

/// One measure: a count, or a numerator over a denominator, with the
/// fidelity scale's anchor where it has one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measure {
    /// A stable key for machines (`caseload.mean`, `referrals.received`…).
    pub key: &'static str,
    /// The UK IPS-25 item it informs, if any.
    pub item: Option<u8>,
    pub name: String,
    pub numerator: f64,
    pub denominator: Option<f64>,
    /// The fidelity scale's anchor or benchmark, in words.
    pub anchor: Option<String>,
    /// Whether the figure meets its anchor (`None`: no anchor).
    pub meets_anchor: Option<bool>,
    /// How the figure reads: a count, a share of the denominator, or a mean
    /// per denominator (cases per specialist).
    pub shape: Shape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    Count,
    Share,
    Mean,
    Days,
}

impl Measure {
    pub fn count(key: &'static str, item: Option<u8>, name: impl Into<String>, n: usize) -> Self {
        Measure {
            key,
            item,
            name: name.into(),
            numerator: n as f64,
            denominator: None,
            anchor: None,
            meets_anchor: None,
            shape: Shape::Count,
        }
    }

    /// A median or mean number of days.
    pub fn days(key: &'static str, item: Option<u8>, name: impl Into<String>, days: f64) -> Self {
        Measure {
            numerator: days,
            shape: Shape::Days,
            ..Measure::count(key, item, name, 0)
        }
    }

    /// `total` spread over `over` (cases per specialist).
    pub fn mean(
        key: &'static str,
        item: Option<u8>,
        name: impl Into<String>,
        total: usize,
        over: usize,
    ) -> Self {
        Measure {
            denominator: Some(over as f64),
            shape: Shape::Mean,
            ..Measure::count(key, item, name, total)
        }
    }

    pub fn ratio(
        key: &'static str,
        item: Option<u8>,
        name: impl Into<String>,
        num: usize,
        den: usize,
    ) -> Self {
        Measure {
            denominator: Some(den as f64),
            shape: Shape::Share,
            ..Measure::count(key, item, name, num)
        }
    }

    pub fn with_anchor(mut self, anchor: impl Into<String>, meets: Option<bool>) -> Self {
        self.anchor = Some(anchor.into());
        self.meets_anchor = meets;
        self
    }

    /// The value as a person reads it: `n`, or `n / d (p%)`.
    pub fn display(&self) -> String {
        match self.shape {
            Shape::Days => return format!("{:.1} days", self.numerator),
            Shape::Mean => {
                let d = self.denominator.unwrap_or(0.0);
                let mean = if d > 0.0 { self.numerator / d } else { 0.0 };
                return format!(
                    "{mean:.1} ({} cases, {} specialists)",
                    fmt_num(self.numerator),
                    fmt_num(d)
                );
            }
            Shape::Count | Shape::Share => {}
        }
        match self.denominator {
            None => fmt_num(self.numerator),
            Some(d) if d > 0.0 => format!(
                "{} / {} ({:.0}%)",
                fmt_num(self.numerator),
                fmt_num(d),
                100.0 * self.numerator / d
            ),
            Some(d) => format!("{} / {}", fmt_num(self.numerator), fmt_num(d)),
        }
    }

    /// `numerator / denominator`, when there is one and it is not zero.
    pub fn rate(&self) -> Option<f64> {
        self.denominator
            .filter(|d| *d > 0.0)
            .map(|d| self.numerator / d)
    }
}

/// A count as itself, anything else to one decimal place.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// When the case had contact: attended appointments and outreach attempts
/// that reached the person.
fn contacts<'a>(s: &'a Snapshot, case_id: &'a str) -> impl Iterator<Item = OffsetDateTime> + 'a {
    let attended = s
        .attended
        .iter()
        .filter(move |(c, _)| c == case_id)
        .map(|(_, t)| *t);
    let reached = s
        .attempts
        .iter()
        .filter(move |a| a.case_id == case_id && a.reached)
        .map(|a| a.attempted_at);
    attended.chain(reached)
}

/// When the case first had contact.
pub fn first_contact(s: &Snapshot, case_id: &str) -> Option<OffsetDateTime> {
    contacts(s, case_id).min()
}

/// The last contact up to `now`.
pub fn last_contact(s: &Snapshot, case_id: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    contacts(s, case_id).filter(|t| *t <= now).max()
}

/// A person's employment status at referral: the first status recorded
/// for the case (specialists record it at the first meeting).
pub fn status_at_referral(s: &Snapshot, case_id: &str) -> Option<EmploymentStatus> {
    s.statuses
        .iter()
        .filter(|st| st.case_id == case_id)
        .min_by_key(|st| (st.recorded_on, st.created_at))
        .map(|st| st.status)
}

/// The median of some durations in days (`None` when there are none).
pub fn median_days(mut days: Vec<f64>) -> Option<f64> {
    if days.is_empty() {
        return None;
    }
    days.sort_by(f64::total_cmp);
    let n = days.len();
    Some(if n % 2 == 1 {
        days[n / 2]
    } else {
        (days[n / 2 - 1] + days[n / 2]) / 2.0
    })
}

pub fn days_between(a: OffsetDateTime, b: OffsetDateTime) -> f64 {
    (b - a).as_seconds_f64() / 86_400.0
}
