use super::elements::content_hash;
use super::*;
use crate::domain::nhs_number::NHS_NUMBER_SYSTEM;
use crate::domain::referral::ClosureCause;
use crate::engine::command::DECISION_EVENT;
use crate::engine::command::MessageOrigin as BarsOrigin;
use serde_json::json;

fn rules() -> IntakeRules {
    IntakeRules {
        snomed_codes: vec!["1082611000000105".into()],
        performer_references: vec!["HealthcareService/ips".into()],
        bars_service_ids: vec!["2000072489".into()],
        sources: SourceRules::default(),
        documents: Default::default(),
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
    let Command::Referral(r) = go(bars("servicerequest-response", s, vec![appt])).unwrap() else {
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

/// An Appointment that ends before it starts is refused; one that ends
/// when it starts, or has no end, is read.
#[test]
fn an_appointment_ending_before_it_starts_is_rejected() {
    let appt = |end: Option<&str>| {
        let mut a = json!({
            "resourceType": "Appointment", "id": "a1", "status": "booked",
            "start": "2026-11-21T11:00:00+01:00",
            "participant": [{"actor": {"reference": "Patient/p1",
                "identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9912003888"}}}]
        });
        if let Some(end) = end {
            a["end"] = json!(end);
        }
        a
    };
    let e = go(appt(Some("2026-11-21T09:59:59Z"))).unwrap_err();
    assert_eq!(e.code.as_str(), "invalid-element");
    assert_eq!(e.reason, "Appointment.end is before Appointment.start");
    // The same instant in another offset is not "before".
    assert!(matches!(
        go(appt(Some("2026-11-21T10:00:00Z"))),
        Ok(Command::Appointment(_))
    ));
    assert!(matches!(go(appt(None)), Ok(Command::Appointment(_))));
}

/// Reasons are logged and sent in dead-letter headers: text the sender
/// chose (an event type, a BaRS event code) is never echoed in them.
#[test]
fn rejection_reasons_do_not_echo_the_senders_codes() {
    let e = go(json!({"type": "ips.Jane-Smith-9912003888.v1", "case_id": "c1"})).unwrap_err();
    assert_eq!(e.code.as_str(), "unknown-event-type");
    assert!(!e.reason.contains("Jane"), "{}", e.reason);
    let b = bars("booking-Jane-Smith-9912003888", sr(), vec![]);
    let e = go(b).unwrap_err();
    assert_eq!(e.code.as_str(), "missing-focus");
    assert!(!e.reason.contains("Jane"), "{}", e.reason);
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
    // The patient's registered practice, from Patient.generalPractitioner
    // (an Organization in the bundle, ODS system spelt with `/id/`): where
    // documents for the GP are routed.
    assert_eq!(req.version.gp_practice.as_deref(), Some("G82080"));
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
