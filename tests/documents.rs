//! IPS documents against RabbitMQ and the FHIR sandbox, with the real
//! binary: a VP gathered over three sessions (API and queue) and completed
//! is one Binary, one DocumentReference and one review Task in the record;
//! the GP's completed Task is one comment and one `document.commented`; a
//! revision supersedes the first version; a SIGKILL between the Binary and
//! the DocumentReference leaves one of each; an unanswered review is chased
//! exactly the configured number of times across restarts.
//! Effects are counted in the FHIR server and on the exchange.

mod common;

use base64::Engine as _;
use common::daemon::{Daemon, about, set_clock};
use common::effects::audit_count;
use common::fixtures::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const WAIT: Duration = Duration::from_secs(25);
/// Long enough for an effect that must not happen to have happened.
const QUIET: Duration = Duration::from_millis(2000);

const SESSIONS: [&[(&str, &str)]; 3] = [
    &[
        (
            "work-goal",
            "Work in a café kitchen, about 16 hours a week.",
        ),
        (
            "work-history",
            "Kitchen porter 2019–2021; left when unwell.",
        ),
    ],
    &[
        ("education-training", "Food hygiene level 2."),
        ("job-preferences", "Mornings; near the bus route."),
        ("strengths-skills", "Reliable, works well in a team."),
        ("barriers", "Gaps in CV; anxiety at interviews."),
    ],
    &[
        (
            "health-coping",
            "Walks help; takes medication in the evening.",
        ),
        (
            "benefits-finances",
            "Universal Credit; wants a better-off calculation.",
        ),
        (
            "disclosure",
            "Happy for the employer to know about anxiety.",
        ),
        (
            "support-wanted",
            "Help with CV & interview practice <b>please</b>.",
        ),
    ],
];

fn sections(list: &[(&str, &str)]) -> Value {
    json!(
        list.iter()
            .map(|(id, text)| json!({"id": id, "text": text}))
            .collect::<Vec<_>>()
    )
}

async fn open_case(d: &Daemon, nhs: &str) -> String {
    let referral = Referral::new(&format!("doc-{}", uid()), nhs).bars_bundle();
    d.send_applied(&referral).await;
    eventually(WAIT, "the case", || async {
        let (_, v) = d.api.get("/api/cases").await;
        v["cases"][0]["id"].as_str().map(str::to_owned)
    })
    .await
}

