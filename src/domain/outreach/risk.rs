//! Which rule would close a case, and when.

use super::appointment::{AppointmentFact, Attendance, CancelledBy};
use super::rules::{DischargeRule, RuleKind, RuleSet};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// What the rules see of one open case.
#[derive(Debug, Clone, Copy)]
pub struct CaseHistory<'a> {
    /// Every appointment linked to the case, in any order, possibly with the
    /// same key twice (the later `AppointmentFact` in the slice does NOT win:
    /// callers pass one fact per key; duplicates are identical facts).
    pub appointments: &'a [AppointmentFact],
    /// The last successful outreach contact (attempt outcome `contacted`).
    pub last_contact: Option<OffsetDateTime>,
    /// When the case opened (the clock for `no_contact_for` before any contact).
    pub opened_at: OffsetDateTime,
}

/// When a rule would close the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Fires {
    /// The next DNA closes the case.
    AtNextDna,
    /// After this many more DNAs (2 or more).
    AfterDnas { dnas: u32 },
    /// On this date, unless there is contact first.
    On {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The rule's condition is already met: a team running it would have closed the case.
    Met,
}

/// One rule's view of the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClosureRisk {
    pub rule_id: String,
    pub fires: Fires,
    /// True when the case is within the rule's `warn_before` (or the rule is met).
    pub within_warning: bool,
    /// DNAs that count towards the rule now.
    pub dnas_counted: u32,
    /// The start of the next pending appointment the rule applies to, when known
    /// (when "the next DNA" could happen).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_appointment: Option<OffsetDateTime>,
}

/// Every applicable rule's view, most urgent first, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Assessment {
    pub risks: Vec<ClosureRisk>,
    /// The earliest future time at which the assessment changes without any
    /// new event (a `no_contact_for` warning starts, a DNA leaves a
    /// `dna_within` window). The engine sets a durable timer for it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_check: Option<OffsetDateTime>,
}

impl Assessment {
    /// The most urgent risk the case is within warning of, if any.
    pub fn warning(&self) -> Option<&ClosureRisk> {
        self.risks.iter().find(|r| r.within_warning)
    }
}

impl ClosureRisk {
    /// `Less` when `self` is more urgent. A met rule first, then one the case
    /// is within warning of, then the closer closure: the next DNA, then a
    /// date (earlier first: it comes without anything else happening), then
    /// several DNAs to go (fewer first); ties by rule id so the order never
    /// depends on the order of the rules file.
    pub fn cmp_urgency(&self, other: &ClosureRisk) -> Ordering {
        fn closeness(f: Fires) -> (u8, Option<OffsetDateTime>, u32) {
            match f {
                Fires::Met => (0, None, 0),
                Fires::AtNextDna => (1, None, 0),
                Fires::On { at } => (2, Some(at), 0),
                Fires::AfterDnas { dnas } => (3, None, dnas),
            }
        }
        let key = |r: &ClosureRisk| (r.fires != Fires::Met, !r.within_warning, closeness(r.fires));
        key(self)
            .cmp(&key(other))
            .then_with(|| self.rule_id.cmp(&other.rule_id))
    }
}

