//! Discharge rules as teams run them, read from `config/discharge-rules.toml`.
//!
//! Each rule names the teams it applies to (service type / specialty codes,
//! organisation ODS codes, locations), what closes a case (`kind`), how early
//! to warn (`warn_before`) and which appointments do not count (`exempt`).

use super::appointment::AppointmentFact;
use serde::{Deserialize, Serialize};

/// Every rule, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    pub rules: Vec<DischargeRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeRule {
    /// Stable id (lower-case, digits and `-`), carried by flags, events and metrics.
    pub id: String,
    /// What a person reads ("Primary care: discharged after 2 consecutive DNAs").
    pub name: String,
    pub kind: RuleKind,
    pub warn_before: WarnBefore,
    /// Which appointments the rule applies to; empty = every appointment.
    pub applies_to: RuleMatch,
    /// Appointments that never count towards the rule.
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

/// How early to warn: in DNAs still to go, or in days before the date.
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
    /// `(rule id or "rule[3]", what is wrong and what to do)`.
    pub problems: Vec<(String, String)>,
}

impl RuleSet {
    /// Parses and validates a rules file; lists every problem, never only the first.
    pub fn from_toml(_text: &str) -> Result<RuleSet, RuleSetError> {
        todo!("helper: parse + validate")
    }
}

impl RuleMatch {
    pub fn matches(&self, _fact: &AppointmentFact) -> bool {
        todo!("helper")
    }
}
