//! Assertive outreach against RabbitMQ and the FHIR sandbox, with the real
//! binary: a DNA brings a Flag, a Task and one `outreach.flagged`; repeats
//! and reversed replays change nothing; attendance resolves it; a date rule
//! flags at its lead time across a SIGKILL; attempts become Communications.
//! Effects are counted in the FHIR server and on the exchange.

mod common;

use common::daemon::{Daemon, about, set_clock};
use common::effects::audit_count;
use common::fixtures::*;
use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const WAIT: Duration = Duration::from_secs(25);
/// Long enough for an effect that must not happen to have happened.
const QUIET: Duration = Duration::from_millis(2000);

const TWO_DNAS: &str = r#"
[[rule]]
id = "primary-care-2-dnas"
name = "Primary care: discharged after 2 consecutive DNAs"
kind = "consecutive_dna"
threshold = 2
warn_before = { dnas = 1 }
"#;

const NO_CONTACT: &str = r#"
[[rule]]
id = "no-contact-28-days"
name = "No contact for 28 days"
kind = "no_contact_for"
days = 28
warn_before = { days = 7 }
"#;

fn rules_file(dir: &Path, text: &str) -> String {
    let p = dir.join("discharge-rules.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn appt(id: &str, nhs: &str, status: &str, start: &str) -> Value {
    let mut a = appointment(id, nhs, status);
    a["start"] = json!(start);
    a["end"] = Value::Null;
    a.as_object_mut().unwrap().remove("end");
    a
}

async fn case_id(d: &Daemon) -> String {
    eventually(WAIT, "the case", || async {
        let (_, v) = d.api.get("/api/cases").await;
        v["cases"][0]["id"].as_str().map(str::to_owned)
    })
    .await
}

/// The "2 consecutive DNAs" rule, end to end. Would fail if the flag were
/// raised twice (by the repeat, by a reversed replay, by a restart of the
/// outbox), were not raised at the first DNA, or attendance did not resolve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_dna_flags_once_and_attendance_resolves_it() {
    first_dna_flags_once_and_attendance_resolves_it(None).await;
}

/// The same on PostgreSQL (the outreach tables' partial unique index and
/// upserts on the other back-end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_dna_flags_once_and_attendance_resolves_it_on_postgresql() {
    first_dna_flags_once_and_attendance_resolves_it(Some(fresh_pg_database().await)).await;
}

