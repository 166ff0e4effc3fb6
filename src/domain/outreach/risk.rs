//! Which rule would close a case, and when.

use super::appointment::AppointmentFact;
use super::rules::RuleSet;
use serde::Serialize;
use time::OffsetDateTime;

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

/// Assesses a case against every rule. Pure: same inputs, same answer,
/// whatever the order of `history.appointments`.
pub fn assess(_history: &CaseHistory<'_>, _rules: &RuleSet, _now: OffsetDateTime) -> Assessment {
    todo!("helper")
}
