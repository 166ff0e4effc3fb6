//! Outreach attempts an employment specialist makes, with the codes the
//! record carries for them.

use serde::{Deserialize, Serialize};

/// How the specialist tried to reach the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString, strum::EnumIter)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString, strum::EnumIter)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum AttemptOutcome {
    Contacted,
    NoAnswer,
    MessageLeft,
    NumberUnobtainable,
    Declined,
}
