//! Message bodies as NHS systems send them: BaRS referral message Bundles,
//! plain Appointments, and the decision Tasks the bridge writes back.
//!
//! Bodies are built once per benchmark and reused for the bridge and its
//! baseline, so both move exactly the same bytes.

use ips_bridge::engine::outbox::{FhirCreate, OutboxMessage};
use ips_bridge::render::{DecisionTask, ReferralRef};
use rand::Rng;
use serde_json::{Value, json};
use std::collections::HashSet;

pub const NHS_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const SNOMED: &str = "http://snomed.info/sct";
/// SNOMED CT: referral to Individual Placement and Support service.
pub const IPS_CODE: &str = "1082611000000105";
/// The sending trust's referral identifier system (already in the bridge's normal form).
pub const REFERRAL_SYSTEM: &str = "https://trust.example.nhs.uk/Id/referral";
const APPOINTMENT_SYSTEM: &str = "https://trust.example.nhs.uk/Id/appointment";

/// One inbound message: the AMQP `message_id` and the body.
#[derive(Clone)]
pub struct Message {
    pub id: String,
    pub body: Vec<u8>,
    /// The ServiceRequest identifier value, for referral Bundles.
    pub referral_value: Option<String>,
}

/// Draws valid, distinct NHS numbers: nine random digits and the modulus-11
/// check digit; draws whose check value would be 10 are skipped, as such
/// numbers are never issued and the bridge rejects them.
#[derive(Default)]
pub struct NhsNumbers {
    seen: HashSet<String>,
}

impl NhsNumbers {
    pub fn next(&mut self) -> String {
        let mut rng = rand::rng();
        loop {
            let digits: Vec<u32> = (0..9).map(|_| rng.random_range(0..10)).collect();
            let Some(check) = check_digit(&digits) else {
                continue;
            };
            let number: String = digits
                .iter()
                .chain(std::iter::once(&check))
                .map(|d| char::from(b'0' + *d as u8))
                .collect();
            if self.seen.insert(number.clone()) {
                return number;
            }
        }
    }
}

/// The modulus-11 check digit of nine digits; `None` when it would be 10.
fn check_digit(digits: &[u32]) -> Option<u32> {
    let sum: u32 = digits.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        d => Some(d),
    }
}

/// `n` messages, alternating a BaRS referral Bundle and an Appointment for
/// the same patient (booked, fulfilled or noshow in turn), each with a unique
/// message id. `run` makes identifiers unique across runs.
pub fn ingest_mix(n: usize, run: &str) -> anyhow::Result<Vec<Message>> {
    let mut nhs = NhsNumbers::default();
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while out.len() < n {
        let number = nhs.next();
        let value = format!("{run}-{i:06}");
        out.push(referral_message(&value, &number)?);
        if out.len() < n {
            let status = ["booked", "fulfilled", "noshow"][i % 3];
            let body = serde_json::to_vec(&appointment(&value, &number, status))?;
            out.push(Message {
                id: format!("{run}-appt-{i:06}"),
                body,
                referral_value: None,
            });
        }
        i += 1;
    }
    Ok(out)
}

/// `n` referral Bundles only (the latency benchmark sends referrals).
pub fn referrals(n: usize, run: &str) -> anyhow::Result<Vec<Message>> {
    let mut nhs = NhsNumbers::default();
    (0..n)
        .map(|i| referral_message(&format!("{run}-{i:06}"), &nhs.next()))
        .collect()
}

fn referral_message(value: &str, nhs: &str) -> anyhow::Result<Message> {
    let body = serde_json::to_vec(&bars_referral(value, nhs))?;
    Ok(Message {
        id: format!("{value}-msg"),
        body,
        referral_value: Some(value.to_owned()),
    })
}