async fn first_dna_flags_once_and_attendance_resolves_it(db: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), TWO_DNAS);
    let d = Daemon::start_with(
        Names::new(),
        db,
        &[("IPS__OUTREACH__RULES_FILE", rules.as_str())],
    )
    .await;
    let flagged = d.p.watch(&d.n.events, "outreach.flagged").await;
    let resolved = d.p.watch(&d.n.events, "outreach.resolved").await;
    let nhs = nhs_number(4100);
    let referral = Referral::new(&format!("aor-{}", uid()), &nhs).bars_bundle();
    d.send_applied(&referral).await;
    let case = case_id(&d).await;

    let dna = appt(
        &format!("dna-{}", uid()),
        &nhs,
        "noshow",
        "2026-11-20T10:00:00Z",
    );
    d.send_applied(&dna).await;
    let events = d.p.drain(&flagged, 1, WAIT).await;
    assert_eq!(events.len(), 1, "one outreach.flagged");
    let body: Value = serde_json::from_slice(&events[0].delivery.data).unwrap();
    assert_eq!(body["case_id"], json!(case));
    assert_eq!(body["rule_id"], "primary-care-2-dnas");
    assert_eq!(body["fires"]["type"], "at-next-dna");
    assert!(!String::from_utf8_lossy(&events[0].delivery.data).contains(&nhs));
    let flags = eventually(WAIT, "the Flag in the record", || async {
        let f = about(&d.sb, "Flag", &nhs).await;
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0]["status"], "active");
    let tasks = eventually(WAIT, "the Task in the record", || async {
        let t = about(&d.sb, "Task", &nhs).await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["status"], "requested");

    // The same DNA again (a new message id), then the whole story replayed in reverse.
    d.send_applied(&dna).await;
    d.send_applied(&dna).await;
    d.send_applied(&referral).await;
    tokio::time::sleep(QUIET).await;
    assert!(
        d.p.drain(&flagged, 1, QUIET).await.is_empty(),
        "flagged again"
    );
    assert_eq!(about(&d.sb, "Flag", &nhs).await.len(), 1);
    assert_eq!(about(&d.sb, "Task", &nhs).await.len(), 1);
    assert_eq!(audit_count(&d.db, "outreach.flagged").await, 1);

    let (_, board) = d.api.get("/api/outreach").await;
    assert_eq!(board["count"], 1);
    assert_eq!(board["flags"][0]["rule"]["id"], "primary-care-2-dnas");
    assert_eq!(
        board["flags"][0]["appointments"][0]["attendance"],
        "did-not-attend"
    );
    assert!(
        !board.to_string().contains(&nhs),
        "no NHS number on the board"
    );

    // Attended: resolved in the record and on the exchange.
    d.send_applied(&appt(
        &format!("seen-{}", uid()),
        &nhs,
        "fulfilled",
        "2026-11-27T10:00:00Z",
    ))
    .await;
    assert_eq!(d.p.drain(&resolved, 1, WAIT).await.len(), 1);
    eventually(WAIT, "Flag inactive, Task completed", || async {
        let f = about(&d.sb, "Flag", &nhs).await;
        let t = about(&d.sb, "Task", &nhs).await;
        (f.len() == 1
            && f[0]["status"] == "inactive"
            && f[0]["period"]["end"].is_string()
            && t.len() == 1
            && t[0]["status"] == "completed")
            .then_some(())
    })
    .await;
    let (_, v) = d.api.get(&format!("/api/cases/{case}")).await;
    assert_eq!(v["status"], "open", "the bridge never closes a case");
    assert_eq!(v["outreach"]["episodes"][0]["resolution"], "attended");
    let (_, board) = d.api.get("/api/outreach").await;
    assert_eq!(board["count"], 0);
}

/// A date rule ("no contact for 28 days", warn 7 days before) as a durable
/// timer: killed before the lead time, restarted after it: exactly one Flag
/// and one event; restarted again: still one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_rule_flags_at_its_lead_time_once_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), NO_CONTACT);
    let clock = dir.path().join("now");
    let t0 = OffsetDateTime::parse("2026-12-01T09:00:00Z", &Rfc3339).unwrap();
    set_clock(&clock, t0);
    let clock_setting = clock.display().to_string();
    let mut d = Daemon::start(&[
        ("IPS__OUTREACH__RULES_FILE", rules.as_str()),
        ("IPS__CLOCK__FILE", clock_setting.as_str()),
        ("IPS__TIMERS__POLL_INTERVAL", "100ms"),
    ])
    .await;
    let flagged = d.p.watch(&d.n.events, "outreach.flagged").await;
    let nhs = nhs_number(4200);
    d.send_applied(&Referral::new(&format!("nc-{}", uid()), &nhs).bars_bundle())
        .await;
    case_id(&d).await;
    let warn_at = t0 + time::Duration::days(21);

    d.sigkill();
    set_clock(&clock, warn_at - time::Duration::minutes(1));
    d.restart().await;
    assert!(
        d.p.drain(&flagged, 1, QUIET).await.is_empty(),
        "flagged early"
    );

    d.sigkill();
    set_clock(&clock, warn_at + time::Duration::seconds(1));
    d.restart().await;
    let events = d.p.drain(&flagged, 1, WAIT).await;
    assert_eq!(events.len(), 1);
    let body: Value = serde_json::from_slice(&events[0].delivery.data).unwrap();
    assert_eq!(body["fires"]["type"], "on");
    eventually(WAIT, "one Flag", || async {
        (about(&d.sb, "Flag", &nhs).await.len() == 1).then_some(())
    })
    .await;

    d.sigkill();
    set_clock(&clock, warn_at + time::Duration::days(2));
    d.restart().await;
    assert!(
        d.p.drain(&flagged, 1, QUIET).await.is_empty(),
        "flagged twice"
    );
    assert_eq!(about(&d.sb, "Flag", &nhs).await.len(), 1);
    assert_eq!(audit_count(&d.db, "outreach.flagged").await, 1);
}

