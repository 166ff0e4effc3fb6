//! What an inbound message means.
//!
//! Meaning comes from the resource type, and for BaRS message Bundles from
//! `MessageHeader.eventCoding` plus the status of the focus resource, never
//! from `MessageHeader.reason` (DESIGN §4.4): a referral cancel is a
//! ServiceRequest `revoked` under reason `update`; DNA feedback is a
//! `servicerequest-response` carrying an Appointment `noshow` and the
//! ServiceRequest `revoked`.

use super::bars::{BarsMessage, logical_id};
use super::fhir_view::*;
use super::guard::{self, Limits};
use crate::domain::nhs_number::{NHS_NUMBER_SYSTEM, NhsNumber};
use crate::domain::referral::{ClosureCause, NhsField, ReferralVersion, RequestStatus};
use crate::domain::source::{self, RequesterKind, SourceRules};
use crate::engine::command::{
    AppointmentInput, Command, DECISION_EVENT, DecisionInput, DecisionOutcome, ReferralInput,
};
use crate::engine::rejection::{RejectCode, Rejection};
use fhir_sdk::r4b::codes;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::str::FromStr;
use time::OffsetDateTime;

/// Which ServiceRequests are IPS referrals (`[intake]` in the config).
#[derive(Debug, Clone, Default)]
pub struct IntakeRules {
    pub snomed_codes: Vec<String>,
    pub performer_references: Vec<String>,
    pub bars_service_ids: Vec<String>,
    pub sources: SourceRules,
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

fn classify_es_event(event_type: &str, value: Value) -> Result<Command, Rejection> {
    match event_type {
        DECISION_EVENT => {
            let d: DecisionInput = serde_path_to_error::deserialize(value).map_err(|e| {
                Rejection::new(
                    RejectCode::InvalidEvent,
                    format!("{DECISION_EVENT}: {}", super::summary::serde_summary(&e)),
                )
            })?;
            if d.outcome == DecisionOutcome::Declined && d.decline_reason.is_none() {
                return Err(Rejection::new(
                    RejectCode::InvalidEvent,
                    format!("{DECISION_EVENT}: a declined decision needs decline_reason"),
                ));
            }
            Ok(Command::Decision(d))
        }
        other => Err(Rejection::new(
            RejectCode::UnknownEventType,
            format!("unknown ES event type {other:?}; supported: {DECISION_EVENT}"),
        )),
    }
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
        "Appointment" => appointment(value, &Resolver::default(), None)
            .map(|a| Command::Appointment(Box::new(a))),
        other => Err(Rejection::new(
            RejectCode::UnsupportedResourceType,
            format!(
                "resourceType {other} is not consumed; send a ServiceRequest, an Appointment or a BaRS message Bundle"
            ),
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

fn wrap_referral(r: Option<ReferralInput>) -> Command {
    match r {
        Some(r) => Command::Referral(Box::new(r)),
        None => Command::Ignore(
            "not an IPS referral (no configured code, performer or service id)".into(),
        ),
    }
}

fn check_resource_type(value: &Value) -> Result<String, Rejection> {
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

fn classify_bundle(
    bundle: Value,
    limits: &Limits,
    rules: &IntakeRules,
) -> Result<Command, Rejection> {
    let btype = str_at(&bundle, "type").unwrap_or("");
    if codes::BundleType::from_str(btype).is_err() {
        return Err(Rejection::new(
            RejectCode::InvalidBundle,
            "Bundle.type is not a FHIR bundle type",
        ));
    }
    if btype != "message" {
        return Err(Rejection::new(
            RejectCode::UnsupportedBundleType,
            format!(
                "Bundle.type {btype} is not consumed; send a BaRS message Bundle (type message)"
            ),
        ));
    }
    let entries = array_at(&bundle, "entry");
    if entries.len() > limits.max_bundle_entries {
        return Err(Rejection::new(
            RejectCode::TooManyEntries,
            format!(
                "Bundle has {} entries; the limit is {} (limits.max_bundle_entries)",
                entries.len(),
                limits.max_bundle_entries
            ),
        ));
    }
    let header = entries
        .first()
        .and_then(|e| e.get("resource"))
        .filter(|r| str_at(r, "resourceType") == Some("MessageHeader"))
        .ok_or_else(|| {
            Rejection::new(
                RejectCode::MissingMessageHeader,
                "a message Bundle must start with a MessageHeader entry",
            )
        })?;
    let mut resolver = Resolver::default();
    for (i, e) in entries.iter().enumerate() {
        let Some(res) = e.get("resource") else {
            return Err(Rejection::new(
                RejectCode::InvalidBundle,
                format!("Bundle.entry[{i}] has no resource"),
            ));
        };
        check_resource_type(res)
            .map_err(|r| Rejection::new(r.code, format!("Bundle.entry[{i}]: {}", r.reason)))?;
        resolver.add(str_at(e, "fullUrl"), res);
    }
    let event = codings(
        header
            .get("eventCoding")
            .map(|c| serde_json::json!({"coding":[c]}))
            .as_ref()
            .unwrap_or(&Value::Null),
    );
    let Some((_, event_code)) = event.first() else {
        return Err(Rejection::new(
            RejectCode::InvalidMessageHeader,
            "MessageHeader.eventCoding has no code",
        ));
    };
    let focus: Vec<&Value> = array_at(header, "focus")
        .iter()
        .filter_map(|f| resolver.resolve(header, f))
        .collect();
    let msg = BarsMessage::new(&bundle, entries, header, event_code, &resolver);
    let of_type = |t: &str| -> Option<&Value> {
        focus
            .iter()
            .find(|r| str_at(r, "resourceType") == Some(t))
            .copied()
            .or_else(|| {
                entries
                    .iter()
                    .filter_map(|e| e.get("resource"))
                    .find(|r| str_at(r, "resourceType") == Some(t))
            })
    };
    match event_code.as_str() {
        "servicerequest-request" | "servicerequest-response" => {
            let sr = of_type("ServiceRequest").ok_or_else(|| {
                Rejection::new(
                    RejectCode::MissingFocus,
                    format!("{event_code} message has no ServiceRequest"),
                )
            })?;
            // DNA feedback: the referrer closed the referral because of a no-show.
            let dna = event_code == "servicerequest-response"
                && of_type("Appointment").is_some_and(|a| str_at(a, "status") == Some("noshow"));
            referral(
                sr.clone(),
                &resolver,
                Some(header),
                dna.then_some(ClosureCause::DidNotAttend),
                rules,
                Some((&msg, msg.full_url_of(sr))),
            )
            .map(wrap_referral)
        }
        code if code.starts_with("booking-") => {
            let appt = of_type("Appointment").ok_or_else(|| {
                Rejection::new(
                    RejectCode::MissingFocus,
                    format!("{code} message has no Appointment"),
                )
            })?;
            appointment(appt.clone(), &resolver, Some((&msg, msg.full_url_of(appt))))
                .map(|a| Command::Appointment(Box::new(a)))
        }
        other => Ok(Command::Ignore(format!(
            "BaRS event {other} is not acted on"
        ))),
    }
}

fn require<'a>(v: &'a Value, key: &str, rt: &str, note: &str) -> Result<&'a Value, Rejection> {
    v.get(key).filter(|x| !x.is_null()).ok_or_else(|| {
        Rejection::new(
            RejectCode::MissingRequiredElement,
            format!("{rt}.{key} is required{note}"),
        )
    })
}

fn parse_code<T: FromStr>(v: &Value, key: &str, rt: &str) -> Result<T, Rejection> {
    let raw = require(v, key, rt, "")?;
    let s = raw.as_str().ok_or_else(|| {
        Rejection::new(
            RejectCode::InvalidElement,
            format!("{rt}.{key} must be a string code"),
        )
    })?;
    T::from_str(s).map_err(|_| {
        Rejection::new(
            RejectCode::InvalidCode,
            format!("{rt}.{key} is not a valid FHIR R4 code"),
        )
    })
}

fn parse_instant(v: Option<&str>) -> Option<OffsetDateTime> {
    v.and_then(|s| fhir_sdk::Instant::from_str(s).ok())
        .map(|i| i.0)
}

fn parse_datetime(v: Option<&str>) -> Option<OffsetDateTime> {
    match fhir_sdk::DateTime::from_str(v?).ok()? {
        fhir_sdk::DateTime::DateTime(i) => Some(i.0),
        fhir_sdk::DateTime::Date(fhir_sdk::Date::Date(d)) => Some(d.midnight().assume_utc()),
        fhir_sdk::DateTime::Date(_) => None,
    }
}

/// Hash of what the sender authored: every element but `meta` and `id`
/// (where or when a server stored it), streamed into the hasher without
/// copying the resource.
fn content_hash(parts: &[&Value]) -> String {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Hashing(Sha256::new());
    for p in parts {
        match p {
            Value::Object(m) => {
                for (k, v) in m.iter().filter(|(k, _)| *k != "meta" && *k != "id") {
                    // Writing to a hasher cannot fail.
                    let _ = serde_json::to_writer(&mut w, k);
                    w.0.update(b":");
                    let _ = serde_json::to_writer(&mut w, v);
                    w.0.update(b",");
                }
            }
            other => {
                let _ = serde_json::to_writer(&mut w, other);
            }
        }
        w.0.update(b"\x1e");
    }
    hex::encode(w.0.finalize())
}

fn nhs_field(patient: Option<&Value>, reference: Option<&Value>) -> NhsField {
    let from_patient = patient.and_then(|p| identifier_value(p, NHS_NUMBER_SYSTEM));
    let from_ref = reference.and_then(|r| identifier_value(r, NHS_NUMBER_SYSTEM));
    match from_patient.or(from_ref) {
        None => NhsField::Missing,
        Some(n) => match NhsNumber::parse(&n) {
            Ok(n) => NhsField::Valid(n),
            Err(e) => NhsField::Invalid(e),
        },
    }
}

/// A BaRS message and the `fullUrl` of the resource being read from it.
type InMessage<'m, 'a> = Option<(&'m BarsMessage<'a>, Option<&'a str>)>;

fn referral(
    sr: Value,
    resolver: &Resolver,
    header: Option<&Value>,
    closure: Option<ClosureCause>,
    rules: &IntakeRules,
    bars: InMessage<'_, '_>,
) -> Result<Option<ReferralInput>, Rejection> {
    const RT: &str = "ServiceRequest";
    let status: codes::RequestStatus = parse_code(&sr, "status", RT)?;
    let _intent: codes::RequestIntent = parse_code(&sr, "intent", RT)?;
    let subject = require(&sr, "subject", RT, " (R4 cardinality 1..1)")?;
    if !is_ips_referral(&sr, header, rules) {
        return Ok(None);
    }
    let patient = resolver
        .resolve(&sr, subject)
        .filter(|p| str_at(p, "resourceType") == Some("Patient"));
    let nhs = nhs_field(patient, Some(subject));
    let (requester_kind, ods, org_types) = requester(&sr, resolver, header);
    let src = source::classify(requester_kind, ods.as_deref(), &org_types, &rules.sources);
    let key = identifiers(&sr)
        .into_iter()
        .next()
        .map(|(s, v)| format!("{s}|{v}"))
        .or_else(|| match bars {
            // In a BaRS message the id (or fullUrl UUID) is the requester's: scope it to them.
            Some((m, url)) => m.key(RT, &sr, url),
            None => str_at(&sr, "id").map(|id| format!("ServiceRequest/{id}")),
        })
        .ok_or_else(|| {
            Rejection::new(
                RejectCode::MissingRequiredElement,
                "ServiceRequest has neither identifier, id nor a urn:uuid fullUrl",
            )
        })?;
    let version = ReferralVersion {
        status: match status {
            codes::RequestStatus::Draft => RequestStatus::Draft,
            codes::RequestStatus::Active => RequestStatus::Active,
            codes::RequestStatus::OnHold => RequestStatus::OnHold,
            codes::RequestStatus::Completed => RequestStatus::Completed,
            codes::RequestStatus::Revoked => RequestStatus::Revoked,
            codes::RequestStatus::EnteredInError => RequestStatus::EnteredInError,
            _ => RequestStatus::Unknown,
        },
        source_updated_at: parse_instant(sr.get("meta").and_then(|m| str_at(m, "lastUpdated"))),
        nhs,
        patient_included: patient.is_some(),
        has_contact_route: patient
            .is_some_and(|p| has_content(p, "telecom") || has_content(p, "address")),
        has_reason: has_content(&sr, "reasonCode")
            || has_content(&sr, "reasonReference")
            || has_content(&sr, "note"),
        source: src,
        content_hash: content_hash(&[&sr, patient.unwrap_or(&Value::Null)]),
        closure,
    };
    Ok(Some(ReferralInput {
        key,
        resource_ref: str_at(&sr, "id").map(|id| format!("ServiceRequest/{id}")),
        authored_at: parse_datetime(str_at(&sr, "authoredOn")),
        version,
        origin: bars.map(|(m, url)| m.origin(resolver, logical_id(&sr, url))),
        raw: sr,
    }))
}

fn is_ips_referral(sr: &Value, header: Option<&Value>, rules: &IntakeRules) -> bool {
    let code_match = sr
        .get("code")
        .map(codings)
        .unwrap_or_default()
        .iter()
        .any(|(s, c)| s == SNOMED_SYSTEM && rules.snomed_codes.contains(c));
    let performer_match = array_at(sr, "performer").iter().any(|p| {
        let by_ref = str_at(p, "reference").and_then(relative_reference);
        let by_id = p.get("identifier").and_then(|i| {
            Some(format!(
                "{}|{}",
                normalise_system(str_at(i, "system")?),
                str_at(i, "value")?
            ))
        });
        rules
            .performer_references
            .iter()
            .any(|r| Some(r) == by_ref.as_ref() || Some(r) == by_id.as_ref())
    });
    let service_match = header.is_some_and(|h| {
        array_at(h, "destination")
            .iter()
            .filter_map(|d| str_at(d, "endpoint"))
            .any(|ep| {
                let id = match ep.split_once('|') {
                    Some((sys, id)) if normalise_system(sys) == DOS_SERVICE_ID_SYSTEM => id,
                    _ => return false,
                };
                rules.bars_service_ids.iter().any(|s| s == id.trim())
            })
    });
    code_match || performer_match || service_match
}

/// Who referred: the kind of requester, its ODS code and its organisation type codes.
fn requester(
    sr: &Value,
    resolver: &Resolver,
    header: Option<&Value>,
) -> (RequesterKind, Option<String>, Vec<String>) {
    let Some(req) = sr.get("requester") else {
        return (
            RequesterKind::Unknown,
            header_sender_ods(header, resolver),
            vec![],
        );
    };
    let resolved = resolver.resolve(sr, req);
    let kind = resolved
        .and_then(|r| str_at(r, "resourceType"))
        .or_else(|| str_at(req, "type"))
        .or_else(|| str_at(req, "reference").and_then(reference_type))
        .map(RequesterKind::from_resource_type)
        .unwrap_or(RequesterKind::Unknown);
    let org = match (kind, resolved) {
        (RequesterKind::Organization, Some(o)) => Some(o),
        (RequesterKind::PractitionerRole, Some(role)) => role
            .get("organization")
            .and_then(|o| resolver.resolve(role, o)),
        _ => None,
    };
    let ods = org
        .and_then(|o| identifier_value(o, ODS_SYSTEM))
        .or_else(|| {
            req.get("identifier")
                .and_then(|i| identifier_value(&serde_json::json!({"identifier": i}), ODS_SYSTEM))
        })
        .or_else(|| {
            resolved
                .and_then(|r| r.get("organization"))
                .and_then(|o| o.get("identifier"))
                .and_then(|i| identifier_value(&serde_json::json!({"identifier": i}), ODS_SYSTEM))
        })
        .or_else(|| header_sender_ods(header, resolver));
    let types = org
        .and_then(|o| o.get("type"))
        .map(codings)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    (kind, ods, types)
}

fn header_sender_ods(header: Option<&Value>, resolver: &Resolver) -> Option<String> {
    let sender = header?.get("sender")?;
    resolver
        .resolve(header?, sender)
        .and_then(|o| identifier_value(o, ODS_SYSTEM))
        .or_else(|| {
            identifier_value(
                &serde_json::json!({"identifier": sender.get("identifier")?}),
                ODS_SYSTEM,
            )
        })
}

fn appointment(
    appt: Value,
    resolver: &Resolver,
    bars: InMessage<'_, '_>,
) -> Result<AppointmentInput, Rejection> {
    const RT: &str = "Appointment";
    let status: codes::AppointmentStatus = parse_code(&appt, "status", RT)?;
    let participants = require(&appt, "participant", RT, " (R4 cardinality 1..*)")?;
    let patient_ref = participants
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("actor"))
        .find(|a| {
            str_at(a, "type") == Some("Patient")
                || str_at(a, "reference").and_then(reference_type) == Some("Patient")
                || resolver
                    .resolve(&appt, a)
                    .and_then(|r| str_at(r, "resourceType"))
                    == Some("Patient")
        });
    let patient = patient_ref.and_then(|r| resolver.resolve(&appt, r));
    let key = identifiers(&appt)
        .into_iter()
        .next()
        .map(|(s, v)| format!("{s}|{v}"))
        .or_else(|| match bars {
            Some((m, url)) => m.key(RT, &appt, url),
            None => str_at(&appt, "id").map(|id| format!("Appointment/{id}")),
        })
        .ok_or_else(|| {
            Rejection::new(
                RejectCode::MissingRequiredElement,
                "Appointment has neither identifier, id nor a urn:uuid fullUrl",
            )
        })?;
    Ok(AppointmentInput {
        key,
        status: status.as_ref().to_owned(),
        start: parse_instant(str_at(&appt, "start")),
        nhs: nhs_field(patient, patient_ref),
        source_updated_at: parse_instant(appt.get("meta").and_then(|m| str_at(m, "lastUpdated"))),
        content_hash: content_hash(&[&appt]),
        raw: appt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::command::MessageOrigin as BarsOrigin;
    use serde_json::json;

    fn rules() -> IntakeRules {
        IntakeRules {
            snomed_codes: vec!["1082611000000105".into()],
            performer_references: vec!["HealthcareService/ips".into()],
            bars_service_ids: vec!["2000072489".into()],
            sources: SourceRules::default(),
        }
    }

    fn go(v: Value) -> Result<Command, Rejection> {
        classify(
            &serde_json::to_vec(&v).unwrap(),
            &Envelope::default(),
            &Limits::default(),
            &rules(),
        )
    }

    fn sr() -> Value {
        json!({
            "resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
            "identifier": [{"system": "https://trust.example/referrals", "value": "R-1"}],
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1082611000000105"}]},
            "subject": {"reference": "urn:uuid:pat", "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9912003888"}},
            "requester": {"reference": "urn:uuid:org"},
            "reasonCode": [{"text": "wants to return to work"}],
            "authoredOn": "2026-11-20T09:15:30.1234567+01:00"
        })
    }

    fn bars(event: &str, sr: Value, extra: Vec<Value>) -> Value {
        let mut entries = vec![
            json!({"fullUrl": "urn:uuid:hdr", "resource": {"resourceType": "MessageHeader", "id": "h1",
                "eventCoding": {"system": BARS_EVENT_SYSTEM, "code": event},
                "reason": {"coding": [{"code": "update"}]},
                "destination": [{"endpoint": "http://fhir.nhs.uk/Id/dos-service-id|2000072489"}],
                "focus": [{"reference": "urn:uuid:sr"}]}}),
            json!({"fullUrl": "urn:uuid:sr", "resource": sr}),
            json!({"fullUrl": "urn:uuid:pat", "resource": {"resourceType": "Patient", "id": "different-id",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9912003888"}],
                "telecom": [{"system": "phone", "value": "0"}]}}),
            json!({"fullUrl": "urn:uuid:org", "resource": {"resourceType": "Organization",
                "identifier": [{"system": "https://fhir.nhs.uk/id/ods-organization-code", "value": "A81001"}]}}),
        ];
        entries.extend(extra);
        json!({"resourceType": "Bundle", "id": "b1", "type": "message", "entry": entries})
    }

    #[test]
    fn bars_referral_resolves_by_full_url_and_normalises_systems() {
        let Command::Referral(r) = go(bars("servicerequest-request", sr(), vec![])).unwrap() else {
            panic!()
        };
        assert_eq!(r.key, "https://trust.example/referrals|R-1");
        assert!(r.version.nhs.valid().is_some());
        assert!(r.version.patient_included && r.version.has_contact_route && r.version.has_reason);
        assert_eq!(r.version.source.ods_code.as_deref(), Some("A81001"));
        assert_eq!(
            r.version.source.kind,
            crate::domain::source::SourceKind::GpPractice
        );
        // 7 fractional digits and a +01:00 offset
        // 2026-11-20T08:15:30Z
        assert_eq!(r.authored_at.unwrap().unix_timestamp(), 1_795_162_530);
        assert_eq!(r.authored_at.unwrap().nanosecond(), 123_456_700);
    }

    #[test]
    fn dna_feedback_is_a_closure_not_a_withdrawal() {
        let mut s = sr();
        s["status"] = json!("revoked");
        let appt = json!({"fullUrl": "urn:uuid:ap", "resource": {"resourceType": "Appointment", "status": "noshow", "participant": []}});
        let Command::Referral(r) = go(bars("servicerequest-response", s, vec![appt])).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.version.closure, Some(ClosureCause::DidNotAttend));
        assert!(r.version.status.withdraws());
    }

    #[test]
    fn matches_by_service_id_when_code_is_absent() {
        let mut s = sr();
        s.as_object_mut().unwrap().remove("code");
        assert!(matches!(
            go(bars("servicerequest-request", s.clone(), vec![])).unwrap(),
            Command::Referral(_)
        ));
        assert!(
            matches!(go(s).unwrap(), Command::Ignore(_)),
            "plain SR without code or performer is not IPS"
        );
    }

    #[test]
    fn bad_inputs_are_rejected_with_named_reasons() {
        let mut no_subject = sr();
        no_subject.as_object_mut().unwrap().remove("subject");
        let e = go(no_subject).unwrap_err();
        assert_eq!(e.code.as_str(), "missing-required-element");
        assert!(e.reason.contains("ServiceRequest.subject"));

        let mut b = bars("servicerequest-request", sr(), vec![]);
        b["entry"].as_array_mut().unwrap().remove(0);
        assert_eq!(go(b).unwrap_err().code.as_str(), "missing-message-header");

        assert_eq!(
            go(json!({"resourceType": "ReferralRequest"}))
                .unwrap_err()
                .code
                .as_str(),
            "stu3-resource"
        );
        assert_eq!(
            go(json!({"resourceType": "Nonsense"}))
                .unwrap_err()
                .code
                .as_str(),
            "unknown-resource-type"
        );
        assert_eq!(
            go(json!({"resourceType": "Observation"}))
                .unwrap_err()
                .code
                .as_str(),
            "unsupported-resource-type"
        );
        let mut bad_status = sr();
        bad_status["status"] = json!("paused");
        assert_eq!(go(bad_status).unwrap_err().code.as_str(), "invalid-code");
    }

    #[test]
    fn content_hash_ignores_where_a_server_stored_it_but_not_what_was_sent() {
        let a = json!({"resourceType": "ServiceRequest", "id": "1", "meta": {"versionId": "1"}, "status": "active"});
        let stored_elsewhere = json!({"resourceType": "ServiceRequest", "id": "x9", "meta": {"versionId": "7"}, "status": "active"});
        let changed = json!({"resourceType": "ServiceRequest", "id": "1", "status": "revoked"});
        assert_eq!(content_hash(&[&a]), content_hash(&[&stored_elsewhere]));
        assert_ne!(content_hash(&[&a]), content_hash(&[&changed]));
        assert_ne!(
            content_hash(&[&a, &Value::Null]),
            content_hash(&[&a]),
            "parts are delimited"
        );
    }

    #[test]
    fn tolerates_unfamiliar_priority_and_unknown_elements() {
        let mut s = sr();
        s["priority"] = json!("whenever");
        s["extension"] = json!([{"url": "x", "valueFoo": 1}]);
        assert!(matches!(go(s).unwrap(), Command::Referral(_)));
    }

    #[test]
    fn es_decision_events() {
        let body = json!({"type": DECISION_EVENT, "referral_id": "r1", "outcome": "declined"});
        assert_eq!(
            classify(
                &serde_json::to_vec(&body).unwrap(),
                &Envelope::default(),
                &Limits::default(),
                &rules()
            )
            .unwrap_err()
            .code
            .as_str(),
            "invalid-event"
        );
        let body = json!({"referral_id": "r1", "outcome": "accepted"});
        let env = Envelope {
            message_type: Some(DECISION_EVENT),
            content_type: Some("application/json"),
        };
        assert!(matches!(
            classify(
                &serde_json::to_vec(&body).unwrap(),
                &env,
                &Limits::default(),
                &rules()
            )
            .unwrap(),
            Command::Decision(_)
        ));
    }

    /// A published BaRS example (tests/fixtures/bars/README.md).
    fn example(name: &str) -> Command {
        let path = format!(
            "{}/tests/fixtures/bars/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read(&path).unwrap();
        classify(&body, &Envelope::default(), &Limits::default(), &rules()).unwrap()
    }

    fn example_referral(name: &str) -> ReferralInput {
        match example(name) {
            Command::Referral(r) => *r,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn bars_examples_without_id_key_by_full_url_scoped_to_the_requester() {
        const KEY: &str = "ServiceRequest/236bb75d-90ef-461f-b71e-fde7f899802c@https://fhir.nhs.uk/Id/dos-service-id%7C2222222222";
        let req = example_referral("REFREQ01");
        assert_eq!(req.key, KEY);
        // The update and the delete (fullUrl only) and the DNA feedback (id
        // only, sent by the receiver back to the requester) meet on it.
        for later in ["SERVREQ01", "SERVREQ02", "REFRESP01"] {
            assert_eq!(example_referral(later).key, KEY, "{later}");
        }
        assert_eq!(
            example_referral("REFRESP01").version.closure,
            Some(ClosureCause::DidNotAttend)
        );
        let origin = req.origin.expect("a BaRS referral carries its origin");
        assert_eq!(
            origin,
            BarsOrigin {
                message_header_id: Some("c89a8895-56fe-41de-b20b-fab6efa99c99".into()),
                bundle_id: Some("79120f41-a431-4f08-bcc5-1e67006fcae0".into()),
                source_endpoint: Some("https://fhir.nhs.uk/Id/dos-service-id|2222222222".into()),
                sender_ods: Some("RND".into()),
                service_request_id: Some("236bb75d-90ef-461f-b71e-fde7f899802c".into()),
            }
        );
        let Command::Appointment(booked) = example("BOOKREQ01") else {
            panic!()
        };
        let Command::Appointment(cancelled) = example("BOOKREQ02") else {
            panic!()
        };
        assert_eq!(
            booked.key,
            "Appointment/aca94bdb-2e38-4399-9ece-2ba083ce65b5@https://fhir.nhs.uk/Id/dos-service-id%7C2222222222"
        );
        assert_eq!(booked.key, cancelled.key);
        assert_eq!(
            (booked.status.as_str(), cancelled.status.as_str()),
            ("booked", "cancelled")
        );
    }

    #[test]
    fn the_same_full_url_from_another_requester_is_another_referral() {
        let mut s = sr();
        s.as_object_mut().unwrap().remove("identifier");
        s.as_object_mut().unwrap().remove("id");
        let mut b = bars("servicerequest-request", s, vec![]);
        let Command::Referral(none) = go(b.clone()).unwrap() else {
            panic!()
        };
        assert_eq!(
            none.key, "ServiceRequest/sr",
            "a header naming no requester: unscoped"
        );
        b["entry"][0]["resource"]["sender"] = json!({"reference": "urn:uuid:org"});
        let Command::Referral(one) = go(b.clone()).unwrap() else {
            panic!()
        };
        assert_eq!(
            one.key,
            "ServiceRequest/sr@https://fhir.nhs.uk/Id/ods-organization-code%7CA81001"
        );
        b["entry"][0]["resource"]["source"] =
            json!({"endpoint": "https://fhir.nhs.uk/Id/dos-service-id|42"});
        let Command::Referral(two) = go(b.clone()).unwrap() else {
            panic!()
        };
        assert_eq!(
            two.key,
            "ServiceRequest/sr@https://fhir.nhs.uk/Id/dos-service-id%7C42"
        );
        // Plain resources keep the unscoped server id; no id and no fullUrl is still refused.
        b["entry"][1]["fullUrl"] = json!("https://elsewhere/fhir/ServiceRequest/x");
        let e = go(b).unwrap_err();
        assert_eq!(e.code.as_str(), "missing-required-element");
        assert!(matches!(go(sr()).unwrap(), Command::Referral(r) if r.origin.is_none()));
    }

    #[test]
    fn appointments_from_plain_resources() {
        let a = json!({"resourceType": "Appointment", "id": "a1", "status": "fulfilled",
            "start": "2026-11-20T09:00:00Z",
            "participant": [{"actor": {"reference": "Patient/p1", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9000000009"}}, "status": "accepted"}]});
        let Command::Appointment(a) = go(a).unwrap() else {
            panic!()
        };
        assert!(a.attended());
        assert!(a.nhs.valid().is_some());
        assert_eq!(a.key, "Appointment/a1");
    }
}
