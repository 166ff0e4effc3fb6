//! Appointment facts for the discharge rules, DNA feedback, and outreach
//! attempt events.

use super::*;
use crate::domain::nhs_number::NHS_NUMBER_SYSTEM;
use crate::domain::outreach::{AttemptMethod, AttemptOutcome, Attendance, CancelledBy};
use crate::domain::referral::ClosureCause;
use crate::engine::command::OUTREACH_ATTEMPT_EVENT;
use serde_json::json;

fn rules() -> IntakeRules {
    IntakeRules {
        snomed_codes: vec!["1082611000000105".into()],
        performer_references: vec![],
        bars_service_ids: vec!["111111111".into(), "2222222222".into()],
        sources: SourceRules::default(),
        documents: Default::default(),
    }
}

fn go_bytes(body: &[u8], limits: &Limits) -> Result<Command, Rejection> {
    classify(body, &Envelope::default(), limits, &rules())
}

fn go(v: &Value) -> Result<Command, Rejection> {
    go_bytes(&serde_json::to_vec(v).unwrap(), &Limits::default())
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/bars/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn appointment_of(c: Command) -> AppointmentInput {
    match c {
        Command::Appointment(a) => *a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn booking_examples_carry_attendance_and_service() {
    let booked = appointment_of(go(&fixture("BOOKREQ01")).unwrap());
    assert_eq!(booked.attendance, Attendance::Pending);
    assert_eq!(booked.cancelled_by, None);
    assert!(booked.nhs.valid().is_some(), "Patient resolved by fullUrl");
    assert_eq!(
        booked.start.map(|s| s.unix_timestamp()),
        Some(1_634_041_830)
    );
    let fact = booked.fact();
    assert_eq!(fact.key, booked.key);
    assert_eq!(fact.attendance, Attendance::Pending);
    // BOOKREQ01 gives a serviceCategory only: nothing a rule matches on.
    assert_eq!(fact.service, Default::default());

    let cancelled = appointment_of(go(&fixture("BOOKREQ02")).unwrap());
    assert_eq!(cancelled.attendance, Attendance::Cancelled);
    assert_eq!(cancelled.key, booked.key);
    assert_eq!(
        cancelled.cancelled_by, None,
        "no cancelationReason: unknown"
    );
}

#[test]
fn cancellation_reason_and_service_context() {
    let mut b = fixture("BOOKREQ02");
    let appt = &mut b["entry"][1]["resource"];
    assert_eq!(appt["resourceType"], "Appointment");
    appt["serviceType"] =
        json!([{"coding": [{"system": "http://snomed.info/sct", "code": "722162001"}]}]);
    appt["specialty"] = json!([{"coding": [{"system": "http://snomed.info/sct", "code": "394587001"}, {"code": "394587001"}]}]);
    appt["participant"].as_array_mut().unwrap().extend([
        json!({"actor": {"reference": "urn:uuid:org"}, "status": "accepted"}),
        json!({"actor": {"type": "Organization", "identifier": {"system": "http://fhir.nhs.uk/id/ods-organization-code", "value": "RX4"}}, "status": "accepted"}),
        json!({"actor": {"reference": "Location/loc-1"}, "status": "accepted"}),
        json!({"actor": {"reference": "urn:uuid:loc"}, "status": "accepted"}),
    ]);
    let entries = b["entry"].as_array_mut().unwrap();
    entries.push(json!({"fullUrl": "urn:uuid:org", "resource": {"resourceType": "Organization",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "G82080"}]}}));
    entries.push(
        json!({"fullUrl": "urn:uuid:loc", "resource": {"resourceType": "Location",
        "identifier": [{"system": "https://trust.example/sites", "value": "SITE-9"}]}}),
    );
    for (code, who) in [
        ("pat-mv", Some(CancelledBy::Patient)),
        ("pat", Some(CancelledBy::Patient)),
        ("prov-pers", Some(CancelledBy::Provider)),
        ("maint", Some(CancelledBy::Provider)),
        ("oth-weath", Some(CancelledBy::Other)),
    ] {
        b["entry"][1]["resource"]["cancelationReason"] = json!({"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason", "code": code}]});
        let a = appointment_of(go(&b).unwrap());
        assert_eq!(a.cancelled_by, who, "{code}");
        assert_eq!(a.service.service_types, ["722162001"]);
        assert_eq!(a.service.specialties, ["394587001"]);
        assert_eq!(a.service.organisations, ["G82080", "RX4"]);
        assert_eq!(a.service.locations, ["Location/loc-1", "SITE-9"]);
        assert!(a.nhs.valid().is_some(), "the Patient is still found");
    }
    b["entry"][1]["resource"]["cancelationReason"] = json!({"text": "rang to say"});
    assert_eq!(
        appointment_of(go(&b).unwrap()).cancelled_by,
        Some(CancelledBy::Other)
    );
    // A reason on an appointment that is not cancelled is not a cancellation.
    b["entry"][1]["resource"]["status"] = json!("booked");
    assert_eq!(appointment_of(go(&b).unwrap()).cancelled_by, None);
}

