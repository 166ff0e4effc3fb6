//! Decisions on referrals: concurrent deciders, what the referrer is told
//! (a Task that names the referral, the BaRS answer), and tracing a referral
//! back to the sender's record. Real RabbitMQ, PostgreSQL and FHIR sandbox.

mod common;

use common::fixtures::*;
use common::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(25);

async fn awaiting(api: &Api, n: usize) -> Vec<Value> {
    eventually(WAIT, "referrals awaiting a decision", || async {
        let (_, v) = api.get("/api/referrals?status=awaiting-decision").await;
        let list = v["referrals"].as_array().cloned().unwrap_or_default();
        (list.len() == n).then_some(list)
    })
    .await
}

async fn tasks_for(sb: &Sandbox, referral_id: &str) -> Vec<Value> {
    sb.search_all(&format!(
        "Task?identifier=https://ips-bridge.nhs.example/Id/resource%7Creferral-decision-{referral_id}"
    ))
    .await
}

fn bodies(msgs: &[lapin::message::BasicGetMessage]) -> Vec<Value> {
    msgs.iter()
        .map(|m| serde_json::from_slice(&m.delivery.data).unwrap())
        .collect()
}

/// Defect 1. Two API calls decide `accepted` and `declined` on the same
/// referral at the same moment, on PostgreSQL, for 12 referrals. Each must
/// end with one decision, one Task that matches it, one decision event, and
/// exactly one caller told 409. Before the fix (no row lock) the second
/// update overwrote the first while the Task (one outbox key for both)
/// carried the first outcome: a mismatch and two events.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_on_postgresql_end_with_one_decision_one_task_one_event() {
    const N: usize = 12;
    let db = fresh_pg_database().await;
    let b = Bridge::start_with(Names::new(), Some(db), &[]).await;
    let (sb, n, api, p) = (&b.sb, &b.n, &b.api, &b.p);
    let events = p.watch(&n.events, "referral.*").await;
    for i in 0..N {
        let r = Referral::new(&format!("race-{i}-{}", uid()), &nhs_number(700 + i as u64));
        b.send(&r.bars_bundle()).await;
    }
    let ids: Vec<String> = awaiting(api, N)
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();

    let decide = |id: String, body: Value| {
        let api = Api::new(b.app.http_addr);
        async move {
            api.post(&format!("/api/referrals/{id}/decision"), &body)
                .await
        }
    };
    let mut statuses = vec![];
    for id in &ids {
        let (a, d) = tokio::join!(
            decide(id.clone(), json!({"outcome": "accepted"})),
            decide(
                id.clone(),
                json!({"outcome": "declined", "decline_reason": "other"})
            )
        );
        statuses.push((a.0, d.0));
    }
    for (i, (a, d)) in statuses.iter().enumerate() {
        let mut pair = [*a, *d];
        pair.sort();
        assert_eq!(pair, [200, 409], "referral {i}: one winner, one 409");
    }
    let decided = eventually(WAIT, "every Task written", || async {
        let mut out = vec![];
        for id in &ids {
            let t = tasks_for(sb, id).await;
            if t.len() != 1 {
                return None;
            }
            out.push(t[0].clone());
        }
        Some(out)
    })
    .await;
    let msgs = p.drain(&events, 2 * N, WAIT).await;
    // A moment for anything extra to arrive.
    let extra = p.drain(&events, 1, Duration::from_millis(800)).await;
    let all: Vec<Value> = bodies(&msgs).into_iter().chain(bodies(&extra)).collect();
    for (id, task) in ids.iter().zip(&decided) {
        let (_, r) = api.get(&format!("/api/referrals/{id}")).await;
        let stored = r["decision"].as_str().unwrap().to_owned();
        assert_eq!(
            task["businessStatus"]["coding"][0]["code"], stored,
            "the Task says what the store says for {id}"
        );
        let decisions: Vec<&Value> = all
            .iter()
            .filter(|e| {
                e["referral_id"] == json!(id)
                    && matches!(
                        e["type"].as_str(),
                        Some("referral.accepted" | "referral.declined")
                    )
            })
            .collect();
        assert_eq!(decisions.len(), 1, "one decision event for {id}");
        assert_eq!(decisions[0]["outcome"], json!(stored));
    }
    b.stop().await;
}

