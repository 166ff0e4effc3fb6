//! NHS England's published BaRS example messages (tests/fixtures/bars, with
//! the IPS referral code patched in), fed over the queue as a sender would,
//! each checked for the effect its `eventCoding` and focus status mean.
//!
//! In these examples the ServiceRequest and Appointment have no `identifier`
//! and, in requests, no `id`: only the entry's `urn:uuid:` fullUrl names them,
//! and the receiver's response carries that UUID back as the `id`.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
/// The ServiceRequest UUID shared by REFREQ01, SERVREQ01/02 and REFRESP01.
const SR_UUID: &str = "236bb75d-90ef-461f-b71e-fde7f899802c";

fn example(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/bars/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Publishes the examples in order, each with a message id of its own, and
/// waits for each to be applied or dead-lettered before sending the next (the
/// order is the story). Fails with the DLQ reasons if any was dead-lettered.
async fn feed(b: &Bridge, names: &[&str]) {
    feed_with(b, names, |body| body).await
}

/// As [`feed`], each example changed by `patch` first.
async fn feed_with(b: &Bridge, names: &[&str], patch: impl Fn(Vec<u8>) -> Vec<u8>) {
    let store = b.store();
    let before = store.inbox_count("amqp").await.unwrap();
    for (i, name) in names.iter().enumerate() {
        b.p.publish(
            &b.n.exchange,
            "bars",
            &patch(example(name)),
            &format!("{name}-{}", uid()),
            FHIR_JSON,
        )
        .await
        .unwrap();
        let want = before + i as i64 + 1;
        eventually(
            WAIT,
            &format!("{name} applied or dead-lettered"),
            || async {
                let applied = store.inbox_count("amqp").await.ok()?;
                let dead = i64::from(b.queue_depth(&b.n.dlq).await);
                (applied + dead >= want).then_some(())
            },
        )
        .await;
    }
    let dead = b.p.drain(&b.n.dlq, 0, Duration::from_millis(300)).await;
    let reasons: Vec<_> = dead
        .iter()
        .map(|m| (header(m, "x-ips-error-code"), header(m, "x-ips-error")))
        .collect();
    assert!(reasons.is_empty(), "{names:?}: dead-lettered {reasons:?}");
}

/// Every referral the bridge holds, whatever its state.
async fn referral_count(b: &Bridge) -> i64 {
    b.store()
        .referral_state_counts()
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum()
}

/// The one referral in `state`, read through the API.
async fn the_referral_in(b: &Bridge, state: &str) -> Value {
    let (code, list) = b.api.get(&format!("/api/referrals?status={state}")).await;
    assert_eq!(code, 200, "{list}");
    let rows = list["referrals"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "one referral {state}: {list}");
    let id = rows[0]["id"].as_str().unwrap();
    let (code, one) = b.api.get(&format!("/api/referrals/{id}")).await;
    assert_eq!(code, 200, "{one}");
    assert_eq!(one["state"], state, "{one}");
    one
}

/// The referral created by REFREQ01, in whatever intake state its data gives it.
async fn requested(b: &Bridge) -> String {
    assert_eq!(referral_count(b).await, 1, "REFREQ01 is one referral");
    let (_, a) = b.api.get("/api/referrals?status=awaiting-decision").await;
    let (_, i) = b.api.get("/api/referrals?status=incomplete").await;
    let rows: Vec<Value> = [a, i]
        .iter()
        .flat_map(|l| l["referrals"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(rows.len(), 1, "REFREQ01 waits for a decision: {rows:?}");
    let id = rows[0]["id"].as_str().unwrap().to_owned();
    let stored = b.store().referral_get(&id).await.unwrap().unwrap();
    assert!(
        stored.referral_key.contains(SR_UUID),
        "keyed by the fullUrl UUID: {}",
        stored.referral_key
    );
    assert_eq!(stored.channel, "amqp");
    id
}

async fn events(b: &Bridge, q: &str, at_least: usize) -> Vec<String> {
    b.p.drain(q, at_least, Duration::from_secs(5))
        .await
        .iter()
        .map(|m| m.delivery.routing_key.to_string())
        .collect()
}

#[tokio::test]
async fn referral_request_then_revoked_update_is_one_withdrawn_referral() {
    let b = Bridge::start(&[]).await;
    let watch = b.p.watch(&b.n.events, "referral.#").await;
    feed(&b, &["REFREQ01"]).await;
    let id = requested(&b).await;
    feed(&b, &["SERVREQ01"]).await;
    let withdrawn = the_referral_in(&b, "withdrawn").await;
    assert_eq!(withdrawn["id"], id.as_str(), "the update meets the request");
    assert_eq!(withdrawn["fhir_status"], "revoked");
    assert_eq!(
        referral_count(&b).await,
        1,
        "a request and its update are one referral"
    );
    let mut seen = events(&b, &watch, 2).await;
    seen.sort();
    assert_eq!(seen, ["referral.received", "referral.withdrawn"]);
    b.stop().await;
}

#[tokio::test]
async fn delete_entered_in_error_withdraws_the_referral() {
    let b = Bridge::start(&[]).await;
    feed(&b, &["REFREQ01"]).await;
    let id = requested(&b).await;
    feed(&b, &["SERVREQ02"]).await;
    let withdrawn = the_referral_in(&b, "withdrawn").await;
    assert_eq!(withdrawn["id"], id.as_str());
    assert_eq!(withdrawn["fhir_status"], "entered-in-error");
    assert_eq!(referral_count(&b).await, 1);
    b.stop().await;
}

#[tokio::test]
async fn dna_feedback_closes_the_referral_it_answers() {
    let b = Bridge::start(&[]).await;
    let watch = b.p.watch(&b.n.events, "referral.#").await;
    feed(&b, &["REFREQ01"]).await;
    let id = requested(&b).await;
    // Sent by the receiver back to the requester, with the UUID as the ServiceRequest id.
    feed(&b, &["REFRESP01"]).await;
    let closed = the_referral_in(&b, "closed-by-referrer-after-dna").await;
    assert_eq!(closed["id"], id.as_str(), "DNA feedback meets the request");
    assert_eq!(referral_count(&b).await, 1);
    // Issue 12, defect 4: a DNA closure has its own event, never `referral.withdrawn`
    // (which the old code published for it). Waits for a third event that must not come.
    let mut seen = events(&b, &watch, 3).await;
    seen.sort();
    assert_eq!(seen, ["referral.closed-after-dna", "referral.received"]);
    b.stop().await;
}

/// Issue 13: the referrer's DNA closure is a closure by DNA rule, the fidelity
/// breach the service must see: recorded on the case, published once as
/// `outreach.closed-by-rule`, and the IPS case stays open for outreach.
/// The no-show Appointment in the feedback is recorded as a DNA.
#[tokio::test]
async fn dna_feedback_is_a_closure_by_rule_and_the_case_stays_open() {
    let b = Bridge::start(&[]).await;
    let watch = b.p.watch(&b.n.events, "outreach.closed-by-rule").await;
    // The examples' NHS number (3478526985) fails its check digit, so the
    // referral would have no case to keep open: a valid one is patched in.
    let valid = |body: Vec<u8>| {
        String::from_utf8(body)
            .unwrap()
            .replace("3478526985", "9912003888")
            .into_bytes()
    };
    feed_with(&b, &["REFREQ01"], valid).await;
    requested(&b).await;
    feed_with(&b, &["REFRESP01"], valid).await;
    let closed = the_referral_in(&b, "closed-by-referrer-after-dna").await;
    let case_id = closed["case_id"]
        .as_str()
        .expect("the referral has a case")
        .to_owned();
    let got = b.p.drain(&watch, 1, WAIT).await;
    assert_eq!(got.len(), 1, "one outreach.closed-by-rule");
    let body: Value = serde_json::from_slice(&got[0].delivery.data).unwrap();
    assert_eq!(body["cause"], "bars-dna-feedback");
    assert_eq!(body["case_id"], case_id.as_str());
    let (_, case) = b.api.get(&format!("/api/cases/{case_id}")).await;
    assert_eq!(case["status"], "open");
    let closures = case["outreach"]["closures_by_rule"].as_array().unwrap();
    assert_eq!(closures.len(), 1);
    assert_eq!(closures[0]["cause"], "bars-dna-feedback");
    assert_eq!(
        case["outreach"]["appointments"][0]["attendance"],
        "did-not-attend"
    );
    // The same feedback again (a new message id): nothing more.
    feed_with(&b, &["REFRESP01"], valid).await;
    assert!(
        b.p.drain(&watch, 1, Duration::from_millis(1500))
            .await
            .is_empty()
    );
    b.stop().await;
}

#[tokio::test]
async fn booking_request_new_then_cancelled_is_one_cancelled_appointment() {
    let b = Bridge::start(&[]).await;
    let key = "Appointment/aca94bdb-2e38-4399-9ece-2ba083ce65b5@https://fhir.nhs.uk/Id/dos-service-id%7C2222222222";
    let stored = |b: &Bridge| {
        let store = b.store();
        async move {
            let mut tx = store.begin().await.unwrap();
            let a = tx.appointment_by_key(key).await.unwrap();
            tx.commit().await.unwrap();
            a
        }
    };
    feed(&b, &["BOOKREQ01"]).await;
    let booked = stored(&b)
        .await
        .expect("booking stored under its fullUrl UUID");
    assert_eq!(booked.status, "booked");
    feed(&b, &["BOOKREQ02"]).await;
    let cancelled = stored(&b).await.expect("still stored");
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(
        cancelled.id, booked.id,
        "the cancellation meets the booking"
    );
    assert_eq!(referral_count(&b).await, 0, "a booking is not a referral");
    b.stop().await;
}