/// Every VP section in one session, then completed: the new document's id.
async fn publish_vp(d: &Daemon, case: &str, session: &str) -> String {
    let all: Vec<(&str, &str)> = SESSIONS.iter().flat_map(|s| s.iter().copied()).collect();
    let (status, v) = d
        .api
        .post(
            &format!("/api/cases/{case}/documents/vp/sections"),
            &json!({
            "session_date": session, "specialist": "Sam Specialist", "sections": sections(&all)}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = d
        .api
        .post(
            &format!("/api/cases/{case}/documents/vp/complete"),
            &json!({"specialist": "Sam Specialist"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    v["documents"][0]["id"]
        .as_str()
        .expect("the new document")
        .to_owned()
}

async fn review_tasks(sb: &Sandbox, nhs: &str) -> Vec<Value> {
    about(sb, "Task", nhs)
        .await
        .into_iter()
        .filter(|t| t["focus"]["type"] == "DocumentReference")
        .collect()
}

/// A VP over three sessions completed: one DocumentReference, one Binary
/// holding every section, one review Task; completing again adds nothing.
/// The GP completes the Task with a comment: one comment on the case and
/// one `document.commented`, however often the Task is read. A revision
/// makes a second version that replaces the first, which is superseded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vp_over_three_sessions_is_published_commented_on_and_revised() {
    let d = Daemon::start(&[]).await;
    let published = d.p.watch(&d.n.events, "document.published").await;
    let commented = d.p.watch(&d.n.events, "document.commented").await;
    let nhs = nhs_number(5100);
    let case = open_case(&d, &nhs).await;
    let base = format!("/api/cases/{case}/documents/vp");

    // Session 1 and 3 through the API, session 2 on the queue.
    let (status, v) = d
        .api
        .post(&format!("{base}/sections"), &json!({
            "session_date": "2026-11-02", "specialist": "Sam Specialist", "sections": sections(SESSIONS[0])}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["drafts"][0]["missing_required"],
        json!(["job-preferences", "support-wanted"])
    );
    d.send_applied(&json!({"type": "ips.document-sections.v1", "case_id": case, "kind": "vp",
        "session_date": "2026-11-09", "specialist": "Sam Specialist", "sections": sections(SESSIONS[1])})).await;
    // Completing too early names what is missing.
    let (status, v) = d
        .api
        .post(
            &format!("{base}/complete"),
            &json!({"specialist": "Sam Specialist"}),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["code"], "incomplete-document");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("support-wanted"),
        "{v}"
    );
    let (status, _) = d
        .api
        .post(&format!("{base}/sections"), &json!({
            "session_date": "2026-11-16", "specialist": "Sam Specialist", "sections": sections(SESSIONS[2])}))
        .await;
    assert_eq!(status, 200);

    let complete = json!({"specialist": "Sam Specialist", "patient_name": "Alex Example"});
    let (status, v) = d.api.post(&format!("{base}/complete"), &complete).await;
    assert_eq!(status, 201, "{v}");
    let doc_id = v["documents"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["documents"][0]["review"]["status"], "awaiting");
    let (status, _) = d.api.post(&format!("{base}/complete"), &complete).await;
    assert_eq!(status, 200, "the same draft again publishes nothing");

    let docs = eventually(WAIT, "the DocumentReference", || async {
        let r = about(&d.sb, "DocumentReference", &nhs).await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    let tasks = eventually(WAIT, "the review Task", || async {
        let t = review_tasks(&d.sb, &nhs).await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(about(&d.sb, "DocumentReference", &nhs).await.len(), 1);
    assert_eq!(review_tasks(&d.sb, &nhs).await.len(), 1);
    assert_eq!(d.sb.search_all("Binary").await.len(), 1);
    assert_eq!(
        d.p.drain(&published, 2, QUIET).await.len(),
        1,
        "one document.published"
    );
    let doc = &docs[0];
    assert_eq!(
        (doc["status"].as_str(), doc["docStatus"].as_str()),
        (Some("current"), Some("final"))
    );
    assert_eq!(doc["category"][0]["coding"][0]["code"], "734163000");
    assert_eq!(doc["custodian"]["identifier"]["value"], "RX4");
    assert!(
        doc["context"]["related"][0]["identifier"].is_object(),
        "the referral: {doc}"
    );
    let attachment = &doc["content"][0]["attachment"];
    assert_eq!(attachment["contentType"], "application/xhtml+xml");
    let binary = d.sb.get(attachment["url"].as_str().unwrap()).await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(binary["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(attachment["size"], json!(bytes.len()));
    let text = String::from_utf8(bytes).unwrap();
    for (_, t) in SESSIONS.iter().flat_map(|s| s.iter()) {
        let escaped = t
            .replace('&', "&#38;")
            .replace('<', "&#60;")
            .replace('>', "&#62;");
        assert!(
            text.contains(&escaped),
            "section text {t:?} missing from the document"
        );
    }
    let grouped = format!("{} {} {}", &nhs[..3], &nhs[3..6], &nhs[6..]);
    assert!(
        text.contains("What work you want"),
        "headings from the Questionnaire"
    );
    assert!(
        text.contains(&grouped) && text.contains("Alex Example"),
        "NHS number and name"
    );
    assert!(!text.contains("<b>"), "markup escaped");
    let task = &tasks[0];
    assert_eq!(task["status"], "requested");
    assert_eq!(
        task["focus"]["identifier"]["value"],
        format!("ips-document-{doc_id}")
    );

    // The GP completes the Task with a comment; the bridge reads it (twice).
    let mut done = task.clone();
    done["status"] = json!("completed");
    done["output"] = json!([{"type": {"text": "Comment"}, "valueString": "Agree with the plan; happy to support."}]);
    let stored = d.sb.put(&done).await;
    d.send_applied(&stored).await;
    d.send_applied(&stored).await;
    assert_eq!(
        d.p.drain(&commented, 2, WAIT).await.len(),
        1,
        "one document.commented"
    );
    assert!(d.p.drain(&commented, 1, QUIET).await.is_empty());
    let (_, v) = d.api.get(&format!("/api/cases/{case}")).await;
    let comments = &v["documents"]["documents"][0]["comments"];
    assert_eq!(comments.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(
        comments[0]["text"],
        "Agree with the plan; happy to support."
    );
    assert_eq!(
        v["documents"]["documents"][0]["review"]["status"],
        "commented"
    );
    assert_eq!(audit_count(&d.db, "document.commented").await, 1);

    // A revision: a second version replaces the first, which is superseded.
    let (status, _) = d
        .api
        .post(
            &format!("{base}/sections"),
            &json!({"session_date": "2026-11-30", "specialist": "Sam Specialist",
            "sections": [{"id": "work-goal", "text": "Café kitchen, 20 hours a week."}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = d.api.post(&format!("{base}/complete"), &complete).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["documents"][0]["version"], 2);
    let new_id = v["documents"][0]["id"].as_str().unwrap().to_owned();
    eventually(
        WAIT,
        "version 2 replacing version 1, which is superseded",
        || async {
            let docs = about(&d.sb, "DocumentReference", &nhs).await;
            let old = docs
                .iter()
                .find(|r| r["identifier"][0]["value"] == format!("ips-document-{doc_id}"))?;
            let new = docs
                .iter()
                .find(|r| r["identifier"][0]["value"] == format!("ips-document-{new_id}"))?;
            (docs.len() == 2
                && old["status"] == "superseded"
                && new["status"] == "current"
                && new["relatesTo"][0]["code"] == "replaces"
                && new["relatesTo"][0]["target"]["identifier"]["value"]
                    == format!("ips-document-{doc_id}"))
            .then_some(())
        },
    )
    .await;
    assert_eq!(d.sb.search_all("Binary").await.len(), 2);
    assert_eq!(review_tasks(&d.sb, &nhs).await.len(), 2);
    // Nothing of the person reached the log: no NHS number, no section or comment text.
    let logs = d.logs();
    for secret in [
        nhs.as_str(),
        "Kitchen porter",
        "happy to support",
        "Alex Example",
    ] {
        assert!(!logs.contains(secret), "{secret:?} in the daemon's log");
    }
}

/// Bad input gets a 4xx naming the problem, or the DLQ with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_document_input_is_refused_with_the_problem_named() {
    let d = Daemon::start(&[]).await;
    let nhs = nhs_number(5200);
    let case = open_case(&d, &nhs).await;
    let secret = "SECRET-TEXT";
    let (status, v) = d
        .api
        .post(&format!("/api/cases/{case}/documents/vp/sections"), &json!({
            "session_date": "2026-11-02", "specialist": "S",
            "sections": [{"id": "salary", "text": secret}, {"id": "work-goal", "text": "x".repeat(20_001)}]}))
        .await;
    assert_eq!(status, 422, "{v}");
    let problems = v["error"]["problems"].to_string();
    assert!(
        problems.contains("unknown section id") && problems.contains("the limit is 20000"),
        "{problems}"
    );
    assert!(!v.to_string().contains(secret), "the text is not echoed");
    let (status, _) = d
        .api
        .post(
            &format!("/api/cases/{case}/documents/cv/sections"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = d
        .api
        .post(
            "/api/cases/no-such-case/notes",
            &json!({"contact_date": "2026-11-30", "text": "t", "specialist": "S"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, v) = d
        .api
        .post(
            &format!("/api/cases/{case}/documents/iwsp/complete"),
            &json!({"specialist": "S"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("incomplete-document"))
    );

    // A QuestionnaireResponse for a questionnaire the bridge does not know: DLQ.
    let qr = json!({"resourceType": "QuestionnaireResponse", "status": "completed",
        "questionnaire": "https://elsewhere.example/Questionnaire/phq9",
        "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}},
        "authored": "2026-11-30T10:00:00Z", "author": {"display": "S"},
        "item": [{"linkId": "q1", "answer": [{"valueString": secret}]}]});
    d.send(&qr).await;
    let dead = d.p.drain(&d.n.dlq, 1, WAIT).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        header(&dead[0], "x-ips-error-code").as_deref(),
        Some("unknown-questionnaire")
    );
    let reason = header(&dead[0], "x-ips-error").unwrap_or_default();
    assert!(
        reason.contains("questionnaire") && !reason.contains(secret),
        "{reason}"
    );
}

/// A QuestionnaireResponse for the shipped VP Questionnaire (the forms
/// route) fills the draft of the patient's case and, completed, publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_questionnaire_response_publishes_the_vp() {
    let d = Daemon::start(&[]).await;
    let nhs = nhs_number(5300);
    let case = open_case(&d, &nhs).await;
    let q: Value = serde_json::from_str(include_str!(
        "../config/questionnaires/vocational-profile.json"
    ))
    .unwrap();
    let items: Vec<Value> = q["item"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| json!({"linkId": i["linkId"], "text": i["text"], "answer": [{"valueString": format!("Answer to {}", i["linkId"].as_str().unwrap())}]}))
        .collect();
    let qr = json!({"resourceType": "QuestionnaireResponse", "id": "qr-1", "status": "completed",
        "questionnaire": format!("{}|1.0.0", q["url"].as_str().unwrap()),
        "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}, "display": "Alex Example"},
        "authored": "2026-11-20T10:00:00Z", "author": {"display": "Sam Specialist"}, "item": items});
    d.send_applied(&qr).await;
    let (_, v) = d.api.get(&format!("/api/cases/{case}/documents")).await;
    assert_eq!(v["documents"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(
        v["drafts"][0]["sections"].as_array().map(Vec::len),
        Some(10)
    );
    eventually(WAIT, "one DocumentReference", || async {
        (about(&d.sb, "DocumentReference", &nhs).await.len() == 1).then_some(())
    })
    .await;
    // The same response read again publishes nothing more.
    d.send_applied(&qr).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(about(&d.sb, "DocumentReference", &nhs).await.len(), 1);
}

/// The daemon killed while the DocumentReference write is in flight (the
/// Binary already written): after restart, exactly one of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_binary_and_document_reference_leaves_one_of_each() {
    let mut d = Daemon::start(&[("IPS__OUTBOX__LEASE", "2s")]).await;
    let nhs = nhs_number(5400);
    let case = open_case(&d, &nhs).await;
    d.sb.fault(json!({"match": {"method": "POST", "pathPrefix": "DocumentReference"}, "delayMs": 4000, "count": 1}))
        .await;
    let (status, v) = d
        .api
        .post(&format!("/api/cases/{case}/notes"), &json!({"contact_date": "2026-11-30",
            "text": "Met at the job centre; CV started.", "specialist": "Sam Specialist", "note_id": "n-1"}))
        .await;
    assert_eq!(status, 201, "{v}");
    let doc_id = v["documents"][0]["id"].as_str().unwrap().to_owned();
    eventually(WAIT, "the Binary written", || async {
        let b = d.sb.get(&format!("Binary/ips-doc-{doc_id}")).await;
        (b["resourceType"] == "Binary").then_some(())
    })
    .await;
    // The DocumentReference POST is now held by the sandbox: kill the bridge mid-write.
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.sigkill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    d.restart().await;
    eventually(WAIT, "the outbox drained", || async {
        (common::effects::outbox_undelivered(&d.db).await == 0).then_some(())
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(about(&d.sb, "DocumentReference", &nhs).await.len(), 1);
    assert_eq!(d.sb.search_all("Binary").await.len(), 1);
    // The note posted again (same note_id): still one.
    let (status, _) = d
        .api
        .post(&format!("/api/cases/{case}/notes"), &json!({"contact_date": "2026-11-30",
            "text": "Met at the job centre; CV started.", "specialist": "Sam Specialist", "note_id": "n-1"}))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(QUIET).await;
    assert_eq!(about(&d.sb, "DocumentReference", &nhs).await.len(), 1);
}

/// An unanswered review is chased at its due date and once more a week
/// later (max_chases = 2), never a third time, across SIGKILLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_review_is_chased_exactly_the_configured_times_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("now");
    let t0 = OffsetDateTime::parse("2026-12-01T09:00:00Z", &Rfc3339).unwrap();
    set_clock(&clock, t0);
    let clock_setting = clock.display().to_string();
    let mut d = Daemon::start(&[
        ("IPS__CLOCK__FILE", clock_setting.as_str()),
        ("IPS__TIMERS__POLL_INTERVAL", "100ms"),
        ("IPS__DOCUMENTS__MAX_CHASES", "2"),
    ])
    .await;
    let overdue = d.p.watch(&d.n.events, "document.overdue").await;
    let nhs = nhs_number(5500);
    let case = open_case(&d, &nhs).await;
    publish_vp(&d, &case, "2026-12-01").await;
    eventually(WAIT, "the review Task", || async {
        (review_tasks(&d.sb, &nhs).await.len() == 1).then_some(())
    })
    .await;
    let due = t0 + time::Duration::days(14);
    let mut seen = std::collections::HashSet::new();

    for (at, expected) in [
        (due - time::Duration::minutes(1), 0),
        (due + time::Duration::seconds(1), 1),
        (
            due + time::Duration::days(7) + time::Duration::seconds(1),
            1,
        ),
        (due + time::Duration::days(40), 0),
    ] {
        d.sigkill();
        set_clock(&clock, at);
        d.restart().await;
        let got =
            d.p.drain(
                &overdue,
                expected.max(1),
                if expected > 0 { WAIT } else { QUIET },
            )
            .await;
        // Events are published at least once: one SIGKILLed between the
        // broker's confirm and the outbox settle is published again under
        // the same event id (its `message_id`). Count chases by event id.
        let new: Vec<String> = got
            .iter()
            .filter_map(|m| {
                m.delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string())
            })
            .filter(|id| seen.insert(id.clone()))
            .collect();
        assert_eq!(new.len(), expected, "chases at {at}");
    }
    assert_eq!(audit_count(&d.db, "document.overdue").await, 2);
    eventually(WAIT, "two reminders on the review Task", || async {
        let t = review_tasks(&d.sb, &nhs).await;
        let notes = t.first()?["note"].as_array().map(Vec::len).unwrap_or(0);
        (notes == 2).then_some(())
    })
    .await;
    let (_, v) = d.api.get(&format!("/api/cases/{case}/documents")).await;
    assert_eq!(v["documents"][0]["review"]["chases"], 2);
}

/// Comments read by polling the FHIR server: the review Task the GP
/// completed, then a Communication about the document. One comment and one
/// `document.commented` each, however often the poller re-reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_are_read_by_polling_the_review_task_and_a_communication() {
    let d = Daemon::start(&[
        ("IPS__POLLER__ENABLED", "true"),
        ("IPS__POLLER__RESOURCES", "Task,Communication"),
    ])
    .await;
    let commented = d.p.watch(&d.n.events, "document.commented").await;
    let nhs = nhs_number(5600);
    let case = open_case(&d, &nhs).await;
    let doc_id = publish_vp(&d, &case, "2026-11-02").await;
    let task = eventually(WAIT, "the review Task", || async {
        review_tasks(&d.sb, &nhs).await.into_iter().next()
    })
    .await;

    // The GP completes the review Task in the record, with a note.
    let mut done = task.clone();
    done["status"] = json!("completed");
    done["note"] = json!([{"text": "Seen and agreed. Please consider evening shifts too."}]);
    d.sb.put(&done).await;
    assert_eq!(d.p.drain(&commented, 1, WAIT).await.len(), 1);

    // The care coordinator replies about the document.
    d.sb.create(&json!({
        "resourceType": "Communication", "status": "completed",
        "about": [{"type": "DocumentReference", "identifier": {
            "system": "https://ips-bridge.nhs.example/Id/resource", "value": format!("ips-document-{doc_id}")}}],
        "sent": "2026-11-30T12:00:00Z",
        "sender": {"display": "Care coordinator, CMHT"},
        "payload": [{"contentString": "Thanks. Review at the next CPA."}]
    }))
    .await;
    assert_eq!(d.p.drain(&commented, 1, WAIT).await.len(), 1);
    // Several more poll rounds re-read both (overlap): nothing new.
    assert!(d.p.drain(&commented, 1, QUIET).await.is_empty());
    let (_, v) = d.api.get(&format!("/api/cases/{case}/documents")).await;
    let comments = v["documents"][0]["comments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut got: Vec<(String, String)> = comments
        .iter()
        .map(|c| {
            (
                c["source"].as_str().unwrap().to_owned(),
                c["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "communication".to_owned(),
                "Thanks. Review at the next CPA.".to_owned()
            ),
            (
                "review-task".to_owned(),
                "Seen and agreed. Please consider evening shifts too.".to_owned()
            ),
        ]
    );
    assert_eq!(v["documents"][0]["review"]["status"], "commented");
}