#[test]
fn dna_feedback_carries_its_appointment_keyed_like_the_booking() {
    let booked = appointment_of(go(&fixture("BOOKREQ01")).unwrap());
    // REFRESP01 as an answer about the appointment BOOKREQ01 booked: the
    // published examples use unrelated UUIDs, so give it the booking's.
    let mut resp = fixture("REFRESP01");
    let entries = resp["entry"].as_array_mut().unwrap();
    let i = entries
        .iter()
        .position(|e| e["resource"]["resourceType"] == "Appointment")
        .unwrap();
    entries[i]["fullUrl"] = json!("urn:uuid:aca94bdb-2e38-4399-9ece-2ba083ce65b5");
    entries[i]["resource"]["id"] = json!("aca94bdb-2e38-4399-9ece-2ba083ce65b5");
    let Command::Referral(r) = go(&resp).unwrap() else {
        panic!()
    };
    assert_eq!(r.version.closure, Some(ClosureCause::DidNotAttend));
    let fed = r
        .feedback_appointment
        .expect("DNA feedback carries its Appointment");
    assert_eq!(fed.key, booked.key);
    assert_eq!(fed.attendance, Attendance::DidNotAttend);
    // The example's NHS number fails the check digit, but it was found.
    assert!(!matches!(
        fed.nhs,
        crate::domain::referral::NhsField::Missing
    ));

    // As published (its own UUID) it is still read, scoped to the requester.
    let Command::Referral(r) = go(&fixture("REFRESP01")).unwrap() else {
        panic!()
    };
    let key = r.feedback_appointment.unwrap().key;
    assert!(
        key.ends_with("@https://fhir.nhs.uk/Id/dos-service-id%7C2222222222"),
        "{key}"
    );

    // Other referral messages carry none.
    let Command::Referral(r) = go(&fixture("REFREQ01")).unwrap() else {
        panic!()
    };
    assert!(r.feedback_appointment.is_none());
}

fn attempt() -> Value {
    json!({"type": OUTREACH_ATTEMPT_EVENT, "case_id": "case-1", "attempt_id": "a-1",
        "method": "home-visit", "outcome": "no-answer",
        "attempted_at": "2026-11-20T09:15:00+00:00",
        "note": "Knocked <b>twice</b>; \"no reply\".\nWill try again.", "specialist": "ES-042"})
}

#[test]
fn outreach_attempt_events_are_accepted() {
    let Command::OutreachAttempt(a) = go(&attempt()).unwrap() else {
        panic!()
    };
    assert_eq!(a.method, AttemptMethod::HomeVisit);
    assert_eq!(a.outcome, AttemptOutcome::NoAnswer);
    assert_eq!(a.attempted_at.unix_timestamp(), 1_795_166_100);
    assert!(
        a.note.as_deref().unwrap().contains("<b>twice</b>"),
        "markup is kept as text"
    );
    let mut minimal = attempt();
    for k in ["type", "attempt_id", "note"] {
        minimal.as_object_mut().unwrap().remove(k);
    }
    let env = Envelope {
        content_type: Some("application/json"),
        message_type: Some(OUTREACH_ATTEMPT_EVENT),
    };
    let body = serde_json::to_vec(&minimal).unwrap();
    assert!(matches!(
        classify(&body, &env, &Limits::default(), &rules()).unwrap(),
        Command::OutreachAttempt(_)
    ));
}

