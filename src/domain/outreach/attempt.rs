//! Outreach attempts an employment specialist makes, with the codes the
//! record carries for them.

use serde::{Deserialize, Serialize};

/// How the specialist tried to reach the person.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum AttemptMethod {
    Phone,
    TextMessage,
    Letter,
    Email,
    HomeVisit,
    CommunityVisit,
    JointVisit,
    FamilyOrCarerContact,
}

/// What came of it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum AttemptOutcome {
    Contacted,
    NoAnswer,
    MessageLeft,
    NumberUnobtainable,
    Declined,
}

/// UK Core `PreferredContactMethod`: how an attempt was made, as the record
/// codes it (`Communication.medium`).
pub const PREFERRED_CONTACT_METHOD_SYSTEM: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-PreferredContactMethod";

/// SNOMED CT, for attempt outcomes.
pub const SNOMED_SYSTEM: &str = "http://snomed.info/sct";

impl AttemptMethod {
    /// `(code, display)` in UK Core PreferredContactMethod. `None` for family
    /// or carer contact: the code system describes how the *person* is
    /// reached, and a call to a relative is not one of its methods, so the
    /// record carries only [`AttemptMethod::medium_text`] rather than a code
    /// that would misstate it.
    pub fn preferred_contact_method(self) -> Option<(&'static str, &'static str)> {
        match self {
            AttemptMethod::Letter => Some(("1", "Letter")),
            AttemptMethod::HomeVisit
            | AttemptMethod::CommunityVisit
            | AttemptMethod::JointVisit => Some(("2", "Visit")),
            AttemptMethod::Phone => Some(("3", "Telephone")),
            AttemptMethod::Email => Some(("4", "E-mail")),
            AttemptMethod::TextMessage => Some(("9", "SMS")),
            AttemptMethod::FamilyOrCarerContact => None,
        }
    }

    /// What a person reads (`Communication.medium.text`); kept for every
    /// method because the code alone loses detail (three kinds of visit share "2").
    pub fn medium_text(self) -> &'static str {
        match self {
            AttemptMethod::Phone => "Telephone call",
            AttemptMethod::TextMessage => "Text message (SMS)",
            AttemptMethod::Letter => "Letter",
            AttemptMethod::Email => "E-mail",
            AttemptMethod::HomeVisit => "Home visit",
            AttemptMethod::CommunityVisit => "Community visit",
            AttemptMethod::JointVisit => "Joint visit with the clinical team",
            AttemptMethod::FamilyOrCarerContact => "Contact through family or carer",
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl AttemptOutcome {
    /// SNOMED CT `(code, display)` where a concept says exactly this outcome
    /// for this method (DESIGN §4.2); `None` elsewhere, where the record
    /// carries [`AttemptOutcome::label`] as text. A code is only given when it
    /// is true of the method too: "no answer when rang" is not true of a letter.
    pub fn snomed(self, method: AttemptMethod) -> Option<(&'static str, &'static str)> {
        match (self, method) {
            (AttemptOutcome::NoAnswer, AttemptMethod::Phone) => {
                Some(("185337004", "No answer when rang"))
            }
            (AttemptOutcome::MessageLeft, AttemptMethod::Phone) => {
                Some(("185340004", "Message left on answer machine"))
            }
            (
                AttemptOutcome::NumberUnobtainable,
                AttemptMethod::Phone | AttemptMethod::TextMessage,
            ) => Some(("185341000", "Telephone number unobtainable")),
            (AttemptOutcome::NoAnswer, AttemptMethod::HomeVisit) => {
                Some(("185471009", "Home visit - no reply"))
            }
            _ => None,
        }
    }

    /// Only a contact made resolves an outreach flag; a message left or a
    /// declined offer is an attempt, not engagement.
    pub fn is_contact(self) -> bool {
        self == AttemptOutcome::Contacted
    }

    /// What a person reads.
    pub fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Contacted => "Contact made",
            AttemptOutcome::NoAnswer => "No answer",
            AttemptOutcome::MessageLeft => "Message left",
            AttemptOutcome::NumberUnobtainable => "Number unobtainable",
            AttemptOutcome::Declined => "Contact declined",
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}
