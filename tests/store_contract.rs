//! One contract, two back-ends: every test runs on SQLite and on PostgreSQL.

mod common;

use common::*;
use ips_bridge::domain::referral::ReferralState;
use ips_bridge::store::{
    self, AuditEntry, CaseRow, InboxEntry, NewOutbox, ReferralRow, Settlement, Store,
};
use std::sync::Arc;

async fn sqlite() -> (Option<tempfile::TempDir>, Arc<dyn Store>) {
    let (dir, url) = temp_sqlite_url();
    let s = settings(&url, "http://127.0.0.1:1/fhir", &Names::new(), &[]);
    let st = store::connect(&s.store).await.unwrap();
    st.migrate().await.unwrap();
    (Some(dir), st)
}

async fn postgres() -> (Option<tempfile::TempDir>, Arc<dyn Store>) {
    let url = fresh_pg_database().await;
    let s = settings(&url, "http://127.0.0.1:1/fhir", &Names::new(), &[]);
    let st = store::connect(&s.store).await.unwrap();
    st.migrate().await.unwrap();
    (None, st)
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test] async fn $name() { let (_d, s) = super::sqlite().await; super::$name(s).await; } )* }
        mod on_postgres { $( #[tokio::test] async fn $name() { let (_d, s) = super::postgres().await; super::$name(s).await; } )* }
    };
}

contract!(
    inbox_dedupes,
    outbox_claims_in_order_per_key,
    outbox_retry_fail_and_counts,
    rollback_on_drop,
    cursor_and_timers,
    one_open_case_per_patient,
    referral_round_trip,
    migrate_is_idempotent,
    inbox_batch_marks_repeats_within_the_batch,
    unit_of_work_reads_its_own_writes_and_flushes_them,
    outreach_state_is_read_once_and_follows_its_writes,
    purge_keeps_recent_rows_and_pending_work,
    team_records_round_trip_into_the_snapshot,
    mesh_deliveries_practices_and_kept_content
);

fn inbox(id: &str) -> InboxEntry<'_> {
    InboxEntry {
        source: "amqp",
        message_id: id,
        received_at: 1,
        processed_at: 2,
        kind: "referral",
        outcome: "applied",
    }
}

fn outbox(key: &str, order: &str) -> NewOutbox {
    NewOutbox {
        kind: "event",
        dedupe_key: key.into(),
        ordering_key: order.into(),
        payload: "{}".into(),
    }
}

async fn inbox_dedupes(s: Arc<dyn Store>) {
    let mut tx = s.begin().await.unwrap();
    assert!(tx.inbox_record(&inbox("m1")).await.unwrap());
    assert!(
        !tx.inbox_record(&inbox("m1")).await.unwrap(),
        "same id in the same transaction"
    );
    tx.commit().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    assert!(
        !tx.inbox_record(&inbox("m1")).await.unwrap(),
        "same id later"
    );
    assert!(tx.inbox_record(&inbox("m2")).await.unwrap());
    tx.inbox_forget("amqp", "m2").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.inbox_count("amqp").await.unwrap(), 1);
}