/// An attempt through the API and one through the queue each become one
/// `Communication` in the record, about the active Flag, and appear on the
/// case; a repeat of either is the same attempt. A successful contact
/// resolves the flag. A hostile note is refused with a clear 422 (too long)
/// or stored and written as plain text (markup, quotes), and the bridge keeps
/// running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outreach_attempts_become_communications_and_contact_resolves_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), TWO_DNAS);
    let d = Daemon::start(&[("IPS__OUTREACH__RULES_FILE", rules.as_str())]).await;
    let resolved = d.p.watch(&d.n.events, "outreach.resolved").await;
    let nhs = nhs_number(4300);
    d.send_applied(&Referral::new(&format!("att-{}", uid()), &nhs).bars_bundle())
        .await;
    let case = case_id(&d).await;
    d.send_applied(&appt(
        &format!("dna-{}", uid()),
        &nhs,
        "noshow",
        "2026-11-20T10:00:00Z",
    ))
    .await;
    eventually(WAIT, "the Flag", || async {
        (about(&d.sb, "Flag", &nhs).await.len() == 1).then_some(())
    })
    .await;

    let hostile = "<script>alert('x')</script> \"quoted\" & <b>bold</b>\nsecond line";
    let attempt = json!({
        "method": "phone", "outcome": "no-answer", "attempted_at": "2026-11-21T09:30:00Z",
        "specialist": "ES Jane Smith", "note": hostile,
    });
    let path = format!("/api/cases/{case}/outreach-attempts");
    let (s, v) = d.api.post(&path, &attempt).await;
    assert_eq!(s, 201, "{v}");
    let (s, _) = d.api.post(&path, &attempt).await;
    assert_eq!(s, 200, "a repeat is the same attempt");

    // Refused, each with a clear JSON error, nothing stored.
    let mut long = attempt.clone();
    long["note"] = json!("A".repeat(100 * 1024));
    let (s, v) = d.api.post(&path, &long).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["problems"][0]["field"], "note");
    let mut ctrl = attempt.clone();
    ctrl["note"] = json!("bell \u{7} escape \u{1b}[31m");
    assert_eq!(d.api.post(&path, &ctrl).await.0, 422);
    let mut bad = attempt.clone();
    bad["method"] = json!("carrier-pigeon");
    let (s, v) = d.api.post(&path, &bad).await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["message"].is_string());
    let (s, _) = d
        .api
        .post("/api/cases/no-such-case/outreach-attempts", &attempt)
        .await;
    assert_eq!(s, 404);

    // The same over the queue (an ES event), reaching the person this time.
    let event = json!({
        "type": "ips.outreach-attempt.v1", "case_id": case, "attempt_id": "att-q-1",
        "method": "home-visit", "outcome": "contacted", "attempted_at": "2026-11-22T14:00:00Z",
        "specialist": "ES Jane Smith",
    });
    d.send_applied(&event).await;
    d.send_applied(&event).await;

    let comms = eventually(WAIT, "two Communications", || async {
        let c = about(&d.sb, "Communication", &nhs).await;
        (c.len() >= 2).then_some(c)
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(about(&d.sb, "Communication", &nhs).await.len(), 2);
    let phone = comms
        .iter()
        .find(|c| c["medium"][0]["coding"][0]["code"] == "3")
        .expect("the phone attempt, coded as UK Core PreferredContactMethod 3");
    assert_eq!(phone["status"], "completed");
    assert_eq!(
        phone["payload"][0]["contentString"], hostile,
        "the note as plain text"
    );
    assert_eq!(phone["reasonCode"][0]["coding"][0]["code"], "185337004");
    assert_eq!(phone["about"][0]["type"], "Flag");

    let (_, v) = d.api.get(&format!("/api/cases/{case}")).await;
    let attempts = v["outreach"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{v}");
    assert_eq!(attempts[0]["note"], hostile);
    // Contact resolved the flag.
    assert_eq!(d.p.drain(&resolved, 1, WAIT).await.len(), 1);
    assert_eq!(v["outreach"]["episodes"][0]["resolution"], "contacted");
    eventually(WAIT, "Flag inactive", || async {
        let f = about(&d.sb, "Flag", &nhs).await;
        (f.len() == 1 && f[0]["status"] == "inactive").then_some(())
    })
    .await;
    let metrics = d.metrics().await;
    assert!(metrics.contains("ips_outreach_attempts_total"), "{metrics}");

    // Closing takes a person and a reason.
    let (s, v) = d
        .api
        .post(
            &format!("/api/cases/{case}/close"),
            &json!({"reason": " ", "closed_by": "ES"}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, _) = d
        .api
        .post(
            &format!("/api/cases/{case}/close"),
            &json!({"reason": "Found work and chose to end support", "closed_by": "ES Jane Smith"}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = d.api.get(&format!("/api/cases/{case}")).await;
    assert_eq!(v["status"], "closed");
    assert_eq!(
        d.api.post(&path, &attempt).await.0,
        409,
        "no attempts on a closed case"
    );
}

fn episode_of_care(id: &str, nhs: &str) -> Value {
    json!({
        "resourceType": "EpisodeOfCare", "id": id, "status": "finished",
        "patient": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}},
        "period": {"start": "2026-09-01T00:00:00Z", "end": "2026-11-25T00:00:00Z"},
    })
}

/// A clinical team finishing its EpisodeOfCare right after a DNA is a
/// closure by DNA rule (recorded once, published once, case kept open); after
/// an attended appointment it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_episode_of_care_finished_after_a_dna_is_a_closure_by_rule() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), TWO_DNAS);
    let d = Daemon::start(&[("IPS__OUTREACH__RULES_FILE", rules.as_str())]).await;
    let closed = d.p.watch(&d.n.events, "outreach.closed-by-rule").await;
    let (missed, seen) = (nhs_number(4400), nhs_number(4401));
    for nhs in [&missed, &seen] {
        d.send_applied(&Referral::new(&format!("eoc-{}", uid()), nhs).bars_bundle())
            .await;
    }
    d.send_applied(&appt(
        &format!("m-{}", uid()),
        &missed,
        "noshow",
        "2026-11-20T10:00:00Z",
    ))
    .await;
    d.send_applied(&appt(
        &format!("s-{}", uid()),
        &seen,
        "fulfilled",
        "2026-11-20T10:00:00Z",
    ))
    .await;
    let eoc = episode_of_care(&format!("eoc-{}", uid()), &missed);
    d.send_applied(&eoc).await;
    d.send_applied(&eoc).await;
    d.send_applied(&episode_of_care(&format!("eoc-{}", uid()), &seen))
        .await;
    let got = d.p.drain(&closed, 2, QUIET).await;
    assert_eq!(
        got.len(),
        1,
        "one closure by rule, for the case with the DNA"
    );
    let body: Value = serde_json::from_slice(&got[0].delivery.data).unwrap();
    assert_eq!(body["cause"], "episode-finished-after-dna");
    let case = body["case_id"].as_str().unwrap().to_owned();
    let (_, v) = d.api.get(&format!("/api/cases/{case}")).await;
    assert_eq!(v["status"], "open");
    assert_eq!(
        v["outreach"]["closures_by_rule"].as_array().unwrap().len(),
        1
    );
}
