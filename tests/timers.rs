//! Durable timers across process deaths: a deadline scheduled, the daemon
//! SIGKILLed and restarted around it, fires exactly once, at its time. The
//! daemon's clock is a file the test sets (`clock.file`).

mod common;

use common::daemon::{Daemon, set_clock};
use common::effects::audit_count;
use common::fixtures::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const WAIT: Duration = Duration::from_secs(25);

async fn timers_left(db: &str) -> usize {
    let s = ips_bridge::config::Settings::load_from(
        None,
        [("IPS__STORE__URL".to_string(), db.to_string())],
    )
    .unwrap();
    let store = ips_bridge::store::connect(&s.store).await.unwrap();
    // The waiting-list deadlines only: a new case also schedules its
    // outreach check when a date-based discharge rule applies.
    let n = store
        .timers_all()
        .await
        .unwrap()
        .iter()
        .filter(|t| t.kind == "waiting-list-target")
        .count();
    store.close().await;
    n
}

/// The waiting-list target (6 weeks after acceptance) as a durable timer.
/// Killed before it is due, restarted a minute before: nothing. Killed,
/// restarted a second after: one `referral.wait-exceeded`, one audit row, the
/// timer gone, the event stamped with the test clock's time. Restarted
/// again: nothing more. Would fail if the timer lived in memory (lost at the
/// kill), fired early, or were not deleted in the transaction that applied
/// it (a second event after the restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_fires_once_at_its_time_across_sigkill_and_restarts() {
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("now");
    let t0 = OffsetDateTime::parse("2026-12-01T09:00:00Z", &Rfc3339).unwrap();
    set_clock(&clock, t0);
    let clock_setting = clock.display().to_string();
    let mut d = Daemon::start(&[
        ("IPS__CLOCK__FILE", clock_setting.as_str()),
        ("IPS__TIMERS__POLL_INTERVAL", "100ms"),
    ])
    .await;
    let events = d.p.watch(&d.n.events, "referral.wait-exceeded").await;
    let r = Referral::new(&format!("wait-{}", uid()), &nhs_number(1200));
    d.send(&r.bars_bundle()).await;
    let id = eventually(WAIT, "the referral", || async {
        let (_, v) = d.api.get("/api/referrals?status=awaiting-decision").await;
        v["referrals"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    let (s, _) = d
        .api
        .post(
            &format!("/api/referrals/{id}/decision"),
            &json!({"outcome": "accepted"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(timers_left(&d.db).await, 1, "the deadline is a stored row");
    let due = t0 + time::Duration::weeks(6);

    d.sigkill();
    set_clock(&clock, due - time::Duration::minutes(1));
    d.restart().await;
    let early = d.p.drain(&events, 1, Duration::from_millis(1500)).await;
    assert!(early.is_empty(), "fired before its time");
    assert_eq!(timers_left(&d.db).await, 1);

    d.sigkill();
    set_clock(&clock, due + time::Duration::seconds(1));
    d.restart().await;
    let fired = d.p.drain(&events, 1, WAIT).await;
    assert_eq!(fired.len(), 1);
    let body: Value = serde_json::from_slice(&fired[0].delivery.data).unwrap();
    assert_eq!(body["referral_id"], json!(id));
    let occurred = OffsetDateTime::parse(body["occurred_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(
        occurred >= due && occurred < due + time::Duration::minutes(1),
        "fired at {occurred}, due {due}"
    );
    eventually(WAIT, "timer deleted", || async {
        (timers_left(&d.db).await == 0).then_some(())
    })
    .await;

    d.sigkill();
    set_clock(&clock, due + time::Duration::days(1));
    d.restart().await;
    let again = d.p.drain(&events, 1, Duration::from_millis(1500)).await;
    assert!(again.is_empty(), "fired twice");
    assert_eq!(audit_count(&d.db, "referral.wait-exceeded").await, 1);
}

/// Assistance that commences before the target cancels the deadline: no
/// event when the clock passes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_contact_before_the_target_cancels_the_deadline() {
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("now");
    let t0 = OffsetDateTime::parse("2026-12-01T09:00:00Z", &Rfc3339).unwrap();
    set_clock(&clock, t0);
    let clock_setting = clock.display().to_string();
    let d = Daemon::start(&[
        ("IPS__CLOCK__FILE", clock_setting.as_str()),
        ("IPS__TIMERS__POLL_INTERVAL", "100ms"),
    ])
    .await;
    let events = d.p.watch(&d.n.events, "referral.wait-exceeded").await;
    let nhs = nhs_number(1300);
    let r = Referral::new(&format!("seen-{}", uid()), &nhs);
    d.send(&r.bars_bundle()).await;
    let id = eventually(WAIT, "the referral", || async {
        let (_, v) = d.api.get("/api/referrals?status=awaiting-decision").await;
        v["referrals"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    d.api
        .post(
            &format!("/api/referrals/{id}/decision"),
            &json!({"outcome": "accepted"}),
        )
        .await;
    assert_eq!(timers_left(&d.db).await, 1);
    d.send(&appointment(&format!("appt-{}", uid()), &nhs, "fulfilled"))
        .await;
    eventually(WAIT, "assistance commenced", || async {
        let (_, v) = d.api.get(&format!("/api/referrals/{id}")).await;
        (v["state"] == "started").then_some(())
    })
    .await;
    assert_eq!(timers_left(&d.db).await, 0, "the deadline was cancelled");
    set_clock(&clock, t0 + time::Duration::weeks(7));
    let none = d.p.drain(&events, 1, Duration::from_millis(1500)).await;
    assert!(none.is_empty());
}
