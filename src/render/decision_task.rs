//! The Task that tells a referrer what was decided about their referral.

use super::ReferralRef;
use crate::domain::systems::{NHS_NUMBER_SYSTEM, ODS_SYSTEM};
use serde_json::{Value, json};

pub const DECISION_CODE_SYSTEM: &str =
    "https://ips-bridge.nhs.example/CodeSystem/referral-decision";
pub const DECLINE_REASON_SYSTEM: &str = "https://ips-bridge.nhs.example/CodeSystem/decline-reason";

/// What the referrer is told about a decision.
pub struct DecisionTask<'a> {
    pub identifier_system: &'a str,
    pub referral_id: &'a str,
    /// Which referral this answers; never empty (see [`ReferralRef`]).
    pub referral: &'a ReferralRef,
    pub nhs_number: Option<&'a str>,
    pub outcome: &'a str,
    pub decline_reason: Option<&'a str>,
    pub decided_at: &'a str,
    pub service_ods: &'a str,
    pub referrer_ods: Option<&'a str>,
}

impl DecisionTask<'_> {
    pub fn identifier_value(&self) -> String {
        format!("referral-decision-{}", self.referral_id)
    }

    pub fn to_resource(&self) -> Value {
        let focus = self.referral.to_reference();
        let mut task = json!({
            "resourceType": "Task",
            "identifier": [{"system": self.identifier_system, "value": self.identifier_value()}],
            "status": if self.outcome == "accepted" { "accepted" } else { "rejected" },
            "businessStatus": {
                "coding": [{"system": DECISION_CODE_SYSTEM, "code": self.outcome}],
                "text": self.outcome
            },
            "intent": "order",
            "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
            "focus": focus,
            "authoredOn": self.decided_at,
            "lastModified": self.decided_at,
            "requester": {"identifier": {"system": ODS_SYSTEM, "value": self.service_ods}}
        });
        if let Some(n) = self.nhs_number {
            task["for"] =
                json!({"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": n}});
        }
        if let Some(o) = self.referrer_ods {
            task["owner"] =
                json!({"type": "Organization", "identifier": {"system": ODS_SYSTEM, "value": o}});
        }
        if let Some(r) = self.decline_reason {
            task["statusReason"] =
                json!({"coding": [{"system": DECLINE_REASON_SYSTEM, "code": r}], "text": r});
        }
        task
    }
}
