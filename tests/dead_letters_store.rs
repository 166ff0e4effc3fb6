//! The dead-letter store contract, on SQLite and on PostgreSQL.

mod common;

use common::*;
use ips_bridge::store::dead_letters::{self, DeadLetterFilter, DeadLetters, NewDeadLetter};
use std::sync::Arc;

async fn sqlite() -> (Option<tempfile::TempDir>, Arc<dyn DeadLetters>) {
    let (dir, url) = temp_sqlite_url();
    (Some(dir), open(&url).await)
}

async fn postgres() -> (Option<tempfile::TempDir>, Arc<dyn DeadLetters>) {
    (None, open(&fresh_pg_database().await).await)
}

async fn open(url: &str) -> Arc<dyn DeadLetters> {
    let s = settings(url, "http://127.0.0.1:1/fhir", &Names::new(), &[]);
    let (store, letters) = dead_letters::connect(&s.store).await.unwrap();
    store.migrate().await.unwrap();
    letters
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test] async fn $name() { let (_d, s) = super::sqlite().await; super::$name(s).await; } )* }
        mod on_postgres { $( #[tokio::test] async fn $name() { let (_d, s) = super::postgres().await; super::$name(s).await; } )* }
    };
}

contract!(
    a_redelivered_rejection_keeps_one_row,
    a_different_body_under_the_same_id_is_another_dead_letter,
    everything_needed_for_a_replay_survives,
    list_filters_by_code_and_replay_state_and_pages,
    a_replay_mark_never_hides_a_newer_rejection,
);

fn letter<'a>(id: &'a str, code: &'a str, body: &'a [u8]) -> NewDeadLetter<'a> {
    NewDeadLetter {
        source_queue: "q.inbound",
        message_id: id,
        error_code: code,
        reason: "a reason",
        exchange: "clinical.events",
        routing_key: "bars.referral",
        properties: r#"{"message_id":"m"}"#,
        body,
    }
}

fn everything() -> DeadLetterFilter {
    DeadLetterFilter {
        include_replayed: true,
        limit: 100,
        ..Default::default()
    }
}

async fn a_redelivered_rejection_keeps_one_row(s: Arc<dyn DeadLetters>) {
    let a = s
        .dead_letter_record(&letter("m-1", "invalid-json", b"x"), 10)
        .await
        .unwrap();
    let b = s
        .dead_letter_record(&letter("m-1", "invalid-json", b"x"), 20)
        .await
        .unwrap();
    assert_eq!(a, b);
    let rows = s.dead_letters_list(&everything()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].rejections, rows[0].rejected_at), (2, 20));
}

async fn a_different_body_under_the_same_id_is_another_dead_letter(s: Arc<dyn DeadLetters>) {
    let a = s
        .dead_letter_record(&letter("m-1", "invalid-json", b"x"), 10)
        .await
        .unwrap();
    let b = s
        .dead_letter_record(&letter("m-1", "invalid-json", b"y"), 10)
        .await
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(s.dead_letters_list(&everything()).await.unwrap().len(), 2);
}

async fn everything_needed_for_a_replay_survives(s: Arc<dyn DeadLetters>) {
    let body: Vec<u8> = (0..=255u8).collect();
    let id = s
        .dead_letter_record(&letter("m-1", "too-big", &body), 10)
        .await
        .unwrap();
    let r = s.dead_letter_get(id).await.unwrap().unwrap();
    assert_eq!(r.body, body, "binary bodies are kept byte for byte");
    assert_eq!(
        (
            r.source_queue.as_str(),
            r.exchange.as_str(),
            r.routing_key.as_str()
        ),
        ("q.inbound", "clinical.events", "bars.referral")
    );
    assert_eq!(r.properties, r#"{"message_id":"m"}"#);
    assert_eq!(
        (r.error_code.as_str(), r.reason.as_str()),
        ("too-big", "a reason")
    );
    assert_eq!(r.body_sha256, dead_letters::body_sha256(&body));
    let found = s
        .dead_letter_find("q.inbound", "m-1", &r.body_sha256)
        .await
        .unwrap();
    assert_eq!(found.map(|f| f.id), Some(id));
    assert!(
        s.dead_letter_find("q.other", "m-1", &r.body_sha256)
            .await
            .unwrap()
            .is_none()
    );
}

async fn list_filters_by_code_and_replay_state_and_pages(s: Arc<dyn DeadLetters>) {
    for i in 0..5 {
        let code = if i % 2 == 0 {
            "invalid-json"
        } else {
            "too-big"
        };
        s.dead_letter_record(&letter(&format!("m-{i}"), code, b"x"), i)
            .await
            .unwrap();
    }
    let by_code = DeadLetterFilter {
        error_code: Some("too-big".into()),
        limit: 100,
        ..Default::default()
    };
    let ids: Vec<String> = s
        .dead_letters_list(&by_code)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.message_id)
        .collect();
    assert_eq!(ids, ["m-1", "m-3"]);

    let first = s.dead_letters_list(&everything()).await.unwrap()[0].clone();
    assert!(
        s.dead_letter_mark_replayed(first.id, first.rejections, 99)
            .await
            .unwrap()
    );
    let waiting = DeadLetterFilter {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(s.dead_letters_list(&waiting).await.unwrap().len(), 4);
    assert_eq!(s.dead_letters_list(&everything()).await.unwrap().len(), 5);

    let page = DeadLetterFilter {
        limit: 2,
        ..everything()
    };
    let p1 = s.dead_letters_list(&page).await.unwrap();
    let p2 = s
        .dead_letters_list(&DeadLetterFilter {
            after_id: p1[1].id,
            ..page.clone()
        })
        .await
        .unwrap();
    assert_eq!((p1.len(), p2.len()), (2, 2));
    assert!(p2[0].id > p1[1].id);
    let by_message = DeadLetterFilter {
        message_id: Some("m-4".into()),
        ..everything()
    };
    assert_eq!(s.dead_letters_list(&by_message).await.unwrap().len(), 1);
}

async fn a_replay_mark_never_hides_a_newer_rejection(s: Arc<dyn DeadLetters>) {
    let id = s
        .dead_letter_record(&letter("m-1", "invalid-json", b"x"), 10)
        .await
        .unwrap();
    let seen = s.dead_letter_get(id).await.unwrap().unwrap();
    // The replayed copy is rejected again before the replay marks the row.
    s.dead_letter_record(&letter("m-1", "invalid-json", b"x"), 20)
        .await
        .unwrap();
    assert!(
        !s.dead_letter_mark_replayed(id, seen.rejections, 30)
            .await
            .unwrap()
    );
    let r = s.dead_letter_get(id).await.unwrap().unwrap();
    assert_eq!((r.replayed_at, r.replay_count), (None, 0), "still waiting");

    assert!(
        s.dead_letter_mark_replayed(id, r.rejections, 40)
            .await
            .unwrap()
    );
    assert!(
        !s.dead_letter_mark_replayed(id, r.rejections, 41)
            .await
            .unwrap(),
        "marked once"
    );
    // Rejected again after the replay: waiting again, on the same row.
    let again = s
        .dead_letter_record(&letter("m-1", "too-big", b"x"), 50)
        .await
        .unwrap();
    assert_eq!(again, id);
    let r = s.dead_letter_get(id).await.unwrap().unwrap();
    assert_eq!(
        (
            r.replayed_at,
            r.replay_count,
            r.rejections,
            r.error_code.as_str()
        ),
        (None, 1, 3, "too-big")
    );
}