/// A BaRS `servicerequest-request` message Bundle of about 3 KiB:
/// MessageHeader (event coding, DoS destination endpoint, sender ODS code),
/// ServiceRequest (IPS SNOMED code, unique identifier, reason and notes),
/// Patient (valid NHS number with verification status), GP Organization and
/// the referring Practitioner, referenced by `urn:uuid` full URLs.
pub fn bars_referral(value: &str, nhs: &str) -> Value {
    let urn = |part: &str| {
        format!(
            "urn:uuid:{}",
            uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_URL,
                format!("{value}/{part}").as_bytes()
            )
        )
    };
    let (hdr, sr, pat, org, gp) = (urn("hdr"), urn("sr"), urn("pat"), urn("org"), urn("gp"));
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": "2026-11-20T09:15:31.123+00:00"},
        "type": "message",
        "timestamp": "2026-11-20T09:15:31.123+00:00",
        "entry": [
            {"fullUrl": hdr, "resource": message_header(&sr, &gp)},
            {"fullUrl": sr, "resource": service_request(value, &pat, &org, &gp)},
            {"fullUrl": pat, "resource": patient(value, nhs, &org)},
            {"fullUrl": org, "resource": {
                "resourceType": "Organization", "id": "org-a81001",
                "identifier": [{"system": ODS_SYSTEM, "value": "A81001"}],
                "active": true,
                "name": "The Health Centre"}},
            {"fullUrl": gp, "resource": {
                "resourceType": "Practitioner", "id": "gp-c1234567",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555086689106"}],
                "name": [{"family": "Patel", "given": ["Anjali"], "prefix": ["Dr"]}]}}
        ]
    })
}

fn message_header(sr: &str, gp: &str) -> Value {
    json!({
        "resourceType": "MessageHeader",
        "id": uuid::Uuid::new_v4().to_string(),
        "eventCoding": {"system": "https://fhir.nhs.uk/CodeSystem/message-events-bars", "code": "servicerequest-request", "display": "Referral request"},
        "reason": {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/message-reason-bars", "code": "new", "display": "New"}]},
        "destination": [{"endpoint": "https://fhir.nhs.uk/Id/dos-service-id|2000072489",
                         "receiver": {"identifier": {"system": ODS_SYSTEM, "value": "RX4"}}}],
        "sender": {"identifier": {"system": ODS_SYSTEM, "value": "A81001"}, "display": "The Health Centre"},
        "author": {"reference": gp},
        "source": {"endpoint": "https://gp.example.nhs.uk/bars"},
        "focus": [{"reference": sr}]
    })
}

fn service_request(value: &str, pat: &str, org: &str, gp: &str) -> Value {
    json!({
        "resourceType": "ServiceRequest",
        "id": format!("sr-{value}"),
        "meta": {"lastUpdated": "2026-11-20T09:15:30.000+00:00"},
        "identifier": [{"system": REFERRAL_SYSTEM, "value": value}],
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "category": [{"coding": [{"system": SNOMED, "code": "306206005", "display": "Referral to service"}]}],
        "code": {"coding": [{"system": SNOMED, "code": IPS_CODE, "display": "Referral to Individual Placement and Support service"}]},
        "subject": {"reference": pat},
        "requester": {"reference": org},
        "reasonCode": [{"coding": [{"system": SNOMED, "code": "73867007", "display": "Severe major depression"}],
                        "text": "Wants support to find and keep paid work"}],
        "authoredOn": "2026-11-20T09:15:30+00:00",
        "note": [{"authorReference": {"reference": gp}, "time": "2026-11-20T09:10:00+00:00",
                  "text": "Out of work for 14 months after a period of illness; keen to return to paid employment. \
                           Consents to the referral. Prefers contact by mobile phone in the afternoons."}]
    })
}

fn patient(value: &str, nhs: &str, org: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": format!("pat-{value}"),
        "identifier": [{"system": NHS_SYSTEM, "value": nhs,
            "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
                "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland", "code": "01", "display": "Number present and verified"}]}}]}],
        "name": [{"use": "official", "family": "Example", "given": ["Sam"]}],
        "telecom": [{"system": "phone", "value": "07700 900123", "use": "mobile"}],
        "gender": "unknown",
        "birthDate": "1988-04-12",
        "address": [{"use": "home", "line": ["1 Example Street"], "city": "Leeds", "postalCode": "LS2 7UE", "country": "GB"}],
        "generalPractitioner": [{"reference": org}]
    })
}