/// Defects 10 and 7. Referrals that came over the queue without a
/// ServiceRequest identifier (as in the BaRS guide's examples) each get a
/// Task whose focus names that referral, and a BaRS `servicerequest-response`
/// answering the request message. The API shows how to find the referral in
/// the sender's system. Before the fix 300 such referrals gave 300 Tasks with
/// one identical focus `{"type": "ServiceRequest"}`.
#[tokio::test]
async fn a_referral_without_identifier_is_named_in_its_task_and_answered_the_bars_way() {
    let b = Bridge::start(&[]).await;
    let (sb, n, api, p) = (&b.sb, &b.n, &b.api, &b.p);
    let answers = p.watch(&n.events, "bars.#").await;
    let mut requests = vec![];
    for i in 0..3 {
        let r = Referral::new(&format!("noid-{i}-{}", uid()), &nhs_number(800 + i));
        let mut bundle = r.bars_bundle();
        let sr = &mut bundle["entry"][1]["resource"];
        sr.as_object_mut().unwrap().remove("identifier");
        sr.as_object_mut().unwrap().remove("id");
        let sr_url = bundle["entry"][1]["fullUrl"].as_str().unwrap().to_owned();
        requests.push((bundle["id"].as_str().unwrap().to_owned(), sr_url));
        b.send(&bundle).await;
    }
    let listed = awaiting(api, 3).await;
    let mut focus_seen = HashSet::new();
    for r in &listed {
        let id = r["id"].as_str().unwrap();
        let key = r["source_record"]["key"].as_str().unwrap();
        assert!(
            key.starts_with("ServiceRequest/"),
            "the sender's id is the key: {key}"
        );
        let (s, _) = api
            .post(
                &format!("/api/referrals/{id}/decision"),
                &json!({"outcome": "accepted"}),
            )
            .await;
        assert_eq!(s, 200);
    }
    for r in &listed {
        let id = r["id"].as_str().unwrap();
        let task = eventually(WAIT, "the Task", || async {
            tasks_for(sb, id).await.into_iter().next()
        })
        .await;
        let focus = &task["focus"];
        let value = focus["identifier"]["value"].as_str().unwrap_or_default();
        assert!(
            value.starts_with("urn:uuid:"),
            "the focus names the ServiceRequest by the UUID its sender gave it: {focus}"
        );
        assert_eq!(focus["identifier"]["system"], "urn:ietf:rfc:3986");
        assert!(
            requests.iter().any(|(_, url)| url == value),
            "{value} is one of the requests"
        );
        assert!(
            focus_seen.insert(focus.to_string()),
            "focus repeated: {focus}"
        );
    }
    let msgs = p.drain(&answers, 3, WAIT).await;
    assert_eq!(msgs.len(), 3, "one BaRS answer per decided referral");
    for m in &msgs {
        let bundle: Value = serde_json::from_slice(&m.delivery.data).unwrap();
        let header = &bundle["entry"][0]["resource"];
        assert_eq!(header["eventCoding"]["code"], "servicerequest-response");
        let answered = header["response"]["identifier"].as_str().unwrap();
        let (_, sr_url) = requests
            .iter()
            .find(|(bundle_id, _)| bundle_id == answered)
            .expect("the answer names a request message");
        assert_eq!(
            format!(
                "urn:uuid:{}",
                bundle["entry"][1]["resource"]["id"].as_str().unwrap()
            ),
            *sr_url,
            "the ServiceRequest keeps the id its sender gave it"
        );
        assert_eq!(bundle["entry"][1]["resource"]["status"], "active");
        assert_eq!(
            m.delivery
                .properties
                .content_type()
                .as_ref()
                .map(|c| c.as_str()),
            Some("application/fhir+json")
        );
    }
    b.stop().await;
}

/// Defect 7: a referral that came with a business identifier, and one read
/// from the FHIR server, show both in the API.
#[tokio::test]
async fn the_api_shows_where_a_referral_came_from() {
    let b = Bridge::start(&[]).await;
    let api = &b.api;
    let r = Referral::new(&format!("trace-{}", uid()), &nhs_number(900));
    b.send(&r.bars_bundle()).await;
    let listed = awaiting(api, 1).await;
    let source = &listed[0]["source_record"];
    assert_eq!(
        source["identifier"],
        json!({"system": "https://trust.example.nhs.uk/Id/referral", "value": r.identifier})
    );
    assert!(
        source["service_request"]
            .as_str()
            .is_some_and(|s| s.starts_with("ServiceRequest/")),
        "{source}"
    );
    b.stop().await;
}
