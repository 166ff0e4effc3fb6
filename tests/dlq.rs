//! Dead letters against the real broker: listing never loses one, even where
//! RabbitMQ enforces a delivery limit on the dead-letter queue as 4.x does by
//! default, and a replay after a fix brings every one back exactly once.

mod common;

use common::fixtures::*;
use common::*;
use ips_bridge::store::dead_letters::{self, DeadLetterFilter, DeadLetters};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The vhost of the test broker URL (`%2f` is `/`).
fn vhost() -> String {
    let url = amqp_url();
    let raw = url.rsplit('/').next().unwrap_or("");
    if raw.is_empty() || raw.eq_ignore_ascii_case("%2f") {
        "/".into()
    } else {
        raw.replace("%2f", "/").replace("%2F", "/")
    }
}

/// Puts a delivery limit of 20 on one queue, as RabbitMQ 4.x does for every
/// quorum queue by default (3.10, on this machine, has none); removed on drop.
struct DeliveryLimit {
    name: String,
}

impl DeliveryLimit {
    fn on(queue: &str) -> DeliveryLimit {
        let name = format!("t-limit-{}", uid());
        let pattern = format!("^{}$", queue.replace('.', "\\."));
        effects::rabbitmqctl(&[
            "set_policy",
            "-p",
            &vhost(),
            "--apply-to",
            "queues",
            &name,
            &pattern,
            r#"{"delivery-limit":20}"#,
        ]);
        DeliveryLimit { name }
    }
}

impl Drop for DeliveryLimit {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["clear_policy", "-p", &vhost(), &self.name])
            .output();
    }
}

async fn letters(db: &str, n: &Names) -> Arc<dyn DeadLetters> {
    let s = settings(db, "http://127.0.0.1:1/fhir", n, &[]);
    dead_letters::connect(&s.store).await.unwrap().1
}

fn waiting() -> DeadLetterFilter {
    DeadLetterFilter {
        limit: 1000,
        ..Default::default()
    }
}

/// N referrals too large for the configured limit are dead-lettered; an
/// operator lists them 30 times with the delivery limit of RabbitMQ 4.x in
/// force, raises the limit and replays them all: every one is processed, once.
#[tokio::test]
async fn thirty_listings_lose_nothing_and_a_replay_brings_every_dead_letter_back_once() {
    const N: usize = 5;
    let n = Names::new();
    let _limit = DeliveryLimit::on(&n.dlq);
    let b = Bridge::start_with(
        n.clone(),
        None,
        &[("IPS__LIMITS__MAX_MESSAGE_BYTES", "2000")],
    )
    .await;
    let events = b.p.watch(&n.events, "referral.received").await;
    for i in 0..N {
        let r = Referral::new(&format!("dl-{i}-{}", uid()), &nhs_number(100 + i as u64));
        let body = serde_json::to_vec(&r.bars_bundle()).unwrap();
        assert!(body.len() > 2000);
        b.p.publish(
            &n.exchange,
            "bars.referral",
            &body,
            &format!("big-{i}"),
            FHIR_JSON,
        )
        .await
        .unwrap();
    }
    eventually(WAIT, "all dead-lettered", || async {
        (b.queue_depth(&n.dlq).await as usize == N).then_some(())
    })
    .await;

    for round in 0..30 {
        let listed = cli(&n, &b.db, &["dlq", "list"]).await;
        assert!(
            listed.contains(&format!("{N} dead letter(s)")),
            "listing {round}: {listed}"
        );
    }
    let shown = cli(&n, &b.db, &["dlq", "show", "big-0"]).await;
    assert!(shown.contains("\"MessageHeader\""), "{shown}");
    assert_eq!(
        b.queue_depth(&n.dlq).await as usize,
        N,
        "listing and showing leave the broker's dead-letter queue as it was"
    );

    let b = b.restart(Duration::from_secs(5), &[]).await; // the operator raised the limit
    let replayed = cli(&n, &b.db, &["dlq", "replay", "--all"]).await;
    assert!(replayed.contains(&format!("replayed {N}")), "{replayed}");

    let store = b.store();
    // Events arrive over several polls: keep what each poll drained.
    let seen = std::sync::Mutex::new(Vec::new());
    eventually(WAIT, "every replayed referral received", || async {
        let more = b.p.drain(&events, 0, Duration::from_millis(0)).await;
        let mut all = seen.lock().unwrap();
        all.extend(more);
        (all.len() >= N).then_some(())
    })
    .await;
    let got = seen.into_inner().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let late = b.p.drain(&events, 0, Duration::from_millis(0)).await;
    assert!(late.is_empty(), "{} duplicate event(s)", late.len());
    let ids: BTreeSet<String> = got
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_slice(&m.delivery.data).unwrap();
            v["referral_id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!((got.len(), ids.len()), (N, N), "one event per referral");
    for id in &ids {
        let audit = store.audit_for(id).await.unwrap();
        let received = audit.iter().filter(|a| a.action == "referral.received");
        assert_eq!(received.count(), 1, "referral {id} received once");
    }
    assert_eq!(store.inbox_count("amqp").await.unwrap(), N as i64);
    assert_eq!(b.queue_depth(&n.dlq).await, 0, "replayed copies removed");
    let l = letters(&b.db, &n).await;
    assert!(l.dead_letters_list(&waiting()).await.unwrap().is_empty());
    b.stop().await;
}

/// The same rejected message delivered twice is one dead letter; a different
/// body under the same message id is another.
#[tokio::test]
async fn a_redelivered_rejection_is_one_dead_letter_and_a_new_body_another() {
    let b = Bridge::start(&[]).await;
    let n = &b.n;
    for body in [&b"not json"[..], b"not json", b"not json either"] {
        b.p.publish(&n.exchange, "x", body, "same-id", FHIR_JSON)
            .await
            .unwrap();
    }
    eventually(WAIT, "three copies in the broker's queue", || async {
        (b.queue_depth(&n.dlq).await == 3).then_some(())
    })
    .await;
    let l = letters(&b.db, n).await;
    let rows = l.dead_letters_list(&waiting()).await.unwrap();
    let summary: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| (r.message_id.clone(), r.error_code.clone(), r.rejections))
        .collect();
    assert_eq!(
        summary,
        [
            ("same-id".to_string(), "invalid-json".to_string(), 2),
            ("same-id".to_string(), "invalid-json".to_string(), 1)
        ]
    );
    let listed = cli(
        n,
        &b.db,
        &["dlq", "list", "--json", "--code", "invalid-json"],
    )
    .await;
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert_eq!(b.queue_depth(&n.dlq).await, 3);
    b.stop().await;
}