/// Assesses a case against every rule. Pure: same inputs, same answer,
/// whatever the order of `history.appointments`.
///
/// Choices the rules themselves leave open:
/// - **Which rules apply.** A rule with an empty `applies_to` applies to
///   every case, even one with no appointment yet (so `no_contact_for`
///   counts from `opened_at`, and `first_appointment_dna` waits for a
///   booking). A rule with a non-empty `applies_to` applies only when at
///   least one of the case's appointments *counts* for it (matches and is
///   not exempt): the case is not with that team, or not yet. Counting rather
///   than matching keeps exempt appointments from ever changing the answer.
/// - **Order.** Appointments are put in order of `start`, ties by key.
///   Appointments without a start come after every dated one (ties by key):
///   they still count for the sequence rules (`consecutive_dna`,
///   `first_appointment_dna`), where a DNA we cannot date is better counted
///   than lost, but they are ignored by the date rules (`dna_within`,
///   `no_contact_for`, `next_appointment`), which cannot place them.
/// - **Statuses, not dates, say what happened.** A DNA or an attendance counts
///   whatever its start compared with `now`, so clock skew between the source
///   and the bridge cannot hide a DNA; a contact is never taken as later than
///   `now`, so skew cannot postpone a warning either.
pub fn assess(history: &CaseHistory<'_>, rules: &RuleSet, now: OffsetDateTime) -> Assessment {
    let facts = canonical(history.appointments);
    let mut risks = Vec::new();
    let mut next_check: Option<OffsetDateTime> = None;
    for rule in &rules.rules {
        let counted: Vec<&AppointmentFact> =
            facts.iter().copied().filter(|f| rule.counts(f)).collect();
        if !rule.applies_to.is_empty() && counted.is_empty() {
            continue;
        }
        let Some((risk, check)) = assess_rule(rule, &counted, history, now) else {
            continue;
        };
        if let Some(at) = check.filter(|at| *at > now) {
            next_check = Some(next_check.map_or(at, |c| c.min(at)));
        }
        risks.push(risk);
    }
    risks.sort_by(ClosureRisk::cmp_urgency);
    Assessment { risks, next_check }
}

/// One rule's risk and the future time its answer would change by itself.
/// `None` when the rule no longer applies (the first appointment was attended).
fn assess_rule(
    rule: &DischargeRule,
    counted: &[&AppointmentFact],
    history: &CaseHistory<'_>,
    now: OffsetDateTime,
) -> Option<(ClosureRisk, Option<OffsetDateTime>)> {
    let next_appointment = counted
        .iter()
        .filter(|f| f.attendance == Attendance::Pending)
        .filter_map(|f| f.start)
        .filter(|s| *s > now)
        .min();
    let risk = |fires, within_warning, dnas_counted| ClosureRisk {
        rule_id: rule.id.clone(),
        fires,
        within_warning,
        dnas_counted,
        next_appointment,
    };
    match rule.kind {
        RuleKind::ConsecutiveDna { threshold } => {
            // Pending and cancelled appointments neither count nor reset.
            let dnas = counted.iter().fold(0u32, |n, f| match f.attendance {
                Attendance::Attended => 0,
                Attendance::DidNotAttend => n.saturating_add(1),
                _ => n,
            });
            let (fires, warn) = by_dnas(threshold, dnas, rule.warn_dnas());
            Some((risk(fires, warn, dnas), None))
        }
        RuleKind::DnaWithin { threshold, days } => {
            let from = now.saturating_sub(Duration::days(i64::from(days)));
            // Oldest first: `counted` is in chronological order.
            let starts: Vec<OffsetDateTime> = counted
                .iter()
                .filter(|f| f.attendance == Attendance::DidNotAttend)
                .filter_map(|f| f.start)
                .filter(|s| *s > from && *s <= now)
                .collect();
            let dnas = u32::try_from(starts.len()).unwrap_or(u32::MAX);
            let (fires, warn) = by_dnas(threshold, dnas, rule.warn_dnas());
            // The answer next changes when enough DNAs have left the window
            // to change `fires`: the oldest one, or, when the rule is met
            // with DNAs to spare, the one whose leaving un-meets it.
            let leaving = if dnas >= threshold {
                (dnas - threshold) as usize
            } else {
                0
            };
            let check = starts
                .get(leaving)
                .map(|s| s.saturating_add(Duration::days(i64::from(days))));
            Some((risk(fires, warn, dnas), check))
        }
        RuleKind::FirstAppointmentDna => {
            let first = counted
                .iter()
                .find(|f| f.attendance != Attendance::Cancelled);
            match first.map(|f| f.attendance) {
                Some(Attendance::Attended) => None,
                Some(Attendance::DidNotAttend) => Some((risk(Fires::Met, true, 1), None)),
                // Booked: its DNA would close the case. Nothing booked: no
                // flag yet, there is nothing to miss.
                Some(_) => Some((risk(Fires::AtNextDna, true, 0), None)),
                None => Some((risk(Fires::AtNextDna, false, 0), None)),
            }
        }
        RuleKind::NoContactFor { days } => {
            let attended = counted
                .iter()
                .filter(|f| f.attendance == Attendance::Attended)
                .filter_map(|f| f.start);
            let last = attended
                .chain(history.last_contact)
                .chain([history.opened_at])
                .map(|t| t.min(now))
                .max()
                .unwrap_or(history.opened_at);
            let at = last.saturating_add(Duration::days(i64::from(days)));
            let warn_from = at.saturating_sub(Duration::days(i64::from(rule.warn_days())));
            let met = now >= at;
            let fires = if met { Fires::Met } else { Fires::On { at } };
            let check = [warn_from, at].into_iter().find(|t| *t > now);
            Some((risk(fires, met || now >= warn_from, 0), check))
        }
    }
}

