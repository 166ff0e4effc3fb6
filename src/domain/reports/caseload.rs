//! Caseloads and the waiting list as they stand at a moment: what the
//! caseload pages show and fidelity item 1 scores.

use super::{Snapshot, days_between, last_contact};
use crate::domain::documents::ReviewStatus;
use serde::Serialize;
use time::OffsetDateTime;

/// IPS fidelity caseload limit: 20 active clients per specialist in
/// secondary care, 25 in primary care (DESIGN §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaseloadLimit(pub u32);

#[derive(Debug, Clone, Serialize)]
pub struct SpecialistLoad {
    /// Staff id; `None` for cases nobody holds.
    pub specialist: Option<String>,
    pub name: String,
    pub open_cases: usize,
    pub over_limit: bool,
}

/// One open case as the caseload table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseLine {
    pub case_id: String,
    pub specialist: Option<String>,
    /// Waiting (accepted, assistance not commenced), in work, or active.
    pub state: &'static str,
    pub opened_days: i64,
    pub days_since_contact: Option<i64>,
    pub flagged: bool,
    pub awaiting_comment: usize,
    pub in_work: bool,
}

/// Open cases per specialist at `now`, unassigned last, against the limit.
pub fn loads(s: &Snapshot, limit: CaseloadLimit, now: OffsetDateTime) -> Vec<SpecialistLoad> {
    let mut out: Vec<SpecialistLoad> = s
        .specialists
        .iter()
        .map(|(id, name)| {
            let n = s
                .cases
                .iter()
                .filter(|c| c.open_at(now) && c.specialist.as_deref() == Some(id))
                .count();
            SpecialistLoad {
                specialist: Some(id.clone()),
                name: name.clone(),
                open_cases: n,
                over_limit: n as u32 > limit.0,
            }
        })
        .collect();
    // Cases held by someone not (or no longer) on the roster still count.
    let unknown = s
        .cases
        .iter()
        .filter(|c| c.open_at(now))
        .filter(|c| {
            c.specialist
                .as_ref()
                .is_some_and(|id| !s.specialists.contains_key(id))
        })
        .count();
    if unknown > 0 {
        out.push(SpecialistLoad {
            specialist: Some("(not on the roster)".to_owned()),
            name: "Specialists not on the roster".to_owned(),
            open_cases: unknown,
            over_limit: false,
        });
    }
    let unassigned = s
        .cases
        .iter()
        .filter(|c| c.open_at(now) && c.specialist.is_none())
        .count();
    out.push(SpecialistLoad {
        specialist: None,
        name: "Not assigned".to_owned(),
        open_cases: unassigned,
        over_limit: false,
    });
    out
}

/// The open cases at `now`, optionally only one specialist's, most
/// overdue contact first.
pub fn case_lines(s: &Snapshot, only: Option<&str>, now: OffsetDateTime) -> Vec<CaseLine> {
    let mut out: Vec<CaseLine> = s
        .cases
        .iter()
        .filter(|c| c.open_at(now))
        .filter(|c| only.is_none_or(|o| c.specialist.as_deref() == Some(o)))
        .map(|c| {
            let waiting = s
                .referrals
                .iter()
                .any(|r| r.case_id.as_deref() == Some(&c.id) && r.waiting_at(now));
            let in_work = s
                .jobs
                .iter()
                .any(|j| j.case_id == c.id && j.paid && j.ended_on.is_none());
            let flagged = s
                .episodes
                .iter()
                .any(|e| e.case_id == c.id && e.resolved_at.is_none());
            let awaiting_comment = s
                .documents
                .iter()
                .filter(|d| d.case_id == c.id && d.review == Some(ReviewStatus::Awaiting))
                .count();
            CaseLine {
                case_id: c.id.clone(),
                specialist: c.specialist.clone(),
                state: if waiting {
                    "waiting"
                } else if in_work {
                    "in work"
                } else {
                    "active"
                },
                opened_days: days_between(c.opened_at, now).floor() as i64,
                days_since_contact: last_contact(s, &c.id, now)
                    .map(|t| days_between(t, now).floor() as i64),
                flagged,
                awaiting_comment,
                in_work,
            }
        })
        .collect();
    out.sort_by_key(|l| {
        (
            !l.flagged,
            std::cmp::Reverse(l.days_since_contact.unwrap_or(i64::MAX)),
        )
    });
    out
}

/// One person on the waiting list.
#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    pub referral_id: String,
    pub case_id: Option<String>,
    pub accepted_at: OffsetDateTime,
    pub days_waiting: i64,
    /// Past the 6-week target.
    pub over_six_weeks: bool,
}

/// IPS: everyone on the waiting list is seen within 6 weeks.
pub const WAIT_TARGET_DAYS: i64 = 42;
/// IPS: no more than 5 people waiting.
pub const WAITING_LIST_TARGET: usize = 5;

/// The waiting list at `now`, longest wait first.
pub fn waiting_list(s: &Snapshot, now: OffsetDateTime) -> Vec<Waiting> {
    let mut out: Vec<Waiting> = s
        .referrals
        .iter()
        .filter(|r| r.waiting_at(now))
        .filter_map(|r| {
            let at = r.accepted_at()?;
            let days = days_between(at, now).floor() as i64;
            Some(Waiting {
                referral_id: r.id.clone(),
                case_id: r.case_id.clone(),
                accepted_at: at,
                days_waiting: days,
                over_six_weeks: days > WAIT_TARGET_DAYS,
            })
        })
        .collect();
    out.sort_by_key(|w| std::cmp::Reverse(w.days_waiting));
    out
}

/// The UK IPS-25 item 1 score for a mean caseload (secondary care anchors:
/// 5 at 20 or fewer, 4 at 21–25, 3 at 26–30, 2 at 31–40, 1 at 41 or more).
/// With the primary-care limit of 25, only the anchors at the ends are
/// known: 5 at 25 or fewer, 1 at 41 or more.
pub fn item1_score(mean: f64, limit: CaseloadLimit) -> Option<u8> {
    let m = mean.ceil() as u32;
    if m <= limit.0 {
        return Some(5);
    }
    if m >= 41 {
        return Some(1);
    }
    if limit.0 != 20 {
        return None;
    }
    Some(match m {
        21..=25 => 4,
        26..=30 => 3,
        _ => 2,
    })
}
