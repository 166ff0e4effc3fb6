//! GP Connect Send Document: the ITK3 message (FHIR STU3) that carries a
//! rendered document to a GP practice over MESH.
//!
//! Shapes follow NHS England's published specification and examples
//! (`nhsconnect/gpconnect-messaging`, pages/senddocument and its example
//! bundles, kept in `tests/fixtures/gpconnect/`):
//! - an `ITK-Message-Bundle-1` of type `message` whose `ITK-MessageHeader-2`
//!   carries the ITK message-handling extension (business and
//!   infrastructure acknowledgements requested), event `ITK007C`, the
//!   sender Organization, the bridge's mailbox as source endpoint, and a
//!   focus on the document Bundle (GPCM-SD-103);
//! - an `ITK-Document-Bundle-1` of type `document`: a
//!   `CareConnect-Composition-1` (custodian the sending organisation,
//!   subject the patient, author the specialist; GPCM-SD-104 to 107) whose
//!   section references the document as an `ITK-Attachment-Binary-1`
//!   (GPCM-SD-109, 110), and `relatesTo` `replaces` for a new version
//!   (GPCM-SD-131, 132); every resource with its `meta.profile` (GPCM-SD-108).
//!
//! Ids are UUID v5 of the document id and the resource's role, so building
//! the message again gives the same bytes.

use crate::domain::documents::DocumentKind;
use base64::Engine as _;
use serde_json::{Value, json};
use time::Date;
use uuid::Uuid;

const STU3: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/";
const CARE_CONNECT: &str = "https://fhir.hl7.org.uk/STU3/StructureDefinition/";
pub const MESSAGE_HANDLING: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-ITK-MessageHandling-2";
pub const MESSAGE_EVENT_SYSTEM: &str = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2";
pub const SEND_DOCUMENT_DEFINITION: &str =
    "https://fhir.nhs.uk/STU3/MessageDefinition/ITK-GPConnectSendDocument-MessageDefinition-1";
const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// The content type of the rendered document as it travels: XHTML, which
/// every HTML reader shows.
pub const CONTENT_TYPE: &str = "text/html";
const NS: Uuid = Uuid::from_u128(0x0b7e_3c55_8f0a_4d7e_b2a4_51c9_e1d3_7f62);

/// The published document as the message carries it; all borrowed from
/// the publication.
pub struct Document<'a> {
    pub document_id: &'a str,
    /// The document this version replaces, when it is a new version.
    pub replaces: Option<&'a str>,
    pub kind: DocumentKind,
    pub title: &'a str,
    pub xhtml: &'a str,
    pub nhs_number: &'a str,
    pub patient_name: Option<&'a str>,
    pub date_of_birth: Option<Date>,
    pub author_name: &'a str,
}

/// What the message says: the document, and who sends it to whom.
pub struct SendDocument<'a> {
    /// The MessageHeader id: what acknowledgements quote back.
    pub message_id: &'a str,
    pub document: &'a Document<'a>,
    pub service_name: &'a str,
    pub service_ods: &'a str,
    /// The patient's GP practice, when known (with MESH's patient-based
    /// routing the bridge may not know it).
    pub practice_ods: Option<&'a str>,
    pub from_mailbox: &'a str,
    pub identifier_system: &'a str,
    /// RFC 3339.
    pub created: &'a str,
}

fn id(doc: &str, role: &str) -> String {
    Uuid::new_v5(&NS, format!("{doc}:{role}").as_bytes()).to_string()
}

fn entry(resource: Value) -> Value {
    let id = resource["id"].as_str().unwrap_or_default().to_owned();
    json!({"fullUrl": format!("urn:uuid:{id}"), "resource": resource})
}

fn reference(id: &str) -> Value {
    json!({"reference": format!("urn:uuid:{id}")})
}

fn profile(url: String) -> Value {
    json!({"profile": [url]})
}

/// The whole ITK3 message Bundle.
pub fn message(s: &SendDocument<'_>) -> Value {
    let d = s.document.document_id;
    let sender_id = id(d, "sender-organization");
    let document_bundle = document_bundle(s);
    let header = json!({
        "resourceType": "MessageHeader",
        "id": s.message_id,
        "meta": profile(format!("{STU3}ITK-MessageHeader-2")),
        "extension": [{
            "url": MESSAGE_HANDLING,
            "extension": [
                {"url": "BusAckRequested", "valueBoolean": true},
                {"url": "InfAckRequested", "valueBoolean": true},
                {"url": "RecipientType", "valueCoding": recipient_type(s.document.kind)},
                {"url": "MessageDefinition", "valueReference": {"reference": SEND_DOCUMENT_DEFINITION}},
                {"url": "SenderReference", "valueString": format!("urn:uuid:{}", id(d, "composition"))},
                {"url": "LocalExtension", "valueString": "None"}
            ]
        }],
        "event": {
            "system": MESSAGE_EVENT_SYSTEM,
            "code": "ITK007C",
            "display": "ITK GP Connect Send Document"
        },
        "sender": reference(&sender_id),
        "timestamp": s.created,
        "source": {"endpoint": s.from_mailbox},
        "focus": reference(document_bundle["id"].as_str().unwrap_or_default())
    });
    let bundle_id = id(d, "message-bundle");
    json!({
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": profile(format!("{STU3}ITK-Message-Bundle-1")),
        "identifier": {"system": "https://tools.ietf.org/html/rfc4122", "value": bundle_id},
        "type": "message",
        "entry": [
            entry(header),
            entry(organization(&sender_id, s.service_ods, Some(s.service_name))),
            entry(document_bundle),
        ]
    })
}

