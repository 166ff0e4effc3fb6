//! Referral intake end to end: FHIR polling and BaRS messages on the queue,
//! completeness, multiple referrals, withdrawal, decisions written back as
//! Tasks exactly once, and bad inputs dead-lettered with reasons. A crash in
//! the middle of a Task write, and metrics, need a process of their own:
//! tests/intake_process.rs.

mod common;

use common::effects::{referrals, tasks_for};
use common::fixtures::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const FHIR_JSON: &str = "application/fhir+json";
const WAIT: Duration = Duration::from_secs(20);

/// Creates Patient + ServiceRequest in the FHIR server the way a trust EPR would.
async fn create_in_fhir(sb: &Sandbox, r: &Referral) -> Value {
    let patient = sb.create(&r.patient()).await;
    let org = sb.create(&json!({"resourceType": "Organization",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RX4E2"}]})).await;
    sb.create(&r.service_request(
        &format!("Patient/{}", patient["id"].as_str().unwrap()),
        &format!("Organization/{}", org["id"].as_str().unwrap()),
    ))
    .await
}

#[tokio::test]
async fn polled_and_queued_referrals_become_cases_and_one_referral_across_channels() {
    let b = Bridge::start(&[
        ("IPS__POLLER__ENABLED", "true"),
        ("IPS__INTAKE__CMHT_ODS_CODES", "RX4E2"),
    ])
    .await;
    let (sb, api) = (&b.sb, &b.api);
    let both = Referral::new(&uid(), &nhs_number(11));
    create_in_fhir(sb, &both).await;
    let polled = eventually(WAIT, "polled referral", || async {
        let r = referrals(api, "awaiting-decision").await;
        (r.len() == 1).then_some(r)
    })
    .await;
    assert_eq!(polled[0]["channel"], "fhir-poll");
    assert_eq!(polled[0]["source"]["kind"], "community-mental-health-team");
    assert!(polled[0]["case_id"].is_string());

    // The same referral (same business identifier) as a BaRS message, and a new one.
    b.send(&both.bars_bundle()).await;
    let queued = Referral::new(&uid(), &nhs_number(12));
    b.send(&queued.bars_bundle()).await;
    let store = b.store();
    eventually(WAIT, "both queue messages applied", || async {
        (store.inbox_count("amqp").await.unwrap() == 2).then_some(())
    })
    .await;
    let all = referrals(api, "awaiting-decision").await;
    assert_eq!(
        all.len(),
        2,
        "the cross-channel duplicate is one referral: {all:?}"
    );
    // Fails if the queued copy were received as a referral of its own (a key
    // derived per channel): a third `referral.received` audit row.
    assert_eq!(effects::audit_count(&b.db, "referral.received").await, 2);
    let (_, cases) = api.get("/api/cases").await;
    assert_eq!(cases["cases"].as_array().unwrap().len(), 2);
    let from_queue = all
        .iter()
        .find(|r| r["channel"] == "amqp")
        .expect("queued referral");
    assert_eq!(
        from_queue["source"]["ods_code"], "A81001",
        "ODS system spelled /id/ is normalised"
    );
    // 7 fractional digits parse; the store keeps milliseconds.
    assert_eq!(from_queue["dates"]["authored"], "2026-11-20T09:15:30.123Z");
    b.stop().await;
}

/// 250 referrals over pages of 40, polled repeatedly with an overlap.
#[tokio::test]
async fn paging_ingests_250_referrals_once_each() {
    let b = Bridge::start(&[
        ("IPS__POLLER__ENABLED", "true"),
        ("IPS__POLLER__PAGE_SIZE", "40"),
    ])
    .await;
    let sb = &b.sb;
    let mut entries = vec![];
    for i in 0..250u64 {
        let r = Referral::new(&format!("burst-{i}"), &nhs_number(1000 + i));
        let pat = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        entries.push(json!({"fullUrl": pat, "resource": r.patient(), "request": {"method": "POST", "url": "Patient"}}));
        entries.push(json!({"resource": r.service_request(&pat, "Organization/none"), "request": {"method": "POST", "url": "ServiceRequest"}}));
    }
    let resp = reqwest::Client::new()
        .post(&sb.url)
        .header("content-type", FHIR_JSON)
        .json(&json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "transaction: {}", resp.status());
    let store = b.store();
    eventually(Duration::from_secs(60), "250 referrals", || async {
        let counts = store.referral_state_counts().await.unwrap();
        (counts.iter().map(|(_, n)| n).sum::<i64>() == 250).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // a few more polls re-read the overlap
    assert_eq!(
        store.referral_state_counts().await.unwrap(),
        vec![("awaiting-decision".to_string(), 250)]
    );
    // Inbox and referral rows are unique by key, so counting them cannot show a
    // re-read applied twice; the audit trail can. What makes this fail: a page
    // overlap or re-poll applied as a new version (a `referral.updated` row) or
    // as a new referral (a 251st `referral.received`).
    assert_eq!(
        effects::audit_count(&b.db, "referral.received").await,
        250,
        "each referral received once"
    );
    assert_eq!(
        effects::audit_count(&b.db, "referral.updated").await,
        0,
        "re-reads of the overlap change nothing"
    );
    b.stop().await;
}

#[tokio::test]
async fn incomplete_then_complete_multiple_referrals_and_cancel() {
    let b = Bridge::start(&[]).await;
    let (n, api, p) = (&b.n, &b.api, &b.p);
    let send = |msg: Value| {
        let body = serde_json::to_vec(&msg).unwrap();
        let (p, ex) = (&p, n.exchange.clone());
        async move {
            p.publish(&ex, "bars", &body, &uid(), FHIR_JSON)
                .await
                .unwrap()
        }
    };
    let nhs = nhs_number(21);
    let mut first = Referral::new(&uid(), &nhs);
    first.with_reason = false;
    send(first.bars_bundle()).await;
    let inc = eventually(WAIT, "incomplete referral", || async {
        let r = referrals(api, "incomplete").await;
        (r.len() == 1).then_some(r)
    })
    .await;
    assert!(
        inc[0]["incomplete_reasons"][0]
            .as_str()
            .unwrap()
            .contains("no reason for referral")
    );
    assert!(inc[0]["dates"]["completed"].is_null());
    first.with_reason = true;
    send(first.bars_bundle()).await;
    let done = eventually(WAIT, "completed referral", || async {
        let r = referrals(api, "awaiting-decision").await;
        (r.len() == 1).then_some(r)
    })
    .await;
    assert!(
        done[0]["dates"]["completed"].is_string(),
        "complete-referral date recorded"
    );

    let second = Referral::new(&uid(), &nhs);
    send(second.bars_bundle()).await;
    let case_id = done[0]["case_id"].as_str().unwrap().to_owned();
    let case = eventually(WAIT, "second referral on the case", || async {
        let (_, c) = api.get(&format!("/api/cases/{case_id}")).await;
        (c["referral_count"] == 2).then_some(c)
    })
    .await;
    assert_eq!(case["referrals"].as_array().unwrap().len(), 2);
    let (_, cases) = api.get("/api/cases").await;
    assert_eq!(
        cases["cases"].as_array().unwrap().len(),
        1,
        "one open case per patient"
    );
    assert!(
        case["referrals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["multiple"] == true)
    );

    let mut cancel = second.clone();
    cancel.status = "revoked";
    send(cancel.bars_bundle()).await;
    eventually(WAIT, "withdrawn", || async {
        (referrals(api, "withdrawn").await.len() == 1).then_some(())
    })
    .await;
    b.stop().await;
}

#[tokio::test]
async fn invalid_nhs_number_is_an_incomplete_referral_not_a_dead_letter() {
    let b = Bridge::start(&[]).await;
    let (n, api, p) = (&b.n, &b.api, &b.p);
    let bad = Referral::new(&uid(), "9912003889");
    b.send(&bad.bars_bundle()).await;
    let inc = eventually(WAIT, "incomplete referral", || async {
        let r = referrals(api, "incomplete").await;
        (r.len() == 1).then_some(r)
    })
    .await;
    let reason = inc[0]["incomplete_reasons"][0].as_str().unwrap();
    assert!(reason.contains("modulus-11"), "{reason}");
    assert!(
        inc[0]["case_id"].is_null(),
        "never matched or merged on an invalid number"
    );
    assert!(
        !serde_json::to_string(&inc).unwrap().contains("9912003889"),
        "the API never shows the number"
    );
    assert!(
        p.drain(&n.dlq, 0, Duration::from_millis(500))
            .await
            .is_empty()
    );
    b.stop().await;
}

#[tokio::test]
async fn bad_inputs_are_dead_lettered_with_named_reasons_and_the_queue_keeps_flowing() {
    let b = Bridge::start(&[]).await;
    let (n, p) = (&b.n, &b.p);
    let r = Referral::new(&uid(), &nhs_number(31));
    let mut no_subject = r.service_request("Patient/x", "Organization/y");
    no_subject.as_object_mut().unwrap().remove("subject");
    let mut no_header = r.bars_bundle();
    no_header["entry"].as_array_mut().unwrap().remove(0);
    let full = serde_json::to_string(&r.bars_bundle()).unwrap();
    let mut big = r.service_request("Patient/x", "Organization/y");
    big["note"] = json!([{"text": "x".repeat(5 << 20)}]);
    let dup_keys = br#"{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9912003888","value":"9000000009"}]}"#.to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "missing-required-element",
            serde_json::to_vec(&no_subject).unwrap(),
            "ServiceRequest.subject",
        ),
        (
            "missing-message-header",
            serde_json::to_vec(&no_header).unwrap(),
            "MessageHeader",
        ),
        (
            "invalid-json",
            full.as_bytes()[..full.len() / 2].to_vec(),
            "not valid JSON",
        ),
        (
            "message-too-large",
            serde_json::to_vec(&big).unwrap(),
            "limit",
        ),
        (
            "duplicate-json-key",
            dup_keys,
            "duplicate JSON key \"value\"",
        ),
        (
            "invalid-utf8",
            b"{\"resourceType\":\"Patient\",\"name\":\"\xff\xfe\"}".to_vec(),
            "UTF-8",
        ),
        (
            "stu3-resource",
            br#"{"resourceType":"ReferralRequest","status":"active"}"#.to_vec(),
            "STU3",
        ),
    ];
    for (i, (_, body, _)) in cases.iter().enumerate() {
        p.publish(&n.exchange, "bad", body, &format!("bad-{i}"), FHIR_JSON)
            .await
            .unwrap();
    }
    let good = Referral::new(&uid(), &nhs_number(32));
    p.publish(
        &n.exchange,
        "good",
        &serde_json::to_vec(&good.bars_bundle()).unwrap(),
        "good",
        FHIR_JSON,
    )
    .await
    .unwrap();
    let dead = p.drain(&n.dlq, cases.len(), WAIT).await;
    assert_eq!(dead.len(), cases.len());
    for (code, _, words) in &cases {
        let m = dead
            .iter()
            .find(|m| header(m, "x-ips-error-code").as_deref() == Some(code))
            .unwrap_or_else(|| panic!("no dead letter with code {code}"));
        let reason = header(m, "x-ips-error").unwrap();
        assert!(
            reason.contains(words),
            "{code}: {reason:?} should mention {words:?}"
        );
    }
    let store = b.store();
    eventually(WAIT, "the good message after the bad ones", || async {
        (store.inbox_count("amqp").await.unwrap() == 1).then_some(())
    })
    .await;
    b.stop().await;
}

#[tokio::test]
async fn rest_hook_notification_triggers_an_immediate_poll() {
    // A poll interval of an hour: only the notification can explain a prompt pick-up.
    let b = Bridge::start(&[
        ("IPS__POLLER__ENABLED", "true"),
        ("IPS__POLLER__INTERVAL", "1h"),
    ])
    .await;
    let (sb, api) = (&b.sb, &b.api);
    tokio::time::sleep(Duration::from_millis(500)).await; // the first (empty) poll is done
    create_in_fhir(sb, &Referral::new(&uid(), &nhs_number(51))).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/fhir/notify", b.app.http_addr);
    let denied = http.post(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let outcome: Value = denied.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(
        http.post(&url)
            .bearer_auth("hook-secret")
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    eventually(
        Duration::from_secs(5),
        "referral after the notification",
        || async { (referrals(api, "awaiting-decision").await.len() == 1).then_some(()) },
    )
    .await;
    b.stop().await;
}

#[tokio::test]
async fn api_errors_are_json_with_codes() {
    let b = Bridge::start(&[]).await;
    let api = &b.api;
    let anon = reqwest::get(format!("{}/api/cases", api.base))
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let (s, body) = api
        .post(
            "/api/referrals/nope/decision",
            &json!({"outcome": "accepted"}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("unknown-referral"))
    );
    let (s, body) = api
        .post("/api/referrals/nope/decision", &json!({"outcome": "maybe"}))
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (422, Some("invalid-decision"))
    );
    let (s, body) = api
        .post("/api/referrals/nope/decision", &json!({"verdict": "yes"}))
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("invalid-body"))
    );
    let (s, body) = api.get("/api/referrals?status=lost").await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("invalid-status"))
    );
    b.stop().await;
}

/// The whole intake path on the PostgreSQL store, as several replicas would run it.
#[tokio::test]
async fn intake_and_decision_on_postgresql() {
    let db = fresh_pg_database().await;
    let b = Bridge::start_with(Names::new(), Some(db), &[]).await;
    let (sb, api) = (&b.sb, &b.api);
    let nhs = nhs_number(71);
    for _ in 0..2 {
        let r = Referral::new(&uid(), &nhs);
        b.send(&r.bars_bundle()).await;
    }
    let rs = eventually(WAIT, "two referrals", || async {
        let r = referrals(api, "awaiting-decision").await;
        (r.len() == 2).then_some(r)
    })
    .await;
    assert_eq!(
        rs[0]["case_id"], rs[1]["case_id"],
        "one case for the patient"
    );
    let id = rs[0]["id"].as_str().unwrap();
    let (s, _) = api
        .post(
            &format!("/api/referrals/{id}/decision"),
            &json!({"outcome": "accepted"}),
        )
        .await;
    assert_eq!(s, 200);
    eventually(WAIT, "Task written", || async {
        (tasks_for(sb, id).await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(b.store().backend(), "postgres");
    b.stop().await;
}
