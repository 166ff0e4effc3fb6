//! The fidelity items the bridge's data can show (DESIGN §4.5), for a
//! period: each a count or a numerator over a denominator, with the UK
//! IPS-25 anchor where the scale has one.

use super::caseload::{CaseloadLimit, WAIT_TARGET_DAYS, WAITING_LIST_TARGET, item1_score, loads};
use super::{Measure, Period, Snapshot, days_between, first_contact, median_days};
use crate::domain::documents::{DocumentKind, ReviewStatus};
use crate::domain::referral::{DecisionOutcome, ReferralState};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct FidelityReport {
    pub period: Period,
    pub measures: Vec<Measure>,
    /// Declined referrals by reason, in the period.
    pub decline_reasons: BTreeMap<String, usize>,
    /// Referrals received by source kind, in the period.
    pub sources: BTreeMap<String, usize>,
    /// What incomplete referrals lack, by reason.
    pub incomplete_reasons: BTreeMap<String, usize>,
}

pub fn report(s: &Snapshot, p: Period, limit: CaseloadLimit) -> FidelityReport {
    let mut m = Vec::new();
    let end = p.end();

    // Item 1: caseload per specialist at the end of the period.
    let loads = loads(s, limit, end);
    let specialists: Vec<_> = loads
        .iter()
        .filter(|l| l.specialist.is_some() && l.open_cases > 0)
        .collect();
    let held: usize = specialists.iter().map(|l| l.open_cases).sum();
    let n_spec = specialists.len();
    let mean = if n_spec == 0 {
        0.0
    } else {
        held as f64 / n_spec as f64
    };
    let score = item1_score(mean, limit);
    m.push(
        Measure::mean(
            "caseload.per_specialist",
            Some(1),
            "Open cases per specialist at the end of the period",
            held,
            n_spec,
        )
        .with_anchor(
            format!(
                "5 at {} or fewer per specialist, 1 at 41 or more{}",
                limit.0,
                match (n_spec, score) {
                    (0, _) => "; no case is assigned to a specialist yet".to_owned(),
                    (_, Some(s)) => format!("; this period scores {s}"),
                    (_, None) => String::new(),
                }
            ),
            (n_spec > 0).then_some(mean <= f64::from(limit.0)),
        ),
    );
    let over = loads.iter().filter(|l| l.over_limit).count();
    m.push(Measure::count(
        "caseload.specialists_over_limit",
        Some(1),
        "Specialists over the caseload limit",
        over,
    ));
    let unassigned = loads
        .iter()
        .find(|l| l.specialist.is_none())
        .map_or(0, |l| l.open_cases);
    m.push(Measure::count(
        "caseload.unassigned",
        None,
        "Open cases not assigned to a specialist",
        unassigned,
    ));

    // Referral measures: referrals received in the period.
    let received: Vec<_> = s
        .referrals
        .iter()
        .filter(|r| p.contains(r.received_at))
        .collect();
    let n = received.len();
    m.push(Measure::count(
        "referrals.received",
        None,
        "Referrals received",
        n,
    ));
    let complete = received.iter().filter(|r| r.completed_at.is_some()).count();
    m.push(Measure::ratio(
        "referrals.complete",
        None,
        "Referrals complete (a complete-referral date)",
        complete,
        n,
    ));
    let incomplete = received
        .iter()
        .filter(|r| r.state == ReferralState::Incomplete)
        .count();
    m.push(Measure::ratio(
        "referrals.incomplete",
        None,
        "Referrals still incomplete",
        incomplete,
        n,
    ));
    let decided: Vec<_> = received.iter().filter(|r| r.decided_at.is_some()).collect();
    let accepted = decided
        .iter()
        .filter(|r| r.decision == Some(DecisionOutcome::Accepted))
        .count();
    let declined = decided
        .iter()
        .filter(|r| r.decision == Some(DecisionOutcome::Declined))
        .count();
    m.push(Measure::ratio(
        "referrals.accepted",
        None,
        "Referrals accepted",
        accepted,
        n,
    ));
    m.push(Measure::ratio(
        "referrals.declined",
        None,
        "Referrals declined",
        declined,
        n,
    ));
    let to_decision = median_days(
        decided
            .iter()
            .filter_map(|r| {
                Some(days_between(
                    r.completed_at.unwrap_or(r.received_at),
                    r.decided_at?,
                ))
            })
            .collect(),
    );
    m.push(Measure::days(
        "referrals.median_days_to_decision",
        None,
        "Median days from complete referral to decision",
        to_decision.unwrap_or(0.0),
    ));
    let commenced = received
        .iter()
        .filter(|r| r.assistance_commenced_at.is_some())
        .count();
    m.push(Measure::ratio(
        "referrals.assistance_commenced",
        None,
        "Referrals where assistance commenced",
        commenced,
        accepted,
    ));
    let multiple = received.iter().filter(|r| r.is_multiple).count();
    m.push(Measure::ratio(
        "referrals.multiple",
        None,
        "Referrals for someone already on the caseload",
        multiple,
        n,
    ));

    // Waiting list at the end of the period, and 6-week breaches in it.
    let waiting: Vec<_> = s.referrals.iter().filter(|r| r.waiting_at(end)).collect();
    m.push(
        Measure::count(
            "waiting.list",
            None,
            "Waiting list at the end of the period",
            waiting.len(),
        )
        .with_anchor(
            format!("{WAITING_LIST_TARGET} or fewer waiting"),
            Some(waiting.len() <= WAITING_LIST_TARGET),
        ),
    );
    let breaches = s
        .referrals
        .iter()
        .filter(|r| {
            let Some(acc) = r.accepted_at() else {
                return false;
            };
            let deadline = acc + time::Duration::days(WAIT_TARGET_DAYS);
            // A breach belongs to the period in which the 6 weeks ran out.
            p.contains(deadline)
                && r.assistance_commenced_at.is_none_or(|c| c > deadline)
                && !matches!(r.state, ReferralState::Withdrawn | ReferralState::Declined)
        })
        .count();
    m.push(
        Measure::count(
            "waiting.six_week_breaches",
            None,
            "People not seen within 6 weeks of acceptance",
            breaches,
        )
        .with_anchor("everyone seen within 6 weeks", Some(breaches == 0)),
    );

    // Item 25: outreach documented before a rule would fire; closures by DNA rule.
    let episodes: Vec<_> = s
        .episodes
        .iter()
        .filter(|e| p.contains(e.opened_at))
        .collect();
    let documented = episodes
        .iter()
        .filter(|e| {
            s.attempts.iter().any(|a| {
                a.case_id == e.case_id
                    && a.attempted_at >= e.opened_at
                    && a.attempted_at <= e.due_at
            })
        })
        .count();
    m.push(
        Measure::ratio(
            "outreach.documented",
            Some(25),
            "Outreach flags with an attempt documented before the rule would fire",
            documented,
            episodes.len(),
        )
        .with_anchor(
            "systematic documentation of outreach",
            Some(documented == episodes.len()),
        ),
    );
    let prevented = s
        .episodes
        .iter()
        .filter(|e| e.resolved_at.is_some_and(|t| p.contains(t)))
        .filter(|e| matches!(e.resolution.as_deref(), Some("attended" | "contacted")))
        .count();
    let happened = s
        .closures_by_rule
        .iter()
        .filter(|c| p.contains(c.closed_at))
        .count();
    m.push(Measure::count(
        "outreach.closures_prevented",
        Some(25),
        "Closures by a DNA rule prevented (flag resolved by attendance or contact)",
        prevented,
    ));
    m.push(
        Measure::count(
            "outreach.closures_happened",
            Some(25),
            "Referrals closed by a source system's DNA rule",
            happened,
        )
        .with_anchor("no closure for missed appointments", Some(happened == 0)),
    );

    // Items 14 and 22: VP and IWSP sent for comment, and the comment rate.
    for (kind, item, key_sent, key_rate, what) in [
        (
            DocumentKind::Vp,
            14,
            "documents.vp_sent",
            "documents.vp_commented",
            "Vocational profiles",
        ),
        (
            DocumentKind::Iwsp,
            22,
            "documents.iwsp_sent",
            "documents.iwsp_commented",
            "In-work support plans",
        ),
    ] {
        let sent: Vec<_> = s
            .documents
            .iter()
            .filter(|d| d.kind == kind && p.contains(d.created_at) && d.review.is_some())
            .collect();
        let commented = sent
            .iter()
            .filter(|d| d.review == Some(ReviewStatus::Commented))
            .count();
        m.push(Measure::count(
            key_sent,
            Some(item),
            format!("{what} sent for comment"),
            sent.len(),
        ));
        m.push(Measure::ratio(
            key_rate,
            Some(item),
            format!("{what} that received a comment"),
            commented,
            sent.len(),
        ));
    }
    // Item 5: notes in the shared record.
    let notes = s
        .documents
        .iter()
        .filter(|d| p.contains(d.created_at))
        .count();
    m.push(Measure::count(
        "documents.written_to_record",
        Some(5),
        "Notes and documents written to the shared record",
        notes,
    ));

    // Days from referral to first contact, for first contacts in the period.
    let days: Vec<f64> = s
        .cases
        .iter()
        .filter_map(|c| {
            let fc = first_contact(s, &c.id).filter(|t| p.contains(*t))?;
            let first_ref = s
                .referrals
                .iter()
                .filter(|r| r.case_id.as_deref() == Some(&c.id) && r.received_at <= fc)
                .map(|r| r.received_at)
                .min()?;
            Some(days_between(first_ref, fc))
        })
        .collect();
    let n_people = days.len();
    m.push(Measure::days(
        "contact.median_days_referral_to_first",
        None,
        format!("Median days from referral to first contact ({n_people} people)"),
        median_days(days).unwrap_or(0.0),
    ));

    let mut decline_reasons = BTreeMap::new();
    for r in decided
        .iter()
        .filter(|r| r.decision == Some(DecisionOutcome::Declined))
    {
        *decline_reasons
            .entry(
                r.decline_reason
                    .clone()
                    .unwrap_or_else(|| "(none given)".into()),
            )
            .or_insert(0) += 1;
    }
    let mut sources = BTreeMap::new();
    for r in &received {
        *sources.entry(r.source_kind.clone()).or_insert(0) += 1;
    }
    let mut incomplete_reasons = BTreeMap::new();
    for r in received
        .iter()
        .filter(|r| r.state == ReferralState::Incomplete)
    {
        for reason in &r.incomplete_reasons {
            *incomplete_reasons.entry(reason.clone()).or_insert(0) += 1;
        }
    }
    FidelityReport {
        period: p,
        measures: m,
        decline_reasons,
        sources,
        incomplete_reasons,
    }
}
