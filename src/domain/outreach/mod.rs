//! Assertive outreach (IPS fidelity item 25): nobody is closed for missed
//! appointments, and every outreach attempt is documented.
//!
//! Teams discharge after a set number of DNAs ("two DNAs and you're
//! discharged"). This module sees such a closure coming: given a case's
//! appointment history, its last successful contact, the configured discharge
//! rules and the time, [`assess`] says which rule would close the case and
//! when, and whether the case is already within the rule's warning lead.
//! Pure: the engine stores the history and acts on the answer.

pub mod appointment;
pub mod attempt;
pub mod risk;
pub mod rules;

pub use appointment::{Attendance, AppointmentFact, CancelledBy, ServiceContext};
pub use attempt::{AttemptMethod, AttemptOutcome};
pub use risk::{Assessment, CaseHistory, ClosureRisk, Fires, assess};
pub use rules::{DischargeRule, Exemption, RuleKind, RuleMatch, RuleSet, RuleSetError, WarnBefore};