/// A plain Appointment at the IPS service for the patient with `nhs`.
pub fn appointment(value: &str, nhs: &str, status: &str) -> Value {
    json!({
        "resourceType": "Appointment",
        "id": format!("appt-{value}"),
        "meta": {"lastUpdated": "2026-11-21T11:05:00+00:00"},
        "identifier": [{"system": APPOINTMENT_SYSTEM, "value": format!("appt-{value}")}],
        "status": status,
        "serviceType": [{"coding": [{"system": SNOMED, "code": "1082621000000104", "display": "Individual Placement and Support service"}]}],
        "description": "First meeting with the employment specialist",
        "start": "2026-11-21T10:00:00+00:00",
        "end": "2026-11-21T11:00:00+00:00",
        "participant": [
            {"actor": {"reference": format!("Patient/pat-{value}"), "type": "Patient",
                       "identifier": {"system": NHS_SYSTEM, "value": nhs}}, "status": "accepted"},
            {"actor": {"display": "Employment specialist"}, "status": "accepted"}
        ]
    })
}

/// One outbox row for the write path: a decision Task as the bridge builds it.
pub struct TaskRow {
    pub identifier_system: String,
    pub identifier_value: String,
    /// The resource as sent on the wire.
    pub body: Vec<u8>,
    /// The outbox payload (`handlers::decide` format).
    pub payload: String,
}

impl TaskRow {
    /// The `If-None-Exist` value the FHIR client sends.
    pub fn condition(&self) -> String {
        let key = format!("{}|{}", self.identifier_system, self.identifier_value);
        format!(
            "identifier={}",
            url::form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>()
        )
    }
}

/// `n` decision Tasks with distinct identifiers, built with the library's own
/// [`DecisionTask`] so they are the bridge's real payloads.
pub fn task_rows(n: usize, run: &str, identifier_system: &str) -> anyhow::Result<Vec<TaskRow>> {
    let mut nhs = NhsNumbers::default();
    (0..n)
        .map(|i| {
            let referral_id = uuid::Uuid::new_v4().to_string();
            let sr_value = format!("{run}-{i:06}");
            let number = nhs.next();
            let declined = i % 4 == 3;
            let task = DecisionTask {
                identifier_system,
                referral_id: &referral_id,
                referral: &ReferralRef {
                    identifier: Some((REFERRAL_SYSTEM.to_owned(), sr_value.clone())),
                    ..Default::default()
                },
                nhs_number: Some(&number),
                outcome: if declined { "declined" } else { "accepted" },
                decline_reason: declined.then_some("not-seeking-work"),
                decided_at: "2026-11-25T14:30:00.000Z",
                service_ods: "RX4",
                referrer_ods: Some("A81001"),
            };
            let resource = task.to_resource();
            let payload = OutboxMessage::FhirCreate(FhirCreate {
                identifier_system: identifier_system.to_owned(),
                identifier_value: task.identifier_value(),
                resource: resource.clone().into(),
            });
            Ok(TaskRow {
                identifier_system: identifier_system.to_owned(),
                identifier_value: task.identifier_value(),
                body: serde_json::to_vec(&resource)?,
                payload: payload.to_payload(),
            })
        })
        .collect()
}

/// Mean body size in KiB.
pub fn avg_kib<'a>(bodies: impl Iterator<Item = &'a Message>) -> f64 {
    let (n, sum) = bodies.fold((0usize, 0usize), |(n, s), m| (n + 1, s + m.body.len()));
    sum as f64 / n.max(1) as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers_are_valid_and_distinct() {
        let mut g = NhsNumbers::default();
        let all: Vec<String> = (0..1000).map(|_| g.next()).collect();
        assert!(
            all.iter()
                .all(|n| ips_bridge::domain::NhsNumber::parse(n).is_ok())
        );
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
    }
}
