//! Hostile input against the real daemon process, real RabbitMQ and the FHIR
//! sandbox: every message of `tests/fixtures/hostile/` (not JSON, XML, empty,
//! truncated, a top-level array, too deep, duplicate keys, invalid UTF-8, NUL,
//! a number out of range, wrong resource types, invalid codes, an
//! Appointment that ends before it starts, an unknown event type, markup, an
//! NHS number with a bad check digit) and three built here because of their
//! size (a string over the string limit, a body over the size limit, a BaRS
//! Bundle of 20,000 entries), each published with a valid referral right
//! behind it.
//!
//! Shows: each hostile message is dead-lettered with its reason code (in the
//! dead-letter store and the DLQ's header), or read and stored safely (the
//! bad NHS number keeps the referral as incomplete; markup is kept as the
//! sender's text, never a column of HTML); the daemon never exits and stays
//! ready; every valid referral behind them is processed; the whole corpus
//! drains before a generous deadline; and none of the hostile values (each
//! carries the marker `HOSTILE`) appears in the daemon's log.
//!
//! Run on SQLite, and on PostgreSQL, whose text columns refuse U+0000 (a
//! NUL that reached a column would fail the batch on every redelivery).

mod common;

use common::daemon::Daemon;
use common::effects::referrals;
use common::fixtures::*;
use common::*;
use ips_bridge::store::dead_letters::{self, DeadLetterFilter};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Generous: the corpus drains in seconds; this only catches a stall.
const DRAIN: Duration = Duration::from_secs(120);
const MARKER: &str = "HOSTILE";

