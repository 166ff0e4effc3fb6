//! Referral lifecycle: intake of referral versions, completeness, decisions
//! and the start of assistance.
//!
//! IPS services are measured (IPS Grow) on the dates a referral was received,
//! became complete, was decided and when assistance commenced, on its source,
//! and on multiple and incomplete referrals. These functions compute those
//! facts from what arrives and from what is already known; the engine stores
//! them. No function here reads the clock.

use super::nhs_number::{NhsNumber, NhsNumberError};
use super::source::ReferralSource;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// Where the bridge is with a referral. The kebab-case code is what the
/// store, the API and events carry (serde and strum spell it the same way).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum ReferralState {
    /// Received, but something needed to act on it is missing.
    Incomplete,
    /// Complete and waiting for the employment specialist's decision.
    AwaitingDecision,
    /// Accepted: on the waiting list until assistance commences.
    Accepted,
    /// Accepted and assistance has commenced (first attended contact).
    Started,
    Declined,
    /// Cancelled by the referrer (`revoked`) or voided (`entered-in-error`).
    Withdrawn,
    /// The referrer closed the referral because of missed appointments
    /// (BaRS DNA feedback). Not a withdrawal: assertive outreach applies.
    ClosedByReferrerAfterDna,
}

impl ReferralState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// States from which a referrer's update can no longer change the state.
    fn is_final(self) -> bool {
        matches!(self, Self::Declined | Self::Withdrawn)
    }
}

/// The FHIR `ServiceRequest.status`, reduced to what the lifecycle needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Draft,
    Active,
    OnHold,
    Completed,
    Revoked,
    EnteredInError,
    Unknown,
}

impl RequestStatus {
    pub fn withdraws(self) -> bool {
        matches!(self, Self::Revoked | Self::EnteredInError)
    }
}

/// What we know of the patient's NHS number on one referral version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NhsField {
    Valid(NhsNumber),
    Invalid(NhsNumberError),
    Missing,
}

impl NhsField {
    pub fn valid(&self) -> Option<&NhsNumber> {
        match self {
            NhsField::Valid(n) => Some(n),
            _ => None,
        }
    }
}

/// Why a referral is incomplete. Text names the rule, never patient data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncompleteReason {
    NoNhsNumber,
    InvalidNhsNumber(NhsNumberError),
    NoPatientDetails,
    NoContactRoute,
    NoReason,
}

impl fmt::Display for IncompleteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoNhsNumber => f.write_str("no NHS number on the patient"),
            Self::InvalidNhsNumber(e) => write!(f, "invalid NHS number: {e}"),
            Self::NoPatientDetails => {
                f.write_str("patient details not included and not retrievable")
            }
            Self::NoContactRoute => {
                f.write_str("no contact route for the patient (telecom or address)")
            }
            Self::NoReason => {
                f.write_str("no reason for referral (reasonCode, reasonReference or note)")
            }
        }
    }
}

/// A state code the bridge does not know (a stored row from a newer version,
/// or a damaged one): refused at the store boundary, never defaulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown referral state code {0:?}")]
pub struct UnknownState(pub String);

impl TryFrom<String> for ReferralState {
    type Error = UnknownState;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ReferralState::parse(&s).ok_or(UnknownState(s))
    }
}

impl fmt::Display for ReferralState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the referrer closed a referral, when it matters to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosureCause {
    /// DNA feedback: closed because the patient did not attend.
    DidNotAttend,
}

/// One version of a referral as it arrived, reduced to the facts the rules use.
#[derive(Debug, Clone)]
pub struct ReferralVersion {
    pub status: RequestStatus,
    /// `meta.lastUpdated` of the ServiceRequest, when the sender gave one.
    pub source_updated_at: Option<OffsetDateTime>,
    pub nhs: NhsField,
    /// `false` when the Patient resource was not available at all.
    pub patient_included: bool,
    pub has_contact_route: bool,
    pub has_reason: bool,
    pub source: ReferralSource,
    /// Hash of the referral content, so that re-reading a version changes nothing.
    pub content_hash: String,
    pub closure: Option<ClosureCause>,
    /// The patient's registered GP practice (ODS code), when the referral
    /// names it: where documents for the GP go.
    pub gp_practice: Option<String>,
}

impl ReferralVersion {
    /// Everything that keeps this version from being a complete referral.
    pub fn incomplete_reasons(&self) -> Vec<IncompleteReason> {
        let mut out = Vec::new();
        if !self.patient_included {
            out.push(IncompleteReason::NoPatientDetails);
        }
        match &self.nhs {
            NhsField::Valid(_) => {}
            NhsField::Invalid(e) => out.push(IncompleteReason::InvalidNhsNumber(e.clone())),
            NhsField::Missing => out.push(IncompleteReason::NoNhsNumber),
        }
        if self.patient_included && !self.has_contact_route {
            out.push(IncompleteReason::NoContactRoute);
        }
        if !self.has_reason {
            out.push(IncompleteReason::NoReason);
        }
        out
    }
}

/// What the store already knows of a referral.
#[derive(Debug, Clone)]
pub struct KnownReferral {
    pub state: ReferralState,
    pub content_hash: String,
    pub source_updated_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
}

