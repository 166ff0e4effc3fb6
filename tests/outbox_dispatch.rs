//! The outbox dispatcher against a real FHIR sandbox and PostgreSQL: two
//! dispatchers (as two replicas) sharing slow deliveries, and a versioned
//! update that meets a newer version.

mod common;

use common::*;
use ips_bridge::amqp::Publisher;
use ips_bridge::amqp::sink::EventSink;
use ips_bridge::config::Settings;
use ips_bridge::engine::outbox::{
    Dispatcher, FhirCreate, FhirUpdate, OnConflict, OutboxMessage, Sinks,
};
use ips_bridge::engine::{Context, Engine, SystemClock, ms};
use ips_bridge::fhir::FhirClient;
use ips_bridge::fhir::sink::FhirSink;
use ips_bridge::store::{NewOutbox, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SYSTEM: &str = "https://ips-bridge.nhs.example/Id/resource";

fn engine(store: Arc<dyn Store>, s: &Settings) -> Engine {
    let key = s.patient_key().expect("test settings have a key").unwrap();
    Engine::new(store, Context::from_settings(s, key), Arc::new(SystemClock))
}

fn dispatcher(e: &Engine, s: &Settings) -> Dispatcher {
    let sinks = Sinks {
        fhir: Arc::new(FhirSink {
            client: Arc::new(FhirClient::new(&s.fhir).unwrap()),
        }),
        events: Arc::new(EventSink {
            publisher: Arc::new(Publisher::new(&s.amqp, "t-outbox")),
            exchange: s.amqp.events_exchange.clone(),
        }),

        mesh: None,
    };
    Dispatcher::new(e.clone(), sinks, s.outbox.clone())
}

async fn queue(store: &dyn Store, key: &str, order: &str, msg: &OutboxMessage) {
    let mut tx = store.begin().await.unwrap();
    tx.outbox_add(
        &NewOutbox {
            kind: msg.kind().as_str(),
            dedupe_key: key.into(),
            ordering_key: order.into(),
            payload: msg.to_payload(),
        },
        ms(time::OffsetDateTime::now_utc()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

fn task(value: &str) -> OutboxMessage {
    OutboxMessage::FhirCreate(FhirCreate {
        identifier_system: SYSTEM.into(),
        identifier_value: value.into(),
        resource: json!({
            "resourceType": "Task", "status": "requested", "intent": "order",
            "identifier": [{"system": SYSTEM, "value": value}]
        })
        .into(),
    })
}

async fn posts_to_task(sb: &Sandbox) -> u64 {
    sb.stats().await["byMethod"]["POST"].as_u64().unwrap_or(0)
}

/// Defect 2. Each delivery takes 3 s (the sandbox holds the POST), the lease
/// is 1 s, and two dispatchers share one PostgreSQL outbox. Every row is
/// POSTed exactly once: the dispatcher delivering it renews its lease while
/// the request runs and records the outcome as soon as it has it. Before the
/// fix the second dispatcher re-claimed rows whose lease ran out mid-delivery
/// and POSTed them again (counted by the sandbox, which sees every request;
/// the resources themselves stay single thanks to the conditional create, so
/// counting them could not show this).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatchers_deliver_each_slow_row_once() {
    const N: usize = 4;
    let sb = Sandbox::start();
    let db = fresh_pg_database().await;
    let s = settings(
        &db,
        &sb.url,
        &Names::new(),
        &[("IPS__OUTBOX__LEASE", "1s"), ("IPS__FHIR__TIMEOUT", "20s")],
    );
    let store = ips_bridge::store::connect(&s.store).await.unwrap();
    store.migrate().await.unwrap();
    let run = uid();
    for i in 0..N {
        // Separate ordering keys: all four may be in flight at once.
        queue(
            store.as_ref(),
            &format!("k{i}"),
            &format!("case-{i}"),
            &task(&format!("{run}-{i}")),
        )
        .await;
    }
    sb.fault(
        json!({"delayMs": 3000, "count": N, "match": {"method": "POST", "pathPrefix": "Task"}}),
    )
    .await;
    let before = posts_to_task(&sb).await;
    let stop = CancellationToken::new();
    let (e1, e2) = (engine(store.clone(), &s), engine(store.clone(), &s));
    let d1 = tokio::spawn(dispatcher(&e1, &s).run(stop.clone()));
    // The second replica starts while the first one's deliveries are held.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d2 = tokio::spawn(dispatcher(&e2, &s).run(stop.clone()));
    eventually(Duration::from_secs(30), "outbox drained", || async {
        (store.outbox_counts().await.unwrap() == (0, 0)).then_some(())
    })
    .await;
    // Past two more leases: nothing is delivered again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.cancel();
    let _ = tokio::join!(d1, d2);
    assert_eq!(
        posts_to_task(&sb).await - before,
        N as u64,
        "each row POSTed once by two dispatchers"
    );
    for i in 0..N {
        let found = sb
            .search_all(&format!("Task?identifier={SYSTEM}%7C{run}-{i}"))
            .await;
        assert_eq!(found.len(), 1, "Task {i}");
    }
    store.close().await;
}

/// A versioned update queued with `HandBack` meets a newer version (412):
/// the dispatcher re-reads the resource and hands the conflict to the
/// engine, which re-applies the change on the current version; the change
/// lands once and what the other writer changed is kept. With `Park`, the
/// row is parked with the reason instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_update_is_handed_back_and_rebased_or_parked() {
    let sb = Sandbox::start();
    let (_dir, db) = temp_sqlite_url();
    let s = settings(&db, &sb.url, &Names::new(), &[]);
    let store = ips_bridge::store::connect(&s.store).await.unwrap();
    store.migrate().await.unwrap();
    let mut flags = vec![];
    for _ in 0..2 {
        let created = sb
            .create(&json!({"resourceType": "Flag", "status": "active",
                "code": {"text": "assertive outreach"},
                "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}}}))
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        let v1 = created["meta"]["versionId"].as_str().unwrap().to_owned();
        // Someone else changes it after the bridge read version v1.
        let mut theirs = created.clone();
        theirs["period"] = json!({"start": "2026-11-30"});
        sb.put(&theirs).await;
        flags.push((id, v1));
    }
    for (i, (id, v1)) in flags.iter().enumerate() {
        let policy = if i == 0 {
            OnConflict::HandBack
        } else {
            OnConflict::Park
        };
        let update = OutboxMessage::FhirUpdate(FhirUpdate {
            resource: json!({"resourceType": "Flag", "id": id, "status": "inactive",
                "code": {"text": "assertive outreach"},
                "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}}}),
            if_match: v1.clone(),
            on_conflict: policy,
            rebases: 0,
        });
        queue(
            store.as_ref(),
            &format!("upd-{i}"),
            &format!("flag-{i}"),
            &update,
        )
        .await;
    }
    let stop = CancellationToken::new();
    let e = engine(store.clone(), &s);
    let d = tokio::spawn(dispatcher(&e, &s).run(stop.clone()));
    eventually(Duration::from_secs(20), "both rows settled", || async {
        let (pending, failed) = store.outbox_counts().await.unwrap();
        (pending == 0 && failed == 1).then_some(())
    })
    .await;
    stop.cancel();
    let _ = d.await;

    let rebased: Value = sb.get(&format!("Flag/{}", flags[0].0)).await;
    assert_eq!(rebased["status"], "inactive", "the bridge's change landed");
    assert_eq!(
        rebased["period"]["start"], "2026-11-30",
        "the other writer's change was kept"
    );
    let audit = store.audit_for(&flags[0].0).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "write-conflict.rebased")
            .count(),
        1
    );
    let parked: Value = sb.get(&format!("Flag/{}", flags[1].0)).await;
    assert_eq!(parked["status"], "active", "a parked update is not written");
    let row = store.outbox_by_key("upd-1").await.unwrap().unwrap();
    assert_eq!(row.status, ips_bridge::store::OutboxStatus::Failed);
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("version conflict")),
        "{row:?}"
    );
    store.close().await;
}