const SECRET: &str = "SECRETNOTE";

fn refused(v: &Value) -> Rejection {
    let e = go(v).unwrap_err();
    assert!(!e.reason.contains(SECRET), "{}", e.reason);
    e
}

#[test]
fn outreach_attempt_events_are_refused_by_field_never_quoting_the_note() {
    let mut unknown = attempt();
    unknown["note"] = json!(SECRET);
    unknown["extra"] = json!(SECRET);
    let e = refused(&unknown);
    assert_eq!(e.code, RejectCode::InvalidEvent);

    let mut bad_method = attempt();
    bad_method["note"] = json!(SECRET);
    bad_method["method"] = json!(SECRET);
    let e = refused(&bad_method);
    assert_eq!(e.code, RejectCode::InvalidEvent);
    assert!(e.reason.contains("method"), "{}", e.reason);

    let mut long = attempt();
    long["note"] = json!(SECRET.repeat(10_000));
    let e = refused(&long);
    assert_eq!(e.code, RejectCode::InvalidEvent);
    assert!(
        e.reason.contains("note") && e.reason.contains("4000"),
        "{}",
        e.reason
    );

    let mut ctl = attempt();
    ctl["note"] = json!(format!("{SECRET}\u{0007}\u{001b}[2J"));
    ctl["specialist"] = json!(format!("ES\n{SECRET}"));
    ctl["case_id"] = json!("");
    let e = refused(&ctl);
    for field in ["note", "specialist", "case_id"] {
        assert!(e.reason.contains(field), "{field}: {}", e.reason);
    }

    let mut long_id = attempt();
    long_id["attempt_id"] = json!("x".repeat(129));
    assert!(refused(&long_id).reason.contains("attempt_id"));

    let mut bad_time = attempt();
    bad_time["attempted_at"] = json!("yesterday");
    assert!(refused(&bad_time).reason.contains("attempted_at"));
}

#[test]
fn a_note_past_the_json_string_limit_is_refused_by_the_guard() {
    let mut huge = attempt();
    huge["note"] = json!(SECRET.repeat(120_000));
    let limits = Limits::default();
    let body = serde_json::to_vec(&huge).unwrap();
    assert!(body.len() > limits.max_string_bytes && body.len() < limits.max_message_bytes);
    let e = go_bytes(&body, &limits).unwrap_err();
    assert_eq!(e.code, RejectCode::StringTooLong);
    assert!(e.reason.contains("note") && !e.reason.contains(SECRET));
}

#[test]
fn validation_lists_every_problem_for_the_api() {
    let Command::OutreachAttempt(a) = go(&attempt()).unwrap() else {
        panic!()
    };
    let mut a = *a;
    assert!(a.validate().is_ok());
    a.specialist = " ".into();
    a.case_id = "c\u{0000}".into();
    a.note = Some("n".repeat(4001));
    let e = a.validate().unwrap_err();
    let fields: Vec<&str> = e.problems.iter().map(|(f, _)| *f).collect();
    assert_eq!(fields, ["case_id", "specialist", "note"]);
    a.note = Some("ok\r\n\ttabbed".into());
    a.specialist = "ES".into();
    a.case_id = "c".into();
    assert!(a.validate().is_ok());
}

#[test]
fn appointment_with_nhs_number_on_the_participant_only() {
    let a = json!({"resourceType": "Appointment", "id": "a2", "status": "noshow",
        "participant": [{"actor": {"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": "9000000009"}}, "status": "accepted"}]});
    let a = appointment_of(go(&a).unwrap());
    assert_eq!(a.attendance, Attendance::DidNotAttend);
    assert!(a.nhs.valid().is_some());
}
