//! FHIR shapes as NHS systems send them (UK Core / BaRS), built in code so
//! each test can vary exactly what it is about.

use serde_json::{Value, json};

pub const NHS_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const IPS_CODE: &str = "1082611000000105";

/// A valid NHS number derived from `seed` (modulus-11 check digit computed).
pub fn nhs_number(seed: u64) -> String {
    let mut n = seed;
    loop {
        let base = format!("{:09}", 900_000_000 + n % 99_999_999);
        let sum: u32 = base
            .chars()
            .enumerate()
            .map(|(i, c)| c.to_digit(10).unwrap() * (10 - i as u32))
            .sum();
        let check = match 11 - (sum % 11) {
            11 => 0,
            10 => {
                n += 1;
                continue;
            }
            d => d,
        };
        return format!("{base}{check}");
    }
}

/// Options for one referral.
#[derive(Clone)]
pub struct Referral {
    pub identifier_system: String,
    pub identifier: String,
    pub nhs: Option<String>,
    pub status: &'static str,
    pub with_reason: bool,
    pub event: &'static str,
}

impl Referral {
    pub fn new(identifier: &str, nhs: &str) -> Referral {
        Referral {
            identifier_system: "https://trust.example.nhs.uk/Id/referral".into(),
            identifier: identifier.into(),
            nhs: Some(nhs.into()),
            status: "active",
            with_reason: true,
            event: "servicerequest-request",
        }
    }

    pub fn patient(&self) -> Value {
        let mut p = json!({
            "resourceType": "Patient",
            "id": format!("pat-{}", self.identifier),
            "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
            "name": [{"family": "Example", "given": ["Test"]}],
            "telecom": [{"system": "phone", "value": "07700900000", "use": "mobile"}],
            "birthDate": "1990-01-01"
        });
        if let Some(n) = &self.nhs {
            p["identifier"] = json!([{"system": NHS_SYSTEM, "value": n,
                "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
                    "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland", "code": "number-present-and-verified"}]}}]}]);
        }
        p
    }

    /// The ServiceRequest, its subject given as `subject_ref`.
    pub fn service_request(&self, subject_ref: &str, requester_ref: &str) -> Value {
        let mut sr = json!({
            "resourceType": "ServiceRequest",
            "id": format!("sr-{}", self.identifier),
            "identifier": [{"system": self.identifier_system, "value": self.identifier}],
            "status": self.status,
            "intent": "order",
            "priority": "routine",
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "306206005", "display": "Referral to service"}]}],
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": IPS_CODE, "display": "Referral to Individual Placement and Support service"}]},
            "subject": {"reference": subject_ref},
            "requester": {"reference": requester_ref},
            "authoredOn": "2026-11-20T09:15:30.1234567+00:00"
        });
        if self.with_reason {
            sr["reasonCode"] = json!([{"text": "Wants support to return to paid work"}]);
        }
        sr
    }

    /// A BaRS message Bundle: MessageHeader first, references by `urn:uuid` fullUrl,
    /// lower-case `/id/` ODS system and `http://` DoS service id as seen in the wild.
    pub fn bars_bundle(&self) -> Value {
        let u = |s: &str| {
            format!(
                "urn:uuid:{}",
                uuid::Uuid::new_v5(
                    &uuid::Uuid::NAMESPACE_URL,
                    format!("{}-{s}", self.identifier).as_bytes()
                )
            )
        };
        let (hdr, sr, pat, org) = (u("hdr"), u("sr"), u("pat"), u("org"));
        json!({
            "resourceType": "Bundle",
            "id": uuid::Uuid::new_v4().to_string(),
            "meta": {"lastUpdated": "2026-11-20T09:15:31.0000001+01:00"},
            "type": "message",
            "timestamp": "2026-11-20T09:15:31.123+01:00",
            "entry": [
                {"fullUrl": hdr, "resource": {
                    "resourceType": "MessageHeader",
                    "id": uuid::Uuid::new_v4().to_string(),
                    "eventCoding": {"system": "https://fhir.nhs.uk/CodeSystem/message-events-bars", "code": self.event},
                    "reason": {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/message-reason-bars", "code": "new"}]},
                    "destination": [{"endpoint": "http://fhir.nhs.uk/Id/dos-service-id|2000072489", "receiver": {"reference": "urn:uuid:receiver"}}],
                    "sender": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A81001"}},
                    "source": {"endpoint": "https://gp.example.nhs.uk/bars"},
                    "focus": [{"reference": sr}]
                }},
                {"fullUrl": sr, "resource": self.service_request(&pat, &org)},
                {"fullUrl": pat, "resource": self.patient()},
                {"fullUrl": org, "resource": {"resourceType": "Organization", "id": "org-a81001",
                    "identifier": [{"system": "https://fhir.nhs.uk/id/ods-organization-code", "value": "A81001"}],
                    "name": "Example Surgery"}},
                {"fullUrl": "urn:uuid:episode-elsewhere", "resource": {"resourceType": "Practitioner", "id": "gp-1",
                    "name": [{"family": "Doctor"}]}}
            ]
        })
    }
}

/// A plain Appointment for a patient.
pub fn appointment(id: &str, nhs: &str, status: &str) -> Value {
    json!({
        "resourceType": "Appointment",
        "id": id,
        "status": status,
        "start": "2026-11-21T10:00:00Z",
        "end": "2026-11-21T11:00:00Z",
        "serviceType": [{"coding": [{"system": "http://snomed.info/sct", "code": "1082621000000104"}]}],
        "participant": [
            {"actor": {"reference": format!("Patient/p-{id}"), "identifier": {"system": NHS_SYSTEM, "value": nhs}}, "status": "accepted"}
        ]
    })
}

#[test]
fn generated_nhs_numbers_are_valid() {
    for seed in 0..50 {
        assert!(ips_bridge::domain::NhsNumber::parse(&nhs_number(seed)).is_ok());
    }
}
