//! What an inbound message means.
//!
//! Meaning comes from the resource type, and for BaRS message Bundles from
//! `MessageHeader.eventCoding` plus the status of the focus resource, never
//! from `MessageHeader.reason` (DESIGN §4.4): a referral cancel is a
//! ServiceRequest `revoked` under reason `update`; DNA feedback is a
//! `servicerequest-response` carrying an Appointment `noshow` and the
//! ServiceRequest `revoked`.

mod appointment;
mod bundle;
mod documents;
mod elements;
mod episode_of_care;
mod es_event;
mod service_request;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_outreach;

use super::fhir_view::*;
use super::guard::{self, Limits};
use crate::domain::source::SourceRules;
use crate::engine::command::{AppointmentInput, Command, ReferralInput};
use crate::engine::rejection::{RejectCode, Rejection};
use serde_json::Value;
use std::str::FromStr;

use appointment::appointment as read_appointment;
use bundle::classify_bundle;
pub use documents::DocumentRules;
use es_event::classify_es_event;
use service_request::referral;

/// Which ServiceRequests are IPS referrals (`[intake]` in the config).
#[derive(Debug, Clone, Default)]
pub struct IntakeRules {
    pub snomed_codes: Vec<String>,
    pub performer_references: Vec<String>,
    pub bars_service_ids: Vec<String>,
    pub sources: SourceRules,
    pub documents: DocumentRules,
}

/// Transport facts that help classify a body.
#[derive(Debug, Clone, Default)]
pub struct Envelope<'a> {
    pub content_type: Option<&'a str>,
    /// The AMQP `type` property (ES events carry `ips.*.v1`).
    pub message_type: Option<&'a str>,
}

/// Resource types that exist only in STU3: named so the sender learns what to send instead.
const STU3_ONLY: &[&str] = &[
    "ReferralRequest",
    "ProcedureRequest",
    "DeviceComponent",
    "EligibilityRequest",
    "EligibilityResponse",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "ImagingManifest",
    "ProcessRequest",
    "ProcessResponse",
    "DataElement",
    "ExpansionProfile",
    "ServiceDefinition",
];

/// Parses and classifies one message body.
pub fn classify(
    body: &[u8],
    env: &Envelope<'_>,
    limits: &Limits,
    rules: &IntakeRules,
) -> Result<Command, Rejection> {
    let value = guard::parse(body, limits)?;
    let es_type = env
        .message_type
        .filter(|t| t.starts_with("ips."))
        .or_else(|| {
            str_at(&value, "type")
                .filter(|t| t.starts_with("ips.") && value.get("resourceType").is_none())
        });
    if let Some(t) = es_type.map(str::to_owned) {
        return classify_es_event(&t, value);
    }
    classify_fhir(value, limits, rules)
}

/// Classifies a FHIR resource that is already parsed (the poller's path).
pub fn classify_fhir(
    value: Value,
    limits: &Limits,
    rules: &IntakeRules,
) -> Result<Command, Rejection> {
    let rt = check_resource_type(&value)?;
    match rt.as_str() {
        "Bundle" => classify_bundle(value, limits, rules),
        "ServiceRequest" => {
            referral(value, &Resolver::default(), None, None, rules, None).map(wrap_referral)
        }
        "Appointment" => read_appointment(value, &Resolver::default(), None)
            .map(|a| Command::Appointment(Box::new(a))),
        "EpisodeOfCare" => episode_of_care::episode_of_care(value, &Resolver::default()),
        "QuestionnaireResponse" => {
            documents::questionnaire_response(value, &Resolver::default(), &rules.documents)
        }
        "Task" => documents::task(value, &rules.documents),
        "Communication" => documents::communication(value, &rules.documents),
        other => Err(Rejection::new(
            RejectCode::UnsupportedResourceType,
            format!(
                "resourceType {other} is not consumed; send a ServiceRequest, an Appointment, an EpisodeOfCare, a QuestionnaireResponse, a Task, a Communication or a BaRS message Bundle"
            ),
        )),
    }
}

/// Classifies a polled QuestionnaireResponse, Task or Communication (the
/// resources fetched for it resolve a QuestionnaireResponse's subject).
pub fn classify_polled_document_input(
    res: Value,
    fetched: &Resolver,
    rules: &IntakeRules,
) -> Result<Command, Rejection> {
    match str_at(&res, "resourceType") {
        Some("QuestionnaireResponse") => {
            documents::questionnaire_response(res, fetched, &rules.documents)
        }
        Some("Task") => documents::task(res, &rules.documents),
        Some("Communication") => documents::communication(res, &rules.documents),
        _ => Err(Rejection::new(
            RejectCode::UnsupportedResourceType,
            "not a document input",
        )),
    }
}

/// Classifies a polled ServiceRequest with the resources the poller fetched for it.
pub fn classify_polled_referral(
    sr: Value,
    fetched: &Resolver,
    rules: &IntakeRules,
) -> Result<Command, Rejection> {
    check_resource_type(&sr)?;
    referral(sr, fetched, None, None, rules, None).map(wrap_referral)
}

/// Classifies a polled Appointment with the resources the poller fetched
/// for it (its Patient, Organizations, Locations). An Appointment whose
/// patient participant carries the NHS number in `actor.identifier` needs
/// none of them.
pub fn classify_polled_appointment(appt: Value, fetched: &Resolver) -> Result<Command, Rejection> {
    if check_resource_type(&appt)? != "Appointment" {
        return Err(Rejection::new(
            RejectCode::UnsupportedResourceType,
            "expected an Appointment",
        ));
    }
    read_appointment(appt, fetched, None).map(|a| Command::Appointment(Box::new(a)))
}

pub(super) fn wrap_referral(r: Option<ReferralInput>) -> Command {
    match r {
        Some(r) => Command::Referral(Box::new(r)),
        None => Command::Ignore(
            "not an IPS referral (no configured code, performer or service id)".into(),
        ),
    }
}

pub(super) fn check_resource_type(value: &Value) -> Result<String, Rejection> {
    let Some(rt) = value.as_object().map(|_| str_at(value, "resourceType")) else {
        return Err(Rejection::new(
            RejectCode::NotAResource,
            "message body is JSON but not an object",
        ));
    };
    let Some(rt) = rt else {
        return Err(Rejection::new(
            RejectCode::NotAResource,
            "message has no resourceType and no ES event type",
        ));
    };
    if STU3_ONLY.contains(&rt) {
        return Err(Rejection::new(
            RejectCode::Stu3Resource,
            format!(
                "resourceType {rt} is FHIR STU3; this service accepts FHIR R4 (send a ServiceRequest)"
            ),
        ));
    }
    if fhir_sdk::r4b::resources::ResourceType::from_str(rt).is_err() {
        return Err(Rejection::new(
            RejectCode::UnknownResourceType,
            "resourceType is not a FHIR R4 resource type",
        ));
    }
    Ok(rt.to_owned())
}