/// `threshold` DNAs close the case; `dnas` have happened; warn with `warn` to go.
fn by_dnas(threshold: u32, dnas: u32, warn: u32) -> (Fires, bool) {
    if dnas >= threshold {
        return (Fires::Met, true);
    }
    let remaining = threshold - dnas;
    let fires = if remaining == 1 {
        Fires::AtNextDna
    } else {
        Fires::AfterDnas { dnas: remaining }
    };
    (fires, remaining <= warn)
}

/// One fact per key, entered-in-error ones dropped, in chronological order
/// (undated last, ties by key).
///
/// Callers pass one fact per key, or identical copies. Should two different
/// facts share a key anyway, the one first in [`fact_order`] is kept, so the
/// answer still does not depend on the order of the slice.
fn canonical(facts: &[AppointmentFact]) -> Vec<&AppointmentFact> {
    let mut by_key: BTreeMap<&str, &AppointmentFact> = BTreeMap::new();
    for f in facts {
        by_key
            .entry(f.key.as_str())
            .and_modify(|kept| {
                if fact_order(f, kept) == Ordering::Less {
                    *kept = f;
                }
            })
            .or_insert(f);
    }
    let mut out: Vec<&AppointmentFact> = by_key
        .into_values()
        .filter(|f| f.attendance != Attendance::EnteredInError)
        .collect();
    out.sort_by(|a, b| chronological(a, b));
    out
}

fn chronological(a: &AppointmentFact, b: &AppointmentFact) -> Ordering {
    (a.start.is_none(), a.start, &a.key).cmp(&(b.start.is_none(), b.start, &b.key))
}

/// A total order on facts, used only to choose between conflicting facts with one key.
fn fact_order(a: &AppointmentFact, b: &AppointmentFact) -> Ordering {
    fn attendance(a: Attendance) -> u8 {
        match a {
            Attendance::Pending => 0,
            Attendance::Attended => 1,
            Attendance::DidNotAttend => 2,
            Attendance::Cancelled => 3,
            Attendance::EnteredInError => 4,
        }
    }
    fn cancelled(c: Option<CancelledBy>) -> u8 {
        match c {
            None => 0,
            Some(CancelledBy::Patient) => 1,
            Some(CancelledBy::Provider) => 2,
            Some(CancelledBy::Other) => 3,
        }
    }
    let key = |f: &'_ AppointmentFact| {
        (
            f.start.is_none(),
            f.start,
            attendance(f.attendance),
            cancelled(f.cancelled_by),
        )
    };
    let service = |f: &AppointmentFact| {
        (
            f.service.service_types.clone(),
            f.service.specialties.clone(),
            f.service.organisations.clone(),
            f.service.locations.clone(),
        )
    };
    chronological(a, b)
        .then_with(|| key(a).cmp(&key(b)))
        .then_with(|| service(a).cmp(&service(b)))
}