async fn outbox_claims_in_order_per_key(s: Arc<dyn Store>) {
    let mut tx = s.begin().await.unwrap();
    tx.outbox_add(&outbox("a1", "case-a"), 100).await.unwrap();
    tx.outbox_add(&outbox("a2", "case-a"), 100).await.unwrap();
    tx.outbox_add(&outbox("b1", "case-b"), 100).await.unwrap();
    // The same intended write again, with a different payload: dropped, not
    // duplicated and not overwritten. (A row count alone cannot fail here, the
    // key being unique; the payload that is delivered can: an upsert that
    // replaced the first row would deliver `{"again":true}`.)
    let mut again = outbox("a1", "case-a");
    again.payload = "{\"again\":true}".into();
    tx.outbox_add(&again, 100).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        s.outbox_counts().await.unwrap(),
        (3, 0),
        "dedupe key is unique"
    );
    let claimed = s.outbox_claim(100, 1_000, 10).await.unwrap();
    assert_eq!(claimed[0].payload, "{}", "the first intended write is kept");
    let keys: Vec<&str> = claimed.iter().map(|r| r.dedupe_key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["a1", "b1"],
        "a2 waits for a1 (same ordering key)"
    );
    assert!(
        s.outbox_claim(100, 1_000, 10).await.unwrap().is_empty(),
        "claimed rows are leased"
    );
    s.outbox_settle(&[Settlement::Done {
        id: claimed[0].id,
        at: 200,
        result: Some("{\"id\":\"x\"}".into()),
    }])
    .await
    .unwrap();
    let next = s.outbox_claim(300, 1_300, 10).await.unwrap();
    assert_eq!(
        next.iter()
            .map(|r| r.dedupe_key.as_str())
            .collect::<Vec<_>>(),
        vec!["a2"]
    );
    // After the lease expires an unfinished row is claimable again (its claimer died).
    let again = s.outbox_claim(2_000, 3_000, 10).await.unwrap();
    let mut again: Vec<&str> = again.iter().map(|r| r.dedupe_key.as_str()).collect();
    again.sort();
    assert_eq!(again, vec!["a2", "b1"]);
    assert_eq!(
        s.outbox_by_key("a1")
            .await
            .unwrap()
            .unwrap()
            .result
            .as_deref(),
        Some("{\"id\":\"x\"}")
    );
}

