//! Discharge rules as teams run them, read from `config/discharge-rules.toml`.
//!
//! Each rule names the teams it applies to (service type / specialty codes,
//! organisation ODS codes, locations), what closes a case (`kind`), how early
//! to warn (`warn_before`) and which appointments do not count (`exempt`).
//!
//! The serde shape of these types is the file's shape (`[[rule]]` tables with
//! `kind = "..."` beside the kind's own keys), so a [`RuleSet`] serialised with
//! `toml` reads back with [`RuleSet::from_toml`]. Reading goes through
//! [`RuleSet::from_toml`] rather than plain `Deserialize` because serde stops at
//! the first mistake, and an operator fixing a rules file wants every mistake,
//! each naming its rule.

use super::appointment::{AppointmentFact, ServiceContext};
use serde::{Deserialize, Serialize};

/// Every rule, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    /// `[[rule]]` in the file.
    #[serde(rename = "rule", default)]
    pub rules: Vec<DischargeRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeRule {
    /// Stable id (lower-case, digits and `-`), carried by flags, events and metrics.
    pub id: String,
    /// What a person reads ("Primary care: discharged after 2 consecutive DNAs").
    pub name: String,
    /// Flattened: the file says `kind = "dna_within"` beside `threshold` and `days`.
    #[serde(flatten)]
    pub kind: RuleKind,
    pub warn_before: WarnBefore,
    /// Which appointments the rule applies to; empty = every appointment.
    #[serde(default)]
    pub applies_to: RuleMatch,
    /// Appointments that never count towards the rule.
    #[serde(default)]
    pub exempt: Vec<Exemption>,
}

/// What closes a case under the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// `threshold` DNAs in a row (an attendance resets the count).
    ConsecutiveDna { threshold: u32 },
    /// `threshold` DNAs within any `days`-day window ending now.
    DnaWithin { threshold: u32, days: u32 },
    /// A DNA of the first appointment of the case.
    FirstAppointmentDna,
    /// No attended appointment or successful contact for `days` days.
    NoContactFor { days: u32 },
}

impl RuleKind {
    /// The name the file uses (`kind = "..."`).
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::ConsecutiveDna { .. } => "consecutive_dna",
            RuleKind::DnaWithin { .. } => "dna_within",
            RuleKind::FirstAppointmentDna => "first_appointment_dna",
            RuleKind::NoContactFor { .. } => "no_contact_for",
        }
    }

    /// Whether the rule counts missed appointments (and so warns in DNAs),
    /// rather than days without contact (and so warns in days).
    pub fn counts_dnas(self) -> bool {
        !matches!(self, RuleKind::NoContactFor { .. })
    }
}

/// How early to warn: in DNAs still to go, or in days before the date.
/// `0` warns only once the rule is met (the only possible warning for a
/// rule that closes at the first DNA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarnBefore {
    Dnas(u32),
    Days(u32),
}

/// Matches an appointment by its service context. A field left empty matches
/// anything; a filled field matches when any value is shared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMatch {
    #[serde(default)]
    pub service_types: Vec<String>,
    #[serde(default)]
    pub specialties: Vec<String>,
    #[serde(default)]
    pub organisations: Vec<String>,
    #[serde(default)]
    pub locations: Vec<String>,
}

/// An appointment that does not count towards a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "when", rename_all = "snake_case")]
pub enum Exemption {
    /// Appointments matching this (e.g. telephone or group sessions).
    Matches(RuleMatch),
}

/// Everything wrong with a rules file, each naming the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the discharge rules", problems.len())]
pub struct RuleSetError {
    /// `(rule id or "rule[3]", what is wrong and what to do)`. The label is
    /// empty for problems of the file as a whole (TOML syntax, top-level keys).
    pub problems: Vec<(String, String)>,
}

impl RuleSetError {
    /// One line per problem, naming the rule: `rule primary-care: ...`,
    /// `rule[2]: ...`, or only the message for the file as a whole.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.problems.iter().map(|(label, message)| {
            if label.is_empty() {
                message.clone()
            } else if label.starts_with("rule[") {
                format!("{label}: {message}")
            } else {
                format!("rule {label}: {message}")
            }
        })
    }
}

impl RuleSet {
    /// Every rule's id, in file order.
    pub fn ids(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.id.as_str()).collect()
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&DischargeRule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

impl RuleMatch {
    /// AND across fields, OR within a field. Codes compare exactly: SNOMED
    /// and ODS codes are case-significant identifiers, and guessing at
    /// normalisation would make a rule match a team it was not written for.
    pub fn matches(&self, fact: &AppointmentFact) -> bool {
        self.matches_context(&fact.service)
    }

    /// As [`RuleMatch::matches`], on the service context alone.
    pub fn matches_context(&self, ctx: &ServiceContext) -> bool {
        fn shares(wanted: &[String], have: &[String]) -> bool {
            wanted.is_empty() || wanted.iter().any(|w| have.contains(w))
        }
        shares(&self.service_types, &ctx.service_types)
            && shares(&self.specialties, &ctx.specialties)
            && shares(&self.organisations, &ctx.organisations)
            && shares(&self.locations, &ctx.locations)
    }

    /// True when no field is filled (the match takes everything).
    pub fn is_empty(&self) -> bool {
        self.service_types.is_empty()
            && self.specialties.is_empty()
            && self.organisations.is_empty()
            && self.locations.is_empty()
    }
}

impl Exemption {
    pub fn matches(&self, fact: &AppointmentFact) -> bool {
        match self {
            Exemption::Matches(m) => m.matches(fact),
        }
    }
}

impl DischargeRule {
    /// Whether the appointment counts towards this rule: the rule applies to
    /// it and no exemption takes it out. Attendance is not looked at here
    /// (a cancelled appointment "counts" as the rule's appointment; the rule's
    /// kind decides what a cancellation means).
    pub fn counts(&self, fact: &AppointmentFact) -> bool {
        self.applies_to.matches(fact) && !self.exempt.iter().any(|e| e.matches(fact))
    }

    /// The warning lead in DNAs, for a DNA-counting rule. A warning in days on
    /// such a rule (refused by [`RuleSet::from_toml`], possible only for a
    /// rule built in code) is read as 0: warn once met.
    pub fn warn_dnas(&self) -> u32 {
        match self.warn_before {
            WarnBefore::Dnas(n) => n,
            WarnBefore::Days(_) => 0,
        }
    }

    /// The warning lead in days, for `no_contact_for`; a warning in DNAs reads as 0.
    pub fn warn_days(&self) -> u32 {
        match self.warn_before {
            WarnBefore::Days(n) => n,
            WarnBefore::Dnas(_) => 0,
        }
    }
}