/// VP and IWSP ask the GP to act (comment); a note is for information.
fn recipient_type(kind: DocumentKind) -> Value {
    let (code, display) = if kind.is_reviewed() {
        ("FA", "For Action")
    } else {
        ("FI", "For Information")
    };
    json!({
        "system": "https://fhir.nhs.uk/STU3/CodeSystem/ITK-RecipientType-1",
        "code": code,
        "display": display
    })
}

fn organization(id: &str, ods: &str, name: Option<&str>) -> Value {
    let mut o = json!({
        "resourceType": "Organization",
        "id": id,
        "meta": profile(format!("{CARE_CONNECT}CareConnect-Organization-1")),
        "identifier": [{"system": ODS, "value": ods}]
    });
    if let Some(n) = name {
        o["name"] = json!(n);
    }
    o
}

fn document_bundle(s: &SendDocument<'_>) -> Value {
    let d = s.document.document_id;
    let (composition_id, patient_id, author_id) = (
        id(d, "composition"),
        id(d, "patient"),
        id(d, "practitioner"),
    );
    let (custodian_id, practice_id, binary_id) = (
        id(d, "custodian-organization"),
        id(d, "practice-organization"),
        id(d, "binary"),
    );
    let bundle_id = id(d, "document-bundle");
    let date = s.created;
    let mut composition = json!({
        "resourceType": "Composition",
        "id": composition_id,
        "meta": profile(format!("{CARE_CONNECT}CareConnect-Composition-1")),
        "identifier": {"system": s.identifier_system, "value": format!("ips-document-{d}")},
        "status": "final",
        "type": {"text": s.document.kind.title()},
        "subject": reference(&patient_id),
        "date": date,
        "author": [reference(&author_id)],
        "title": s.document.title,
        "confidentiality": "N",
        "custodian": reference(&custodian_id),
        "section": [{
            "title": s.document.title,
            "entry": [reference(&binary_id)]
        }]
    });
    if let Some(old) = s.document.replaces {
        composition["relatesTo"] = json!([{
            "code": "replaces",
            "targetIdentifier": {"system": s.identifier_system, "value": format!("ips-document-{old}")}
        }]);
    }
    let mut patient = json!({
        "resourceType": "Patient",
        "id": patient_id,
        "meta": profile(format!("{CARE_CONNECT}CareConnect-Patient-1")),
        "identifier": [{
            "extension": [{
                "url": "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-NHSNumberVerificationStatus-1",
                "valueCodeableConcept": {"coding": [{
                    "system": "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1",
                    // The bridge takes the number from the referral; it does not trace it.
                    "code": "02",
                    "display": "Number present but not traced"
                }]}
            }],
            "system": NHS_NUMBER,
            "value": s.document.nhs_number
        }],
    });
    if s.practice_ods.is_some() {
        patient["generalPractitioner"] = json!([reference(&practice_id)]);
    }
    if let Some(name) = s.document.patient_name.filter(|n| !n.trim().is_empty()) {
        patient["name"] = json!([{"use": "official", "text": name.trim()}]);
    }
    if let Some(dob) = s.document.date_of_birth {
        patient["birthDate"] = json!(format!(
            "{:04}-{:02}-{:02}",
            dob.year(),
            u8::from(dob.month()),
            dob.day()
        ));
    }
    let practitioner = json!({
        "resourceType": "Practitioner",
        "id": author_id,
        "meta": profile(format!("{CARE_CONNECT}CareConnect-Practitioner-1")),
        "name": [{"use": "official", "text": s.document.author_name}]
    });
    let binary = json!({
        "resourceType": "Binary",
        "id": binary_id,
        "meta": profile(format!("{STU3}ITK-Attachment-Binary-1")),
        "contentType": CONTENT_TYPE,
        "content": base64::engine::general_purpose::STANDARD.encode(s.document.xhtml.as_bytes())
    });
    let mut entries = vec![
        entry(composition),
        entry(patient),
        entry(organization(
            &custodian_id,
            s.service_ods,
            Some(s.service_name),
        )),
    ];
    if let Some(ods) = s.practice_ods {
        entries.push(entry(organization(&practice_id, ods, None)));
    }
    entries.push(entry(practitioner));
    entries.push(entry(binary));
    json!({
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {
            "profile": [format!("{STU3}ITK-Document-Bundle-1")],
            "lastUpdated": date
        },
        "identifier": {"system": "https://tools.ietf.org/html/rfc4122", "value": bundle_id},
        "type": "document",
        "entry": entries
    })
}

/// MESH's automated routing to the patient's registered practice:
/// `GPPROVIDER_{NHS number}_{date of birth ddMMyyyy}_{surname}`, as the
/// published GP Connect control-file example gives it. `None` without a
/// date of birth or a name.
pub fn patient_address(
    nhs_number: &str,
    date_of_birth: Option<Date>,
    name: Option<&str>,
) -> Option<String> {
    let dob = date_of_birth?;
    // The bridge keeps a name as one string: its last word is taken as the surname.
    let surname = name?.split_whitespace().last()?;
    if !surname
        .chars()
        .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
    {
        return None;
    }
    Some(format!(
        "GPPROVIDER_{nhs_number}_{:02}{:02}{:04}_{surname}",
        dob.day(),
        u8::from(dob.month()),
        dob.year()
    ))
}

/// How the message travels. ITK3 receivers SHALL take XML; JSON is there
/// for a receiver that asks for it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Format {
    Xml,
    Json,
}

impl Format {
    /// The message as text, its content type and a file name extension.
    pub fn encode(self, message: &Value) -> (String, &'static str, &'static str) {
        match self {
            Format::Xml => (xml::to_xml(message), "application/fhir+xml", "xml"),
            Format::Json => (message.to_string(), "application/fhir+json", "json"),
        }
    }
}

mod xml;

#[cfg(test)]
mod tests;
