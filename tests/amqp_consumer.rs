//! The consumer against the real broker: ack after commit, dedupe, dead-lettering
//! with reasons, recovery from dropped connections and store outages,
//! readiness, and the DLQ tooling.

mod common;

use common::daemon::Daemon;
use common::fixtures::*;
use common::*;
use sqlx::Connection as _;
use std::time::Duration;

/// The same message id twice with *different* bodies (two different
/// referrals): the second is a duplicate, so one referral, one audit row, one
/// event; both deliveries acked.
///
/// What makes it fail: dedupe by content or by referral key instead of by
/// message id (the second body is a new referral: two of each effect), a
/// duplicate left unacked or requeued (`messages_unacknowledged` or
/// `messages_ready` above 0), or a duplicate not counted as one by this process.
#[tokio::test]
async fn message_is_stored_acked_and_deduplicated() {
    let d = Daemon::start(&[]).await;
    let events = d.p.watch(&d.n.events, "referral.received").await;
    let first = serde_json::to_vec(&Referral::new(&uid(), &nhs_number(1)).bars_bundle()).unwrap();
    let other = serde_json::to_vec(&Referral::new(&uid(), &nhs_number(2)).bars_bundle()).unwrap();
    assert_ne!(first, other);
    for body in [&first, &other] {
        d.p.publish(&d.n.exchange, "bars.referral", body, "msg-1", FHIR_JSON)
            .await
            .unwrap();
    }
    eventually(
        Duration::from_secs(10),
        "both deliveries handled",
        || async {
            let m = d.metrics().await;
            let n = |o| {
                daemon::metric_value(
                    &m,
                    "ips_messages_total",
                    &[("source", "amqp"), ("outcome", o)],
                )
            };
            (n("processed") == Some(1.0) && n("duplicate") == Some(1.0)).then_some(())
        },
    )
    .await;
    effects::settle_queue(&d.n.url, &d.n.queue, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(effects::audit_count(&d.db, "referral.received").await, 1);
    let (_, listed) = d.api.get("/api/referrals?status=awaiting-decision").await;
    assert_eq!(
        listed["referrals"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let got = d.p.drain(&events, 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = d.p.drain(&events, 0, Duration::ZERO).await;
    assert_eq!(got.len() + late.len(), 1, "one referral.received event");
    assert_eq!(effects::queue_counts(&d.n.url, &d.n.dlq), (0, 0));
}

#[tokio::test]
async fn non_json_goes_to_the_dead_letter_queue_with_reason_and_the_queue_keeps_flowing() {
    let b = Bridge::start(&[]).await;
    b.p.publish(&b.n.exchange, "x", b"this is not json", "bad-1", FHIR_JSON)
        .await
        .unwrap();
    b.send(&Referral::new(&uid(), &nhs_number(2)).bars_bundle())
        .await;
    let dead = b.p.drain(&b.n.dlq, 1, Duration::from_secs(10)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        header(&dead[0], "x-ips-error-code").as_deref(),
        Some("invalid-json")
    );
    assert!(
        header(&dead[0], "x-ips-error")
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(
        dead[0].delivery.data, b"this is not json",
        "the original body is kept"
    );
    let store = b.store();
    eventually(
        Duration::from_secs(10),
        "good message processed after the bad one",
        || async { (store.inbox_count("amqp").await.unwrap() == 1).then_some(()) },
    )
    .await;
    b.stop().await;
}

/// The broker connection is closed (three times) while messages keep arriving:
/// the consumer reconnects and every message is processed exactly once.
///
/// Each publish attempt carries a different body (an attempt number in the
/// comment) under the same message id, so a resend after a lost confirm that
/// got past the inbox would be applied as a changed appointment; every tenth
/// message is resent that way on purpose. What makes it
/// fail: a message lost (fewer than 300 `appointment.recorded` audit rows), a
/// resend applied again (more than 300), a redelivered batch applied again
/// (this process counts it `unchanged` rather than `duplicate`), or a delivery
/// never acked (`messages_unacknowledged` above 0).
#[tokio::test]
async fn survives_forced_connection_closes_without_loss_or_duplicates() {
    let vhost = format!("t-{}", uid());
    let ctl = effects::rabbitmqctl;
    ctl(&["add_vhost", &vhost]);
    ctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let url = format!("amqp://guest:guest@127.0.0.1:5672/{vhost}");
    let d = Daemon::start_with(
        Names::on(&url),
        None,
        &[
            ("IPS__AMQP__BATCH_SIZE", "10"),
            ("IPS__AMQP__PREFETCH", "20"),
        ],
    )
    .await;

    const TOTAL: usize = 300;
    let publisher = {
        let (url, exchange) = (url.clone(), d.n.exchange.clone());
        tokio::spawn(async move {
            let mut p = Pub::connect(&url).await;
            for i in 0..TOTAL {
                let mut attempt = 0;
                // Every tenth message is sent twice on purpose, each copy until the
                // broker confirms it (a lost confirm could otherwise hide a copy):
                // at least TOTAL / 10 duplicates reach the bridge, whatever the
                // forced closes do. The publisher's own connection is closed too:
                // reconnect and resend (same message id, a different body).
                let copies = if i % 10 == 0 { 2 } else { 1 };
                for _ in 0..copies {
                    loop {
                        attempt += 1;
                        let mut appt =
                            appointment(&format!("appt-{i}"), &nhs_number(i as u64), "booked");
                        appt["comment"] = serde_json::json!(format!("attempt {attempt}"));
                        let body = serde_json::to_vec(&appt).unwrap();
                        let sent = p
                            .publish(
                                &exchange,
                                "appointment",
                                &body,
                                &format!("m-{i}"),
                                FHIR_JSON,
                            )
                            .await;
                        if sent.is_ok() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if let Ok(fresh) =
                            tokio::time::timeout(Duration::from_secs(2), Pub::connect(&url)).await
                        {
                            p = fresh;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        ctl(&["close_all_connections", "-p", &vhost, "test: forced close"]);
    }
    publisher.await.unwrap();
    let db = d.db.clone();
    eventually(
        Duration::from_secs(30),
        "every message committed",
        || async { (effects::inbox_count(&db, "amqp").await as usize == TOTAL).then_some(()) },
    )
    .await;
    effects::settle_queue(&url, &d.n.queue, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        effects::audit_count(&d.db, "appointment.recorded").await,
        TOTAL as i64,
        "each appointment applied exactly once"
    );
    let m = d.metrics().await;
    let n = |o| {
        daemon::metric_value(
            &m,
            "ips_messages_total",
            &[("source", "amqp"), ("outcome", o)],
        )
    };
    assert_eq!(n("processed"), Some(TOTAL as f64), "{m}");
    assert!(
        n("duplicate").unwrap_or(0.0) >= (TOTAL / 10) as f64,
        "the deliberate resends were seen as duplicates: {m}"
    );
    assert_eq!(
        n("unchanged"),
        Some(0.0),
        "a redelivery got past the inbox: {m}"
    );
    assert_eq!(
        effects::queue_counts(&url, &d.n.dlq),
        (0, 0),
        "nothing dead-lettered"
    );
    drop(d);
    ctl(&["delete_vhost", &vhost]);
}

/// The store is unavailable (another process holds SQLite's write lock) for
/// longer than the in-place retries: the batch goes back to the queue
/// unacknowledged, is redelivered, and is processed exactly once when the
/// store returns.
///
/// The daemon is a process of its own, so the `requeued` count is its own and
/// not another test's. What makes it fail: a batch acked although its commit
/// failed (lost: fewer than 5 audit rows), a redelivery applied twice (more
/// than 5), or a delivery left unacked (`messages_unacknowledged` above 0).
#[tokio::test]
async fn store_outage_returns_messages_to_the_queue_and_loses_none() {
    let d = Daemon::start(&[("IPS__STORE__BUSY_TIMEOUT", "50ms")]).await;
    let mut blocker = lock_store(&d.db).await;
    for i in 0..5 {
        let body = serde_json::to_vec(&appointment(
            &format!("outage-{i}"),
            &nhs_number(500 + i),
            "booked",
        ))
        .unwrap();
        d.p.publish(
            &d.n.exchange,
            "appointment",
            &body,
            &format!("outage-{i}"),
            FHIR_JSON,
        )
        .await
        .unwrap();
    }
    handed_back(&d).await;
    let committed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
        .fetch_one(&mut blocker)
        .await
        .unwrap();
    assert_eq!(committed, 0, "nothing committed while the store is locked");
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    drop(blocker);
    let db = d.db.clone();
    eventually(Duration::from_secs(30), "all five committed", || async {
        (effects::inbox_count(&db, "amqp").await == 5).then_some(())
    })
    .await;
    effects::settle_queue(&d.n.url, &d.n.queue, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        effects::audit_count(&d.db, "appointment.recorded").await,
        5,
        "each appointment applied exactly once"
    );
    assert_eq!(effects::queue_counts(&d.n.url, &d.n.dlq), (0, 0));
}

/// A batch handed back to the broker keeps its place: the messages behind it,
/// already read by the consumer, must not be applied first.
///
/// The store is locked while 20 appointments are published (batches of 5,
/// prefetch 20, so the consumer holds all of them); the lock is released the
/// moment the first batch is handed back. What makes it fail: the consumer
/// applying the batches it already read while the handed-back one waits for
/// redelivery; a hand-back that lets the broker return the batch behind the
/// ones read after it (a nack before the close did that, now and then: the
/// broker redelivered the nacked batch at once to the same consumer, and a
/// quorum queue returns messages on close in order of their last delivery);
/// either puts appointments out of publish order in the audit trail. Or a
/// message lost or applied twice (not exactly 20).
#[tokio::test]
async fn a_batch_handed_back_keeps_its_place_in_the_queue() {
    const TOTAL: usize = 20;
    let d = Daemon::start(&[
        ("IPS__STORE__BUSY_TIMEOUT", "50ms"),
        ("IPS__AMQP__BATCH_SIZE", "5"),
        ("IPS__AMQP__PREFETCH", "20"),
    ])
    .await;
    let mut blocker = lock_store(&d.db).await;
    for i in 0..TOTAL {
        let key = format!("order-{i:02}");
        let body =
            serde_json::to_vec(&appointment(&key, &nhs_number(600 + i as u64), "booked")).unwrap();
        d.p.publish(&d.n.exchange, "appointment", &body, &key, FHIR_JSON)
            .await
            .unwrap();
    }
    handed_back(&d).await;
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    drop(blocker);
    let db = d.db.clone();
    eventually(Duration::from_secs(30), "all committed", || async {
        (effects::inbox_count(&db, "amqp").await == TOTAL as i64).then_some(())
    })
    .await;
    effects::settle_queue(&d.n.url, &d.n.queue, Duration::from_secs(10)).await;
    let mut conn = sqlx::SqliteConnection::connect(&d.db).await.unwrap();
    let applied: Vec<String> = sqlx::query_scalar(
        "SELECT a.appointment_key FROM audit u JOIN appointments a ON a.id = u.resource_id \
         WHERE u.action = 'appointment.recorded' ORDER BY u.id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let order: Vec<usize> = applied
        .iter()
        .map(|k| {
            let at = k.rfind("order-").expect("an appointment of this test");
            k[at + 6..].parse().expect("a two-digit sequence number")
        })
        .collect();
    assert_eq!(
        order,
        (0..TOTAL).collect::<Vec<_>>(),
        "applied in publish order, each once"
    );
}

#[tokio::test]
async fn readyz_is_503_without_the_broker_and_200_with_it() {
    let sb = Sandbox::start();
    let (_dir, db) = temp_sqlite_url();
    let down = Names::on("amqp://guest:guest@127.0.0.1:1/%2f");
    let app = ips_bridge::app::start(settings(&db, &sb.url, &down, &[]))
        .await
        .unwrap();
    let r = reqwest::get(format!("http://{}/readyz", app.http_addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["broker"]["status"], "down");
    assert_eq!(body["checks"]["store"]["status"], "up");
    assert_eq!(body["checks"]["fhir"]["status"], "up");
    app.stop(Duration::from_secs(2)).await;

    let b = Bridge::start(&[]).await; // start_ready: waits for 200
    assert_eq!(
        reqwest::get(format!("{}/readyz", b.api.base))
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = reqwest::get(format!("{}/metrics", b.api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("ips_outbox_pending"), "{metrics}");
    b.stop().await;
}

/// An operator lists a dead letter, raises the limit that rejected it, and
/// replays it with `ips-bridge dlq`; it is then processed like any message.
#[tokio::test]
async fn dlq_list_show_and_replay_from_the_command_line() {
    let b = Bridge::start(&[("IPS__LIMITS__MAX_MESSAGE_BYTES", "2000")]).await;
    let body = serde_json::to_vec(&Referral::new(&uid(), &nhs_number(81)).bars_bundle()).unwrap();
    assert!(body.len() > 2000);
    b.p.publish(
        &b.n.exchange,
        "bars.referral",
        &body,
        "too-big-1",
        FHIR_JSON,
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(10), "dead letter", || async {
        (b.queue_depth(&b.n.dlq).await == 1).then_some(())
    })
    .await;

    let (n, db) = (b.n.clone(), b.db.clone());
    let cli = |args: &'static [&'static str]| common::cli(&n, &db, args);
    let listed = cli(&["dlq", "list"]).await;
    assert!(
        listed.contains("1 dead letter(s)")
            && listed.contains("too-big-1")
            && listed.contains("message-too-large"),
        "{listed}"
    );
    let shown = cli(&["dlq", "show", "too-big-1"]).await;
    assert!(
        shown.contains("\"MessageHeader\""),
        "the body is shown: {shown}"
    );
    assert_eq!(
        b.queue_depth(&b.n.dlq).await,
        1,
        "list and show consume nothing"
    );

    let b = b.restart(Duration::from_secs(5), &[]).await; // the operator raised the limit
    let replayed = cli(&["dlq", "replay", "too-big-1"]).await;
    assert!(replayed.contains("replayed 1"), "{replayed}");
    let store = b.store();
    eventually(
        Duration::from_secs(10),
        "replayed message processed",
        || async {
            (store.referral_state_counts().await.unwrap()
                == vec![("awaiting-decision".to_string(), 1)])
            .then_some(())
        },
    )
    .await;
    assert_eq!(b.queue_depth(&b.n.dlq).await, 0);
    b.stop().await;
}

/// Another connection holding SQLite's write lock (`BEGIN EXCLUSIVE`) until
/// it rolls back: the daemon's store is unavailable meanwhile.
async fn lock_store(db: &str) -> sqlx::SqliteConnection {
    let mut blocker = sqlx::SqliteConnection::connect(db).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    blocker
}

/// Waits until the daemon has handed a batch back to the broker.
async fn handed_back(d: &Daemon) {
    let requeued = [("source", "amqp"), ("outcome", "requeued")];
    eventually(
        Duration::from_secs(30),
        "a batch handed back to the broker",
        || async { (d.counter("ips_messages_total", &requeued).await >= 1.0).then_some(()) },
    )
    .await;
}