/// A message only the broker knows (dead-lettered by the broker itself, or
/// before dead letters were stored) is recorded by `dlq sync` and can then be
/// listed and replayed like any other.
#[tokio::test]
async fn sync_records_a_dead_letter_only_the_broker_holds() {
    let b = Bridge::start(&[]).await;
    let n = &b.n;
    let r = Referral::new(&format!("orphan-{}", uid()), &nhs_number(150));
    let body = serde_json::to_vec(&r.bars_bundle()).unwrap();
    b.p.publish(&n.dlx, "bars.referral", &body, "orphan-1", FHIR_JSON)
        .await
        .unwrap();
    assert_eq!(b.queue_depth(&n.dlq).await, 1);
    let listed = cli(n, &b.db, &["dlq", "list"]).await;
    assert!(listed.contains("0 dead letter(s)"), "{listed}");

    let synced = cli(n, &b.db, &["dlq", "sync"]).await;
    assert!(
        synced.contains("0 removed, 1 kept, 1 newly recorded"),
        "{synced}"
    );
    let again = cli(n, &b.db, &["dlq", "sync"]).await;
    assert!(
        again.contains("0 removed, 1 kept, 0 newly recorded"),
        "{again}"
    );
    let listed = cli(n, &b.db, &["dlq", "list", "--code", "broker-dead-lettered"]).await;
    assert!(
        listed.contains("1 dead letter(s)") && listed.contains("orphan-1"),
        "{listed}"
    );

    let replayed = cli(n, &b.db, &["dlq", "replay", "orphan-1"]).await;
    assert!(
        replayed.contains("replayed 1") && replayed.contains("1 removed"),
        "{replayed}"
    );
    let store = b.store();
    eventually(WAIT, "the orphan processed", || async {
        (store.inbox_count("amqp").await.unwrap() == 1).then_some(())
    })
    .await;
    assert_eq!(b.queue_depth(&n.dlq).await, 0);
    b.stop().await;
}

/// A real redelivery: the dead-letter exchange is gone, so after the store has
/// recorded the rejection the publish to it fails, the consumer reconnects
/// (declaring the exchange again) and the broker redelivers the message,
/// which is rejected a second time. Still one dead letter, with both
/// rejections counted, and one copy in the broker's queue.
#[tokio::test]
async fn a_message_redelivered_after_a_failed_dead_letter_publish_is_one_dead_letter() {
    let b = Bridge::start(&[]).await;
    let n = &b.n;
    b.p.ch
        .exchange_delete(n.dlx.as_str().into(), Default::default())
        .await
        .unwrap();
    b.p.publish(&n.exchange, "x", b"not json", "redelivered-1", FHIR_JSON)
        .await
        .unwrap();
    eventually(WAIT, "the copy in the broker's queue", || async {
        (b.queue_depth(&n.dlq).await == 1).then_some(())
    })
    .await;
    eventually(WAIT, "the inbound queue drained", || async {
        (b.queue_depth(&n.queue).await == 0).then_some(())
    })
    .await;
    let l = letters(&b.db, n).await;
    let rows = l.dead_letters_list(&waiting()).await.unwrap();
    let summary: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| (r.message_id.as_str(), r.rejections))
        .collect();
    assert_eq!(summary, [("redelivered-1", 2)], "rejected twice, kept once");
    assert_eq!(b.queue_depth(&n.dlq).await, 1);
    b.stop().await;
}