async fn outbox_retry_fail_and_counts(s: Arc<dyn Store>) {
    let mut tx = s.begin().await.unwrap();
    tx.outbox_add(&outbox("r1", "k1"), 0).await.unwrap();
    tx.outbox_add(&outbox("r2", "k2"), 0).await.unwrap();
    tx.commit().await.unwrap();
    let rows = s.outbox_claim(0, 10, 10).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.attempts == 1));
    s.outbox_settle(&[
        Settlement::Retry {
            id: rows[0].id,
            next_attempt_at: 500,
            error: "503 from FHIR".into(),
        },
        Settlement::Failed {
            id: rows[1].id,
            error: "400 from FHIR".into(),
        },
    ])
    .await
    .unwrap();
    assert!(
        s.outbox_claim(100, 200, 10).await.unwrap().is_empty(),
        "not due before next_attempt_at"
    );
    let due = s.outbox_claim(500, 600, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 2);
    assert_eq!(due[0].last_error.as_deref(), Some("503 from FHIR"));
    assert_eq!(s.outbox_counts().await.unwrap(), (1, 1));
    // The parked row is listed (by kind or not) and put back once: due now,
    // its attempts counted afresh; a pending row is not touched.
    let parked = s.outbox_failed(None, 10).await.unwrap();
    assert_eq!(
        parked.iter().map(|r| r.id).collect::<Vec<_>>(),
        [rows[1].id]
    );
    assert_eq!(parked[0].last_error.as_deref(), Some("400 from FHIR"));
    assert_eq!(s.outbox_failed(Some("event"), 10).await.unwrap().len(), 1);
    assert!(
        s.outbox_failed(Some("mesh-send"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.outbox_requeue(&[rows[1].id, due[0].id], 700)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.outbox_requeue(&[rows[1].id], 700).await.unwrap(), 0);
    assert_eq!(s.outbox_counts().await.unwrap(), (2, 0));
    let again = s.outbox_claim(700, 800, 10).await.unwrap();
    let back = again
        .iter()
        .find(|r| r.id == rows[1].id)
        .expect("due again");
    assert_eq!(back.attempts, 1);
}

async fn rollback_on_drop(s: Arc<dyn Store>) {
    {
        let mut tx = s.begin().await.unwrap();
        tx.inbox_record(&inbox("lost")).await.unwrap();
        tx.outbox_add(&outbox("lost", "k"), 0).await.unwrap();
    }
    assert_eq!(s.inbox_count("amqp").await.unwrap(), 0);
    assert_eq!(s.outbox_counts().await.unwrap(), (0, 0));
}

async fn cursor_and_timers(s: Arc<dyn Store>) {
    assert_eq!(s.cursor("poll").await.unwrap(), None);
    let mut tx = s.begin().await.unwrap();
    tx.cursor_set("poll", "2026-11-23T10:00:00Z", 1)
        .await
        .unwrap();
    tx.timer_set("discharge-risk", "case-1", 1_000, "{}")
        .await
        .unwrap();
    tx.timer_set("discharge-risk", "case-1", 2_000, "{\"v\":2}")
        .await
        .unwrap();
    tx.audit(
        &AuditEntry {
            actor: "t".into(),
            action: "a".into(),
            resource_type: "case".into(),
            resource_id: "case-1".into(),
            detail: None,
        },
        5,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    tx.cursor_set("poll", "2026-11-23T11:00:00Z", 2)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        s.cursor("poll").await.unwrap().as_deref(),
        Some("2026-11-23T11:00:00Z")
    );
    assert!(
        s.timers_due(1_500, 10).await.unwrap().is_empty(),
        "rescheduled, not duplicated"
    );
    assert_eq!(s.timer_next_due().await.unwrap(), Some(2_000));
    let mut tx = s.begin().await.unwrap();
    assert!(
        tx.timers_claim_due(2_000, &["other-kind"], 10)
            .await
            .unwrap()
            .is_empty(),
        "only the kinds asked for are claimed"
    );
    let due = tx
        .timers_claim_due(2_000, &["discharge-risk"], 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    tx.timer_delete(due[0].id).await.unwrap();
    drop(tx);
    assert_eq!(
        s.timers_due(9_999, 10).await.unwrap().len(),
        1,
        "rolled back: the timer is still there"
    );
    // A dropped transaction rolls back when its connection is next used
    // (sqlx), so on PostgreSQL the row stays locked, and skipped by `SKIP
    // LOCKED`, for a moment: the next claim finds it once the lock is gone.
    let mut claimed = None;
    for _ in 0..100 {
        let mut tx = s.begin().await.unwrap();
        let due = tx
            .timers_claim_due(2_000, &["discharge-risk"], 10)
            .await
            .unwrap();
        if let Some(t) = due.first() {
            tx.timer_delete(t.id).await.unwrap();
            tx.commit().await.unwrap();
            claimed = Some(t.id);
            break;
        }
        drop(tx);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(claimed.is_some(), "the rolled-back timer is claimed again");
    assert!(
        s.timers_due(9_999, 10).await.unwrap().is_empty(),
        "a fired timer does not fire again"
    );
    assert_eq!(s.timer_next_due().await.unwrap(), None);
    assert_eq!(s.audit_for("case-1").await.unwrap().len(), 1);

    // A handler that sets the next deadline of the very timer that fired
    // (a date rule looking again later) keeps it: the engine deletes the
    // fired row in the same unit of work, and the new one must survive that.
    let mut tx = s.begin().await.unwrap();
    tx.timer_set("discharge-risk", "case-2", 3_000, "{}")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    let due = tx
        .timers_claim_due(3_000, &["discharge-risk"], 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    tx.timer_set("discharge-risk", "case-2", 8_000, "{}")
        .await
        .unwrap();
    tx.timer_set("discharge-risk", "case-3", 4_000, "{}")
        .await
        .unwrap();
    tx.timer_cancel("discharge-risk", "case-3").await.unwrap();
    tx.timer_delete(due[0].id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        s.timer_next_due().await.unwrap(),
        Some(8_000),
        "the next deadline survives the delete of the one that fired; a cancelled one is gone"
    );
    assert_eq!(s.timers_due(9_999, 10).await.unwrap().len(), 1);
}

fn case(id: &str, patient: &str) -> CaseRow {
    CaseRow {
        id: id.into(),
        patient_id: patient.into(),
        status: ips_bridge::domain::case::CaseStatus::Open,
        opened_at: 1,
        closed_at: None,
        closed_reason: None,
        referral_count: 1,
    }
}

async fn one_open_case_per_patient(s: Arc<dyn Store>) {
    let mut tx = s.begin().await.unwrap();
    let p = tx
        .patient_upsert("hash-1", "9912003888", "p-new", 1)
        .await
        .unwrap();
    let p2 = tx
        .patient_upsert("hash-1", "9912003888", "p-other", 2)
        .await
        .unwrap();
    assert_eq!(p, p2, "the same NHS number hash is the same patient");
    tx.case_insert(&case("c1", &p)).await.unwrap();
    assert_eq!(tx.case_count_referral("c1").await.unwrap(), 2);
    assert_eq!(tx.case_open_for(&p).await.unwrap().unwrap().id, "c1");
    assert!(
        tx.case_insert(&case("c2", &p)).await.is_err(),
        "a second open case is refused by the store"
    );
}

fn referral(id: &str, key: &str) -> ReferralRow {
    ReferralRow {
        id: id.into(),
        referral_key: key.into(),
        case_id: None,
        resource_ref: Some("ServiceRequest/1".into()),
        channel: "amqp".into(),
        state: ReferralState::Incomplete,
        fhir_status: "active".into(),
        incomplete_reasons: "[\"no NHS number on the patient\"]".into(),
        content_hash: "h1".into(),
        source_updated_at: None,
        authored_at: Some(10),
        received_at: 20,
        completed_at: None,
        source_ods: Some("A81001".into()),
        source_kind: "gp-practice".into(),
        is_multiple: 0,
        decision: ips_bridge::store::StoredDecision(None),
        decline_reason: None,
        decided_at: None,
        decided_by: None,
        assistance_commenced_at: None,
        updated_at: 20,
        raw: "{}".into(),
        origin: None,
    }
}

async fn referral_round_trip(s: Arc<dyn Store>) {
    let mut tx = s.begin().await.unwrap();
    let mut r = referral("r1", "sys|1");
    tx.referral_insert(&r).await.unwrap();
    tx.commit().await.unwrap();
    // A failed statement aborts the whole unit of work on PostgreSQL, so it gets its own.
    let mut tx = s.begin().await.unwrap();
    assert!(
        tx.referral_insert(&referral("r2", "sys|1")).await.is_err(),
        "referral key is unique"
    );
    drop(tx);
    let mut tx = s.begin().await.unwrap();
    r.state = ReferralState::Accepted;
    r.decision = ips_bridge::store::StoredDecision(Some(
        ips_bridge::domain::referral::DecisionOutcome::Accepted,
    ));
    r.decided_at = Some(30);
    tx.referral_update(&r).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.referral_get("r1").await.unwrap(), Some(r.clone()));
    assert_eq!(s.referral_by_key("sys|1").await.unwrap().unwrap().id, "r1");
    assert_eq!(s.referrals_in_state("accepted", 10).await.unwrap().len(), 1);
    assert_eq!(
        s.referral_state_counts().await.unwrap(),
        vec![("accepted".to_string(), 1)]
    );
}

async fn migrate_is_idempotent(s: Arc<dyn Store>) {
    s.migrate().await.unwrap();
    s.ping().await.unwrap();
}

async fn purge_keeps_recent_rows_and_pending_work(s: Arc<dyn Store>) {
    let mut tx = s.begin().await.unwrap();
    let old = InboxEntry {
        processed_at: 100,
        ..inbox("old")
    };
    let new = InboxEntry {
        processed_at: 900,
        ..inbox("new")
    };
    tx.inbox_record(&old).await.unwrap();
    tx.inbox_record(&new).await.unwrap();
    tx.outbox_add(&outbox("delivered-long-ago", "k1"), 0)
        .await
        .unwrap();
    tx.outbox_add(&outbox("delivered-recently", "k2"), 0)
        .await
        .unwrap();
    tx.outbox_add(&outbox("still-pending", "k3"), 0)
        .await
        .unwrap();
    tx.outbox_add(&outbox("parked", "k4"), 0).await.unwrap();
    tx.commit().await.unwrap();
    let rows = s.outbox_claim(0, 10, 10).await.unwrap();
    let id = |k: &str| rows.iter().find(|r| r.dedupe_key == k).unwrap().id;
    s.outbox_settle(&[
        Settlement::Done {
            id: id("delivered-long-ago"),
            at: 100,
            result: None,
        },
        Settlement::Done {
            id: id("delivered-recently"),
            at: 900,
            result: None,
        },
        Settlement::Failed {
            id: id("parked"),
            error: "400".into(),
        },
    ])
    .await
    .unwrap();
    assert_eq!(s.purge(500, 500).await.unwrap(), (1, 1));
    let mut tx = s.begin().await.unwrap();
    assert!(
        tx.inbox_record(&old).await.unwrap(),
        "purged: an old id is new again"
    );
    assert!(
        !tx.inbox_record(&new).await.unwrap(),
        "kept: a recent id is still a duplicate"
    );
    drop(tx);
    assert!(
        s.outbox_by_key("delivered-long-ago")
            .await
            .unwrap()
            .is_none()
    );
    for kept in ["delivered-recently", "still-pending", "parked"] {
        assert!(
            s.outbox_by_key(kept).await.unwrap().is_some(),
            "{kept} must be kept"
        );
    }
}

async fn inbox_batch_marks_repeats_within_the_batch(s: Arc<dyn Store>) {
    let mut tx = s.begin().await.unwrap();
    tx.inbox_record(&inbox("seen-before")).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    let fresh = tx
        .inbox_record_many(&[inbox("a"), inbox("seen-before"), inbox("b"), inbox("a")])
        .await
        .unwrap();
    assert_eq!(fresh, vec![true, false, true, false]);
    tx.commit().await.unwrap();
    assert_eq!(s.inbox_count("amqp").await.unwrap(), 3);
}

/// Handlers see what they wrote earlier in the same unit of work (rows are
/// buffered until commit), and commit writes it all.
async fn unit_of_work_reads_its_own_writes_and_flushes_them(s: Arc<dyn Store>) {
    use ips_bridge::store::pending::Prefetch;
    let mut tx = s.begin().await.unwrap();
    tx.prefetch(&Prefetch {
        referral_keys: vec!["k1".into()],
        nhs_hashes: vec!["h1".into()],
        appointment_keys: vec!["a1".into()],
        outreach: true,
    })
    .await
    .unwrap();
    assert_eq!(tx.referral_by_key("k1").await.unwrap(), None);
    let p = tx
        .patient_upsert("h1", "9912003888", "p1", 1)
        .await
        .unwrap();
    assert_eq!(
        tx.patient_upsert("h1", "9912003888", "p-other", 1)
            .await
            .unwrap(),
        p
    );
    tx.case_insert(&case("c1", &p)).await.unwrap();
    assert_eq!(tx.case_count_referral("c1").await.unwrap(), 2);
    let mut r = referral("r1", "k1");
    r.case_id = Some("c1".into());
    tx.referral_insert(&r).await.unwrap();
    assert!(
        tx.referral_insert(&referral("r9", "k1")).await.is_err(),
        "the key is taken within the unit of work"
    );
    r.state = ReferralState::AwaitingDecision;
    tx.referral_update(&r).await.unwrap();
    assert_eq!(
        tx.referral_by_id("r1").await.unwrap().unwrap().state,
        ReferralState::AwaitingDecision
    );
    assert_eq!(tx.referrals_for_case("c1").await.unwrap().len(), 1);
    assert_eq!(
        tx.patient_nhs_number(&p).await.unwrap().as_deref(),
        Some("9912003888")
    );
    assert_eq!(tx.case_get("c1").await.unwrap().unwrap().referral_count, 2);
    tx.outbox_add(&outbox("e1", "c1"), 1).await.unwrap();
    tx.audit(
        &AuditEntry {
            actor: "t".into(),
            action: "a".into(),
            resource_type: "referral".into(),
            resource_id: "r1".into(),
            detail: None,
        },
        1,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let stored = s.referral_get("r1").await.unwrap().unwrap();
    assert_eq!(
        (stored.state.as_str(), stored.case_id.as_deref()),
        ("awaiting-decision", Some("c1"))
    );
    assert_eq!(s.case_get("c1").await.unwrap().unwrap().referral_count, 2);
    assert_eq!(s.outbox_counts().await.unwrap(), (1, 0));
    assert_eq!(s.audit_for("r1").await.unwrap().len(), 1);
    // A later unit of work sees the committed rows through the database.
    let mut tx = s.begin().await.unwrap();
    assert_eq!(
        tx.patient_by_hash("h1").await.unwrap().as_deref(),
        Some(p.as_str())
    );
    assert_eq!(tx.case_open_for(&p).await.unwrap().unwrap().id, "c1");
    assert_eq!(tx.referrals_for_case("c1").await.unwrap()[0].id, "r1");
}

fn episode(id: &str, case_id: &str, opened_at: i64) -> ips_bridge::store::EpisodeRow {
    ips_bridge::store::EpisodeRow {
        id: id.into(),
        case_id: case_id.into(),
        rule_id: "rule".into(),
        status: ips_bridge::store::EpisodeStatus::Active,
        opened_at,
        due_at: opened_at + 10,
        risk: "{}".into(),
        trigger_key: format!("trigger-{id}"),
        resolved_at: None,
        resolution: None,
        updated_at: opened_at,
    }
}

/// A case's outreach state (facts, episodes, last contact) as a unit of
/// work sees it: loaded by the batch prefetch for open cases, overlaid with
/// the unit's own writes, and flushed at commit.
async fn outreach_state_is_read_once_and_follows_its_writes(s: Arc<dyn Store>) {
    use ips_bridge::store::AttemptRow;
    use ips_bridge::store::pending::Prefetch;
    let mut tx = s.begin().await.unwrap();
    let p = tx
        .patient_upsert("h2", "9000000009", "p2", 1)
        .await
        .unwrap();
    tx.case_insert(&case("c2", &p)).await.unwrap();
    // A new case holds nothing, and its writes are seen before commit.
    assert!(tx.facts_for_case("c2").await.unwrap().is_empty());
    assert!(tx.episode_active("c2").await.unwrap().is_none());
    tx.fact_upsert("a2", "c2", "{\"n\":1}", 1).await.unwrap();
    tx.fact_upsert("a1", "c2", "{\"n\":0}", 1).await.unwrap();
    tx.episode_insert(&episode("e1", "c2", 5)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        s.facts_for_case_read("c2").await.unwrap(),
        vec!["{\"n\":0}".to_string(), "{\"n\":1}".to_string()],
        "buffered facts were written at commit, in key order"
    );

    // A later unit of work loads the case in bulk through the prefetch.
    let mut tx = s.begin().await.unwrap();
    tx.prefetch(&Prefetch {
        nhs_hashes: vec!["h2".into()],
        outreach: true,
        ..Prefetch::default()
    })
    .await
    .unwrap();
    assert_eq!(tx.facts_for_case("c2").await.unwrap().len(), 2);
    assert_eq!(tx.episode_active("c2").await.unwrap().unwrap().id, "e1");
    assert_eq!(tx.last_contact("c2").await.unwrap(), None);
    tx.fact_upsert("a2", "c2", "{\"n\":2}", 2).await.unwrap();
    tx.episode_resolve("e1", 7, "attended").await.unwrap();
    assert!(tx.episode_active("c2").await.unwrap().is_none());
    tx.episode_insert(&episode("e2", "c2", 8)).await.unwrap();
    assert_eq!(tx.episode_latest("c2").await.unwrap().unwrap().id, "e2");
    let attempt = |id: &str, outcome: &str, at: i64| AttemptRow {
        id: id.into(),
        attempt_key: format!("key-{id}"),
        case_id: "c2".into(),
        episode_id: Some("e2".into()),
        method: "phone".into(),
        outcome: outcome.into(),
        attempted_at: at,
        specialist: "es".into(),
        note: None,
        created_at: at,
    };
    assert!(
        tx.attempt_insert(&attempt("t1", "no-answer", 20))
            .await
            .unwrap()
    );
    assert_eq!(
        tx.last_contact("c2").await.unwrap(),
        None,
        "no answer is no contact"
    );
    assert!(
        tx.attempt_insert(&attempt("t2", "contacted", 30))
            .await
            .unwrap()
    );
    assert!(
        !tx.attempt_insert(&attempt("t2", "contacted", 40))
            .await
            .unwrap()
    );
    assert_eq!(tx.last_contact("c2").await.unwrap(), Some(30));
    assert_eq!(
        tx.facts_for_case("c2").await.unwrap(),
        vec!["{\"n\":0}".to_string(), "{\"n\":2}".to_string()]
    );
    tx.commit().await.unwrap();

    // Without a prefetch, a case is loaded on first use and sees the commits.
    let mut tx = s.begin().await.unwrap();
    assert_eq!(tx.last_contact("c2").await.unwrap(), Some(30));
    assert_eq!(tx.episode_active("c2").await.unwrap().unwrap().id, "e2");
    assert_eq!(tx.episode_latest("c2").await.unwrap().unwrap().id, "e2");
    assert_eq!(
        tx.facts_for_case("c2").await.unwrap(),
        vec!["{\"n\":0}".to_string(), "{\"n\":2}".to_string()]
    );
    drop(tx);
    let episodes = s.episodes_for_case("c2").await.unwrap();
    assert_eq!(
        episodes
            .iter()
            .map(|e| (e.id.as_str(), e.status.as_str()))
            .collect::<Vec<_>>(),
        vec![("e1", "resolved"), ("e2", "active")]
    );
}

async fn team_records_round_trip_into_the_snapshot(s: Arc<dyn Store>) {
    use ips_bridge::store::{AssignmentRow, JobRow, StaffRow, StatusRow};
    let mut tx = s.begin().await.unwrap();
    let p = tx
        .patient_upsert("hash-t", "9912003888", "p-t", 1)
        .await
        .unwrap();
    tx.case_insert(&case("case-t", &p)).await.unwrap();
    let job = JobRow {
        id: "job-1".into(),
        job_key: "case-t:id:j1".into(),
        case_id: "case-t".into(),
        employer: "Acme, \"Ltd\"".into(),
        started_on: "2026-08-04".into(),
        hours_band: "04".into(),
        hours_per_week: Some(3.5),
        paid: 1,
        recorded_by: "alice".into(),
        ended_on: None,
        end_reason: None,
        created_at: 10,
        updated_at: 10,
    };
    assert!(tx.job_insert(&job).await.unwrap());
    assert!(
        !tx.job_insert(&JobRow {
            id: "job-2".into(),
            ..job.clone()
        })
        .await
        .unwrap(),
        "same key, same job"
    );
    let found = tx
        .job_find("case-t", "nope", "job-1")
        .await
        .unwrap()
        .expect("by row id");
    assert_eq!(found, job);
    assert!(
        tx.job_find("other-case", "case-t:id:j1", "job-1")
            .await
            .unwrap()
            .is_none(),
        "only the case's own jobs"
    );
    let ended = JobRow {
        ended_on: Some("2026-08-20".into()),
        end_reason: Some("contract ended".into()),
        updated_at: 20,
        ..job.clone()
    };
    tx.job_update_end(&ended).await.unwrap();
    let st = StatusRow {
        id: "st-1".into(),
        status_key: "k1".into(),
        case_id: "case-t".into(),
        status: "02".into(),
        recorded_on: "2026-08-03".into(),
        started_on: None,
        hours_band: None,
        recorded_by: "alice".into(),
        created_at: 5,
    };
    assert!(tx.status_insert(&st).await.unwrap());
    assert!(
        !tx.status_insert(&StatusRow {
            id: "st-2".into(),
            ..st.clone()
        })
        .await
        .unwrap()
    );
    let a = AssignmentRow {
        case_id: "case-t".into(),
        specialist: "alice".into(),
        assigned_by: "lena".into(),
        assigned_at: 7,
    };
    assert_eq!(tx.assignment_set(&a).await.unwrap(), None);
    assert_eq!(
        tx.assignment_set(&AssignmentRow {
            specialist: "bob".into(),
            ..a.clone()
        })
        .await
        .unwrap(),
        Some("alice".into())
    );
    tx.commit().await.unwrap();

    s.staff_seen(&StaffRow {
        sub: "bob".into(),
        name: "Bob".into(),
        roles: "specialist".into(),
        last_seen_at: 1,
    })
    .await
    .unwrap();
    s.staff_seen(&StaffRow {
        sub: "bob".into(),
        name: "Bob B".into(),
        roles: "specialist,admin".into(),
        last_seen_at: 2,
    })
    .await
    .unwrap();
    assert_eq!(s.staff_list().await.unwrap().len(), 1);
    assert_eq!(s.jobs_for_case("case-t").await.unwrap(), vec![ended]);
    assert_eq!(s.statuses_for_case("case-t").await.unwrap(), vec![st]);
    assert_eq!(
        s.case_nhs_numbers().await.unwrap(),
        vec![("case-t".to_owned(), "9912003888".to_owned())]
    );
    let snap = store::team_snapshot(s.as_ref(), &[("carol".into(), "Carol".into())])
        .await
        .unwrap();
    assert_eq!(snap.cases.len(), 1);
    assert_eq!(snap.cases[0].specialist.as_deref(), Some("bob"));
    assert_eq!(snap.jobs[0].hours, Some(3.5));
    assert_eq!(
        snap.jobs[0].ended_on.map(|d| d.to_string()),
        Some("2026-08-20".into())
    );
    assert_eq!(snap.statuses.len(), 1);
    assert_eq!(
        snap.specialists.into_iter().collect::<Vec<_>>(),
        vec![
            ("bob".to_owned(), "Bob B".to_owned()),
            ("carol".to_owned(), "Carol".to_owned())
        ],
        "configured and signed-in specialists"
    );
}

/// MESH bookkeeping on both back-ends: the patient's practice (latest wins),
/// a delivery found by local id and by ITK id (any case), its update, the
/// counts by state, and a document's kept content (written once).
async fn mesh_deliveries_practices_and_kept_content(s: Arc<dyn Store>) {
    use ips_bridge::domain::documents::delivery::DeliveryState;
    use ips_bridge::store::{DeliveryRow, StoredDelivery};
    let row = DeliveryRow {
        local_id: "ips-doc-d1".into(),
        document_id: "d1".into(),
        case_id: "case-m".into(),
        itk_message_id: "6F1C2A34-5B6D-4E7F-8A9B-0C1D2E3F4A5B".into(),
        recipient_ods: Some("A81001".into()),
        mailbox: Some("X26ABC2".into()),
        state: StoredDelivery(DeliveryState::Sent),
        delivered_before: false,
        ack_level: None,
        ack_code: None,
        ack_text: None,
        created_at: 1,
        updated_at: 1,
    };
    let mut tx = s.begin().await.unwrap();
    assert_eq!(tx.practice_of("case-m").await.unwrap(), None);
    tx.practice_set("case-m", "A81001", 1).await.unwrap();
    tx.practice_set("case-m", "B82002", 2).await.unwrap();
    assert_eq!(
        tx.practice_of("case-m").await.unwrap().as_deref(),
        Some("B82002")
    );
    tx.delivery_insert(&row).await.unwrap();
    tx.content_insert("d1", "<html>first</html>", 1)
        .await
        .unwrap();
    tx.content_insert("d1", "<html>second</html>", 2)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = s.begin().await.unwrap();
    let mut found = tx
        .delivery_by_itk_id("6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b")
        .await
        .unwrap()
        .expect("found by the ITK id in another case");
    assert_eq!(found, row);
    found.state = StoredDelivery(DeliveryState::Accepted);
    found.delivered_before = true;
    found.ack_level = Some("business".into());
    found.ack_code = Some("30001".into());
    found.ack_text = Some("Patient known here".into());
    found.updated_at = 5;
    tx.delivery_update(&found).await.unwrap();
    assert_eq!(
        tx.delivery_by_local_id("ips-doc-d1").await.unwrap(),
        Some(found.clone())
    );
    assert_eq!(tx.delivery_by_local_id("ips-doc-none").await.unwrap(), None);
    tx.commit().await.unwrap();

    assert_eq!(s.deliveries_for_case("case-m").await.unwrap(), vec![found]);
    assert_eq!(
        s.delivery_counts().await.unwrap(),
        vec![("accepted".to_owned(), 1)]
    );
    assert_eq!(
        s.document_content("d1").await.unwrap().as_deref(),
        Some("<html>first</html>")
    );
    assert_eq!(s.document_content("d2").await.unwrap(), None);
}