/// The result of applying one arriving version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// Same content, or an older version than the one held: nothing to do.
    Unchanged,
    /// A referral not seen before.
    New(IntakeResult),
    /// A new version of a known referral.
    Updated(IntakeResult),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeResult {
    pub state: ReferralState,
    pub completed_at: Option<OffsetDateTime>,
    pub incomplete_reasons: Vec<String>,
    /// The referral was closed with this version: withdrawn, or closed by the
    /// referrer after DNAs (which `state` tells apart).
    pub closed_now: bool,
    /// The referral became complete with this version.
    pub completed_now: bool,
}

/// Applies an arriving referral version to what is known.
pub fn apply_version(
    known: Option<&KnownReferral>,
    v: &ReferralVersion,
    now: OffsetDateTime,
) -> Intake {
    let reasons = v.incomplete_reasons();
    let reason_text: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    let closing_state = match (v.status.withdraws(), v.closure) {
        (true, Some(ClosureCause::DidNotAttend)) => Some(ReferralState::ClosedByReferrerAfterDna),
        (true, None) => Some(ReferralState::Withdrawn),
        (false, _) => None,
    };
    let Some(k) = known else {
        let complete = reasons.is_empty();
        let state = closing_state.unwrap_or(if complete {
            ReferralState::AwaitingDecision
        } else {
            ReferralState::Incomplete
        });
        return Intake::New(IntakeResult {
            state,
            completed_at: complete.then_some(now),
            incomplete_reasons: reason_text,
            closed_now: closing_state.is_some(),
            completed_now: complete,
        });
    };
    if k.content_hash == v.content_hash {
        return Intake::Unchanged;
    }
    if let (Some(held), Some(arriving)) = (k.source_updated_at, v.source_updated_at)
        && arriving < held
    {
        return Intake::Unchanged;
    }
    let mut result = IntakeResult {
        state: k.state,
        completed_at: k.completed_at,
        incomplete_reasons: reason_text,
        closed_now: false,
        completed_now: false,
    };
    if k.state.is_final() {
        return Intake::Updated(result);
    }
    if let Some(closing) = closing_state {
        result.closed_now = k.state != closing;
        result.state = closing;
        return Intake::Updated(result);
    }
    if reasons.is_empty() && k.completed_at.is_none() {
        result.completed_at = Some(now);
        result.completed_now = true;
    }
    if k.state == ReferralState::Incomplete && reasons.is_empty() {
        result.state = ReferralState::AwaitingDecision;
    }
    Intake::Updated(result)
}

/// An employment specialist's decision on a referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Decline { reason: String },
}

impl Decision {
    pub fn kind(&self) -> DecisionOutcome {
        match self {
            Decision::Accept => DecisionOutcome::Accepted,
            Decision::Decline { .. } => DecisionOutcome::Declined,
        }
    }

    /// The outcome's code, `accepted` or `declined`.
    pub fn outcome(&self) -> &'static str {
        self.kind().as_str()
    }
}

/// A decision as stored and published: its code is the spelling everywhere
/// (`accepted`, `declined`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum DecisionOutcome {
    Accepted,
    Declined,
}

impl DecisionOutcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("the referral is incomplete ({0}); complete it before deciding")]
    Incomplete(String),
    #[error(
        "the referral was already {0}; a different decision needs the referral to be re-opened"
    )]
    AlreadyDecided(&'static str),
    #[error("the referral is {0} and can no longer be decided")]
    NotDecidable(&'static str),
    #[error("decline reason {0:?} is not one of the configured reasons: {1}")]
    UnknownDeclineReason(String, String),
}

/// The effect of a valid decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionEffect {
    /// The same decision was already recorded: a retried request.
    AlreadyRecorded,
    Record {
        state: ReferralState,
        decided_at: OffsetDateTime,
    },
}

/// Checks a decision against the referral's state and the configured decline reasons.
pub fn decide(
    state: ReferralState,
    previous: Option<&Decision>,
    incomplete_reasons: &[String],
    decision: &Decision,
    allowed_decline_reasons: &[String],
    now: OffsetDateTime,
) -> Result<DecisionEffect, DecisionError> {
    if let Decision::Decline { reason } = decision
        && !allowed_decline_reasons.iter().any(|r| r == reason)
    {
        return Err(DecisionError::UnknownDeclineReason(
            reason.clone(),
            allowed_decline_reasons.join(", "),
        ));
    }
    if let Some(prev) = previous {
        return if prev == decision {
            Ok(DecisionEffect::AlreadyRecorded)
        } else {
            Err(DecisionError::AlreadyDecided(prev.outcome()))
        };
    }
    match state {
        ReferralState::AwaitingDecision => Ok(DecisionEffect::Record {
            state: match decision {
                Decision::Accept => ReferralState::Accepted,
                Decision::Decline { .. } => ReferralState::Declined,
            },
            decided_at: now,
        }),
        ReferralState::Incomplete => Err(DecisionError::Incomplete(incomplete_reasons.join("; "))),
        other => Err(DecisionError::NotDecidable(other.as_str())),
    }
}

/// Assistance commences at the first attended contact after acceptance.
/// Returns the new state when this attendance starts it.
pub fn on_attended(
    state: ReferralState,
    commenced_at: Option<OffsetDateTime>,
) -> Option<ReferralState> {
    (state == ReferralState::Accepted && commenced_at.is_none()).then_some(ReferralState::Started)
}

/// Whole days a referral has waited since it was accepted.
pub fn days_waiting(accepted_at: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (now - accepted_at).whole_days().max(0)
}

#[cfg(test)]
mod tests;