/// What must become of a hostile message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Dead-lettered with this reason code.
    Dead(&'static str),
    /// Read and acknowledged, but not acted on (no referral).
    Ignored,
    /// Kept as a referral in this state.
    Referral(&'static str),
}

/// The committed corpus and what each file must come to.
const FILES: &[(&str, Expect)] = &[
    ("not-json.txt", Expect::Dead("invalid-json")),
    ("xml.xml", Expect::Dead("invalid-json")),
    ("empty.json", Expect::Dead("invalid-json")),
    ("truncated.json", Expect::Dead("invalid-json")),
    ("top-level-array.json", Expect::Dead("not-a-resource")),
    ("too-deep.json", Expect::Dead("json-too-deep")),
    (
        "unsupported-resource-type.json",
        Expect::Dead("unsupported-resource-type"),
    ),
    (
        "unknown-resource-type.json",
        Expect::Dead("unknown-resource-type"),
    ),
    ("invalid-status.json", Expect::Dead("invalid-code")),
    ("invalid-snomed.json", Expect::Ignored),
    ("duplicate-keys.json", Expect::Dead("duplicate-json-key")),
    (
        "duplicate-key-names.json",
        Expect::Dead("duplicate-json-key"),
    ),
    ("invalid-utf8.json", Expect::Dead("invalid-utf8")),
    ("nul-byte.json", Expect::Dead("invalid-json")),
    ("nul-escape.json", Expect::Dead("invalid-json")),
    ("number-out-of-range.json", Expect::Dead("invalid-json")),
    (
        "appointment-end-before-start.json",
        Expect::Dead("invalid-element"),
    ),
    ("es-unknown-type.json", Expect::Dead("unknown-event-type")),
    ("bars-unknown-booking.json", Expect::Dead("missing-focus")),
    ("bad-nhs-check-digit.json", Expect::Referral("incomplete")),
    ("markup.json", Expect::Referral("awaiting-decision")),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/hostile/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The hostile messages too big to commit, built at the default limits.
fn generated() -> Vec<(String, Vec<u8>, Expect)> {
    let huge_string = json!({"resourceType": "ServiceRequest", "id": "x",
        "note": [{"text": format!("{MARKER}-huge-{}", "x".repeat(1 << 20))}]});
    let mut over_size = Referral::new("HOSTILE-over-size", &nhs_number(7)).bars_bundle();
    over_size["entry"][1]["resource"]["note"] = Value::Array(
        (0..5)
            .map(|_| json!({"text": format!("{MARKER}-big-{}", "y".repeat(900_000))}))
            .collect(),
    );
    let mut many = Referral::new("HOSTILE-many", &nhs_number(8)).bars_bundle();
    let entries = many["entry"].as_array_mut().expect("entries");
    for i in 0..20_000 {
        entries.push(json!({"fullUrl": format!("urn:uuid:{MARKER}-{i}"),
            "resource": {"resourceType": "Basic", "id": format!("b{i}")}}));
    }
    let body = |v: &Value| serde_json::to_vec(v).expect("JSON");
    vec![
        (
            "huge-string".into(),
            body(&huge_string),
            Expect::Dead("string-too-long"),
        ),
        (
            "over-size".into(),
            body(&over_size),
            Expect::Dead("message-too-large"),
        ),
        (
            "bundle-20000-entries".into(),
            body(&many),
            Expect::Dead("too-many-entries"),
        ),
    ]
}

/// Referral states the API lists, to find every referral wherever it went.
const STATES: &[&str] = &["incomplete", "awaiting-decision"];

/// Referral business identifier value -> state, as the API lists them.
async fn referral_states(d: &Daemon) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in STATES {
        for r in referrals(&d.api, s).await {
            if let Some(v) = r["source_record"]["identifier"]["value"].as_str() {
                out.insert(v.to_owned(), s.to_string());
            }
        }
    }
    out
}

async fn run(db: Option<String>) {
    let mut d = Daemon::start_with(Names::new(), db, &[]).await;
    let mut corpus: Vec<(String, Vec<u8>, Expect)> = FILES
        .iter()
        .map(|(name, e)| (name.to_string(), fixture(name), *e))
        .collect();
    corpus.extend(generated());
    let run = uid();

    // Each hostile message, then a valid referral right behind it.
    let mut valid = BTreeSet::new();
    for (i, (name, body, _)) in corpus.iter().enumerate() {
        d.p.publish(&d.n.exchange, "hostile", body, name, FHIR_JSON)
            .await
            .unwrap_or_else(|e| panic!("publish {name}: {e}"));
        let id = format!("valid-{run}-{i}");
        let r = Referral::new(&id, &nhs_number(1000 + i as u64));
        let ok = serde_json::to_vec(&r.bars_bundle()).expect("JSON");
        d.p.publish(&d.n.exchange, "bars", &ok, &id, FHIR_JSON)
            .await
            .expect("publish a valid referral");
        valid.insert(id);
    }

    let dead: BTreeMap<&str, &str> = corpus
        .iter()
        .filter_map(|(n, _, e)| match e {
            Expect::Dead(code) => Some((n.as_str(), *code)),
            _ => None,
        })
        .collect();
    let kept: BTreeMap<String, &str> = corpus
        .iter()
        .filter_map(|(_, b, e)| match e {
            Expect::Referral(state) => {
                let v: Value = serde_json::from_slice(b).expect("kept fixtures are JSON");
                let id = v["entry"][1]["resource"]["identifier"][0]["value"]
                    .as_str()
                    .expect("the referral's identifier")
                    .to_owned();
                Some((id, *state))
            }
            _ => None,
        })
        .collect();

    // Drained: every dead letter in the broker's DLQ and every referral listed.
    let states = eventually(DRAIN, "the whole corpus drained", || async {
        let got = referral_states(&d).await;
        let all_in =
            valid.iter().all(|v| got.contains_key(v)) && kept.keys().all(|k| got.contains_key(k));
        (all_in && d.p.queue_depth(&d.n.dlq).await as usize == dead.len()).then_some(got)
    })
    .await;
    assert_eq!(
        d.p.queue_depth(&d.n.queue).await,
        0,
        "inbound queue drained"
    );

    // Every valid referral processed, once each; nothing else became one.
    for v in &valid {
        assert_eq!(states[v], "awaiting-decision", "valid referral {v}");
    }
    for (id, state) in &kept {
        assert_eq!(states[id].as_str(), *state, "{id}");
    }
    assert_eq!(
        states.len(),
        valid.len() + kept.len(),
        "referrals: {states:?}"
    );
    let received = common::effects::audit_count(&d.db, "referral.received").await;
    assert_eq!(received as usize, valid.len() + kept.len(), "audit rows");

    // The bad NHS number: kept, incomplete, with the reason named.
    let incomplete = referrals(&d.api, "incomplete").await;
    let bad = incomplete
        .iter()
        .find(|r| r["source_record"]["identifier"]["value"] == "HOSTILE-bad-nhs")
        .expect("the referral with the bad NHS number");
    let reasons = bad["incomplete_reasons"].to_string();
    assert!(reasons.to_lowercase().contains("nhs"), "{reasons}");

    // Markup is the sender's text, kept as such: the API (JSON) returns it
    // verbatim, never as HTML the bridge built.
    let markup = kept
        .keys()
        .find(|k| k.contains("<script>"))
        .expect("markup");
    assert!(states.contains_key(markup));

    // Dead letters: each with its reason code, in the store and the DLQ header.
    let s = common::settings(&d.db, "http://127.0.0.1:1/fhir", &d.n, &[]);
    let letters = dead_letters::connect(&s.store).await.expect("store").1;
    let rows = letters
        .dead_letters_list(&DeadLetterFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("dead letters");
    let stored: BTreeMap<&str, &str> = rows
        .iter()
        .map(|r| (r.message_id.as_str(), r.error_code.as_str()))
        .collect();
    assert_eq!(stored, dead, "dead letters by message id");
    let in_dlq =
        d.p.drain(&d.n.dlq, dead.len(), Duration::from_secs(5))
            .await;
    let headers: BTreeMap<String, String> = in_dlq
        .iter()
        .map(|m| {
            let id = m
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            (id, header(m, "x-ips-error-code").unwrap_or_default())
        })
        .collect();
    let want: BTreeMap<String, String> = dead
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(headers, want, "x-ips-error-code per message");
    for m in &in_dlq {
        let reason = header(m, "x-ips-error").unwrap_or_default();
        assert!(
            !reason.contains(MARKER),
            "DLQ reason echoes input: {reason}"
        );
    }

    // Still alive and ready.
    let ready = reqwest::get(format!("http://{}/readyz", d.addr))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    d.terminate(); // a clean exit also proves it was still running

    // No hostile value in the log; the log does say what happened.
    let logs = d.logs();
    if let Some(line) = logs.lines().find(|l| l.contains(MARKER)) {
        panic!("the daemon logged a hostile value: {line}");
    }
    assert!(
        logs.matches("dead-lettering inbound message").count() >= dead.len(),
        "{logs}"
    );
}

#[tokio::test]
async fn hostile_inputs_are_dead_lettered_or_kept_safely_and_never_stall_the_queue_sqlite() {
    run(None).await;
}

#[tokio::test]
async fn hostile_inputs_are_dead_lettered_or_kept_safely_and_never_stall_the_queue_postgres() {
    run(Some(fresh_pg_database().await)).await;
}
