//! Referral intake against the real binary run as a process of its own
//! (tests/common/daemon.rs): a decision Task written exactly once although the
//! process is SIGKILLed in the middle of writing it, and metrics that only
//! this process can have counted.

mod common;

use common::daemon::{self, Daemon};
use common::effects::{self, referrals, tasks_for};
use common::fixtures::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Routing keys of every event now in `queue`, after a pause for stragglers
/// (so a duplicate published late is counted, not missed).
async fn event_kinds(p: &Pub, queue: &str, at_least: usize) -> Vec<String> {
    let mut got = p.drain(queue, at_least, WAIT).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    got.extend(p.drain(queue, 0, Duration::ZERO).await);
    for m in &got {
        let text = String::from_utf8_lossy(&m.delivery.data);
        assert!(
            !text.contains(&nhs_number(40)) && !text.contains(&nhs_number(41)),
            "events carry no NHS numbers"
        );
    }
    let mut kinds: Vec<String> = got
        .iter()
        .map(|m| m.delivery.routing_key.to_string())
        .collect();
    kinds.sort();
    kinds
}

fn post_count(stats: &Value) -> u64 {
    stats["byMethod"]["POST"].as_u64().unwrap_or(0)
}

/// A retried decision and a daemon process SIGKILLed while its Task POST is
/// inside the FHIR server each leave exactly one Task, one audit row and one
/// event per decision.
///
/// What makes it fail: a redelivery that creates instead of finding the Task
/// (no `If-None-Exist`, or an identifier that differs per attempt) leaves two
/// Tasks for the second referral; an outbox row lost with the killed process
/// leaves the `referral.declined` event unpublished; a retried request that is
/// applied again leaves a second `referral.accepted` audit row and event. The
/// POST count proves the redelivery really happened after the restart.
#[tokio::test]
async fn decision_writes_one_task_even_when_retried_and_after_a_crash_mid_write() {
    let mut d = Daemon::start(&[("IPS__OUTBOX__LEASE", "1s")]).await;
    let events = d.p.watch(&d.n.events, "referral.*").await;
    for i in 0..2 {
        let r = Referral::new(&format!("dec-{i}-{}", uid()), &nhs_number(40 + i));
        d.send(&r.bars_bundle()).await;
    }
    let api = &d.api;
    let waiting = eventually(WAIT, "two referrals", || async {
        let r = referrals(api, "awaiting-decision").await;
        (r.len() == 2).then_some(r)
    })
    .await;
    let (first, second) = (
        waiting[0]["id"].as_str().unwrap().to_owned(),
        waiting[1]["id"].as_str().unwrap().to_owned(),
    );

    // Retried request: same answer, one Task.
    let accept = json!({"outcome": "accepted"});
    let (s1, r1) = api
        .post(&format!("/api/referrals/{first}/decision"), &accept)
        .await;
    let (s2, r2) = api
        .post(&format!("/api/referrals/{first}/decision"), &accept)
        .await;
    assert_eq!(
        (s1, r1["changed"].clone(), s2, r2["changed"].clone()),
        (200, json!(true), 200, json!(false))
    );
    let (s3, r3) = api
        .post(
            &format!("/api/referrals/{first}/decision"),
            &json!({"outcome": "declined", "decline_reason": "other"}),
        )
        .await;
    assert_eq!(s3, 409, "{r3}");
    let db = d.db.clone();
    eventually(WAIT, "outbox drained after the first decision", || async {
        (effects::outbox_undelivered(&db).await == 0).then_some(())
    })
    .await;
    let tasks = tasks_for(&d.sb, &first).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["businessStatus"]["coding"][0]["code"], "accepted");
    assert_eq!(
        tasks[0]["focus"]["identifier"]["system"],
        "https://trust.example.nhs.uk/Id/referral"
    );
    assert_eq!(
        effects::audit_count(&d.db, "referral.accepted").await,
        1,
        "the retried request applied nothing"
    );

    // Crash mid-write: the Task POST is held in the server, the daemon process is
    // SIGKILLed while it waits, the server still applies the write; after a
    // restart the outbox delivers again and must find that Task.
    let posts_before = post_count(&d.sb.stats().await);
    d.sb.fault(
        json!({"delayMs": 3000, "count": 1, "match": {"method": "POST", "pathPrefix": "Task"}}),
    )
    .await;
    let (s, body) = api
        .post(
            &format!("/api/referrals/{second}/decision"),
            &json!({"outcome": "declined", "decline_reason": "not-seeking-work"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let sb = &d.sb;
    eventually(WAIT, "the Task POST held in the server", || async {
        (sb.stats().await["delayed"] == 1).then_some(())
    })
    .await;
    d.sigkill();
    let sb = &d.sb;
    eventually(
        WAIT,
        "the write landed although the bridge never heard back",
        || async { (tasks_for(sb, &second).await.len() == 1).then_some(()) },
    )
    .await;
    d.restart().await;
    eventually(WAIT, "outbox drained after restart", || async {
        (effects::outbox_undelivered(&db).await == 0).then_some(())
    })
    .await;
    assert_eq!(
        post_count(&d.sb.stats().await) - posts_before,
        2,
        "the held POST and one redelivery after the restart"
    );
    let tasks = tasks_for(&d.sb, &second).await;
    assert_eq!(
        tasks.len(),
        1,
        "redelivery after the crash found the Task instead of duplicating it"
    );
    assert_eq!(
        tasks[0]["statusReason"]["coding"][0]["code"],
        "not-seeking-work"
    );
    assert_eq!(effects::audit_count(&d.db, "referral.declined").await, 1);

    assert_eq!(
        event_kinds(&d.p, &events, 4).await,
        vec![
            "referral.accepted",
            "referral.declined",
            "referral.received",
            "referral.received"
        ],
        "each event exactly once"
    );
}

/// Accept over the queue (ES event), the waiting list, then the first attended
/// appointment commences assistance; the metrics count each step.
///
/// The metrics come from a daemon process of the test's own, so no other
/// test can have produced them. What makes it fail: a step not counted, or
/// counted twice (each counter must be exactly 1, the messages exactly 3).
#[tokio::test]
async fn queue_decision_waiting_list_first_contact_and_metrics() {
    let d = Daemon::start(&[]).await;
    let (n, api, p) = (&d.n, &d.api, &d.p);
    let nhs = nhs_number(61);
    let r = Referral::new(&uid(), &nhs);
    d.send(&r.bars_bundle()).await;
    let id = eventually(WAIT, "referral", || async {
        referrals(api, "awaiting-decision")
            .await
            .first()
            .and_then(|r| r["id"].as_str().map(str::to_owned))
    })
    .await;
    let decision = json!({"referral_id": id, "outcome": "accepted", "decided_by": "ES 7"});
    let props = lapin::BasicProperties::default()
        .with_message_id(uid().as_str().into())
        .with_type("ips.referral-decision.v1".into())
        .with_content_type("application/json".into());
    p.ch.basic_publish(
        n.exchange.as_str().into(),
        "es.decision".into(),
        Default::default(),
        &serde_json::to_vec(&decision).unwrap(),
        props,
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let waiting = eventually(WAIT, "on the waiting list", || async {
        let w = referrals(api, "waiting").await;
        (w.len() == 1).then_some(w)
    })
    .await;
    assert_eq!(waiting[0]["days_waiting"], 0);
    assert_eq!(waiting[0]["decision"], "accepted");

    let appt = appointment(&format!("appt-{}", uid()), &nhs, "fulfilled");
    d.send(&appt).await;
    let started = eventually(WAIT, "assistance commenced", || async {
        let s = referrals(api, "started").await;
        (s.len() == 1).then_some(s)
    })
    .await;
    assert_eq!(
        started[0]["dates"]["assistance_commenced"],
        "2026-11-21T10:00:00Z"
    );
    assert!(referrals(api, "waiting").await.is_empty());

    // The stored-state gauges are read on their own interval
    // (`http.metrics_refresh`, 200 ms here), not at each commit: wait for a
    // refresh after the commit above, seen as the waiting list back at 0. A
    // waiting list that never empties fails here.
    let metrics = eventually(WAIT, "started, no longer waiting", || async {
        let m = d.metrics().await;
        (daemon::metric_value(&m, "ips_waiting_list_size", &[]) == Some(0.0)).then_some(m)
    })
    .await;
    let value = |name: &str, labels: &[(&str, &str)]| {
        daemon::metric_value(&metrics, name, labels)
            .unwrap_or_else(|| panic!("metrics lack {name}{labels:?}:\n{metrics}"))
    };
    assert_eq!(
        value("ips_referrals_received_total", &[("source", "gp-practice")]),
        1.0
    );
    assert_eq!(
        value("ips_referral_decisions_total", &[("outcome", "accepted")]),
        1.0
    );
    assert_eq!(value("ips_referral_days_to_first_contact_count", &[]), 1.0);
    assert_eq!(value("ips_referrals_incomplete", &[]), 0.0);
    assert_eq!(
        value(
            "ips_messages_total",
            &[("source", "amqp"), ("outcome", "processed")]
        ),
        3.0,
        "referral, decision, appointment"
    );
    assert!(!metrics.contains(&nhs), "no NHS number in metrics");
    assert!(!d.logs().contains(&nhs), "no NHS number in the logs");
}
