//! The bridge with MESH on, a case for a patient registered at a practice
//! routed to MESH, what the case API says of its deliveries, and the
//! practice's side (published ITK3 responses, reading the XML): shared by the MESH tests.
#![allow(dead_code)]

use super::daemon::Daemon;
use super::fixtures::Referral;
use super::mesh::{DEFAULT_SHARED_KEY, X26ABC1, X26ABC2};
use super::{eventually, uid};
use serde_json::{Value, json};
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(25);
pub const PRACTICE: &str = "A81001";
pub const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// The bridge on mailbox X26ABC1, the practice A81001 on X26ABC2, every
/// document routed to MESH. `extra` overrides.
pub async fn bridge(mesh_url: &str, extra: &[(&str, &str)]) -> Daemon {
    let mut all = vec![
        ("IPS__MESH__ENABLED", "true"),
        ("IPS__MESH__URL", mesh_url),
        ("IPS__MESH__MAILBOX", X26ABC1.id),
        ("IPS__MESH__PASSWORD", "password"),
        ("IPS__MESH__SHARED_KEY", DEFAULT_SHARED_KEY),
        ("IPS__MESH__POLL_INTERVAL", "300ms"),
        ("IPS__MESH__MAILBOXES__A81001", X26ABC2.id),
        ("IPS__ROUTING__DEFAULT", "mesh"),
        ("IPS__OUTBOX__RETRY__MESH__MIN_DELAY", "200ms"),
        ("IPS__OUTBOX__RETRY__MESH__MAX_DELAY", "1s"),
    ];
    all.extend_from_slice(extra);
    Daemon::start(&all).await
}

/// A referral whose patient is registered at `PRACTICE` (by the ODS
/// identifier on `Patient.generalPractitioner`, as UK Core allows).
pub async fn open_case(d: &Daemon, nhs: &str) -> String {
    open_case_at(d, nhs, PRACTICE).await
}

pub async fn open_case_at(d: &Daemon, nhs: &str, practice: &str) -> String {
    let mut bundle = Referral::new(&format!("mesh-{}", uid()), nhs).bars_bundle();
    for e in bundle["entry"].as_array_mut().unwrap() {
        if e["resource"]["resourceType"] == "Patient" {
            e["resource"]["generalPractitioner"] =
                json!([{"type": "Organization", "identifier": {"system": ODS, "value": practice}}]);
        }
    }
    d.send_applied(&bundle).await;
    eventually(WAIT, "the case", || async {
        let (_, v) = d.api.get("/api/cases").await;
        v["cases"][0]["id"].as_str().map(str::to_owned)
    })
    .await
}

pub async fn post_note(d: &Daemon, case: &str, note_id: &str) -> String {
    let (status, v) = d
        .api
        .post(
            &format!("/api/cases/{case}/notes"),
            &json!({"contact_date": "2026-11-30", "text": "Met at the job centre; CV started.",
                    "specialist": "Sam Specialist", "note_id": note_id}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    v["documents"][0]["id"].as_str().unwrap().to_owned()
}

/// The case's first delivery once its send's outbox status is `status`
/// (`done`, `failed`).
pub async fn send_in(d: &Daemon, case: &str, status: &str) -> Value {
    eventually(WAIT, &format!("the send {status}"), || async {
        let v = delivery(d, case).await;
        (v["send"]["status"] == status).then_some(v)
    })
    .await
}

pub async fn delivery(d: &Daemon, case: &str) -> Value {
    let (_, v) = d.api.get(&format!("/api/cases/{case}/documents")).await;
    v["deliveries"][0].clone()
}

/// A VP, every section in one session, completed: the document id.
pub async fn complete_vp(d: &Daemon, case: &str) -> String {
    let sections = [
        (
            "work-goal",
            "Work in a café kitchen, about 16 hours a week.",
        ),
        ("work-history", "Kitchen porter 2019–2021."),
        ("education-training", "Food hygiene level 2."),
        ("job-preferences", "Mornings."),
        ("strengths-skills", "Reliable."),
        ("barriers", "Gaps in CV."),
        ("health-coping", "Walks help."),
        ("benefits-finances", "Universal Credit."),
        ("disclosure", "Happy to disclose."),
        ("support-wanted", "CV & interview practice."),
    ];
    let list: Vec<Value> = sections
        .iter()
        .map(|(id, text)| json!({"id": id, "text": text}))
        .collect();
    let (status, v) = d
        .api
        .post(
            &format!("/api/cases/{case}/documents/vp/sections"),
            &json!({"session_date": "2026-11-30", "specialist": "Sam Specialist", "sections": list}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = d
        .api
        .post(
            &format!("/api/cases/{case}/documents/vp/complete"),
            &json!({"specialist": "Sam Specialist", "patient_name": "Jo Example", "date_of_birth": "1990-01-01"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    v["documents"][0]["id"].as_str().unwrap().to_owned()
}

pub async fn delivery_in(d: &Daemon, case: &str, state: &str) -> Value {
    eventually(WAIT, &format!("the delivery {state}"), || async {
        let v = delivery(d, case).await;
        (v["state"] == state).then_some(v)
    })
    .await
}

/// An ITK3 response as NHS England publishes it, answering `message_id`.
pub fn itk_response(code: &str, message_id: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/gpconnect/itk3-responses/itk3-response-{code}.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("<response>").unwrap();
    let id_at = start + text[start..].find("<identifier value=\"").unwrap() + 19;
    let end = id_at + text[id_at..].find('"').unwrap();
    format!("{}{message_id}{}", &text[..id_at], &text[end..]).into_bytes()
}

/// The `value` attributes at `path` below every `resource` element, in
/// document order (FHIR XML: primitives are `value` attributes).
pub fn values(x: &roxmltree::Document<'_>, resource: &str, path: &[&str]) -> Vec<String> {
    let mut nodes: Vec<roxmltree::Node<'_, '_>> = x
        .descendants()
        .filter(|n| n.has_tag_name(resource))
        .collect();
    for p in path {
        nodes = nodes
            .iter()
            .flat_map(|n| n.children().filter(|c| c.has_tag_name(*p)))
            .collect();
    }
    nodes
        .iter()
        .filter_map(|n| n.attribute("value").map(str::to_owned))
        .collect()
}
