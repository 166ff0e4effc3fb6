//! The fault tests' mixed stream and its checker (issue 17).
//!
//! [`Plan`] builds, for P patients, the messages an IPS service sends in the
//! shapes the other process tests use: a BaRS referral, an accept decision,
//! booked appointments, two consecutive DNAs for half of them (the "2
//! consecutive DNAs" rule warns at the first), an outreach attempt, a note,
//! VP sections and the VP's completion. Each message has its own AMQP
//! message id. [`Plan::check`] computes what that stream must leave behind
//! from what was sent, never from what was observed, and compares: every
//! message processed and none dead-lettered, every FHIR resource exactly
//! once by business identifier, every event at least once under one message
//! id, the audit rows of each case in the order its messages were sent, and
//! the events of each case in that order too.
//!
//! The daemon reads "now" from a [`SoakClock`] file that ticks with real
//! time from a fixed instant; once the stream is done the clock jumps three
//! weeks, and the "no contact for 28 days" rule's durable timer flags every
//! case not flagged by its DNAs: a timer that must fire once per case.

pub mod check;
pub mod support;
// Not every test binary uses each of them.
#[allow(unused_imports)]
pub use support::{Rng, SoakClock, collect_until_quiet, rows};

use super::effects::{audit_count, inbox_count, outbox_undelivered, settle_queue};
use super::fixtures::{Referral, appointment, nhs_number};
use super::{FHIR_JSON, Names, Pub, eventually};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

/// The discharge rules of the soak: DNAs flag at once, silence by timer.
pub const RULES: &str = r#"
[[rule]]
id = "primary-care-2-dnas"
name = "Primary care: discharged after 2 consecutive DNAs"
kind = "consecutive_dna"
threshold = 2
warn_before = { dnas = 1 }

[[rule]]
id = "no-contact-28-days"
name = "No contact for 28 days"
kind = "no_contact_for"
days = 28
warn_before = { days = 7 }
"#;

/// How far the clock jumps after the stream: past the no-contact warning
/// (21 days after a case opens), before the waiting-list target (6 weeks).
pub const JUMP_DAYS: i64 = 22;

const SECTIONS: [(&str, &str); 10] = [
    (
        "work-goal",
        "Work in a cafe kitchen, about 16 hours a week.",
    ),
    ("work-history", "Kitchen porter 2019-2021."),
    ("education-training", "Food hygiene level 2."),
    ("job-preferences", "Mornings; near the bus route."),
    ("strengths-skills", "Reliable, works well in a team."),
    ("barriers", "Gaps in CV."),
    ("health-coping", "Walks help."),
    ("benefits-finances", "Universal Credit."),
    ("disclosure", "Happy for the employer to know."),
    ("support-wanted", "Help with CV and interview practice."),
];

/// The daemon settings every fault test uses, beside the rules and clock files.
pub fn settings<'a>(rules: &'a str, clock: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("IPS__OUTREACH__RULES_FILE", rules),
        ("IPS__CLOCK__FILE", clock),
        ("IPS__DOCUMENTS__REVIEW_DUE", "60d"),
        ("IPS__OUTBOX__LEASE", "2s"),
        ("IPS__TIMERS__POLL_INTERVAL", "200ms"),
    ]
}

/// Writes [`RULES`] into `dir`; returns the path as a setting.
pub fn rules_file(dir: &Path) -> String {
    let p = dir.join("discharge-rules.toml");
    std::fs::write(&p, RULES).expect("rules file");
    p.display().to_string()
}

/// One inbound message: body, content type, AMQP message id, whose it is.
pub struct Msg {
    pub id: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub patient: usize,
}

/// One patient's part of the stream.
pub struct Patient {
    pub nhs: String,
    pub referral: String,
    pub dna: bool,
    pub attempt: bool,
    pub note: bool,
    pub vp: bool,
}

/// A referral's ids in the bridge, learnt once it has been received.
#[derive(Clone, Debug)]
pub struct Ids {
    pub referral_id: String,
    pub case_id: String,
}

/// The deterministic mixed stream for `patients.len()` patients.
pub struct Plan {
    pub tag: String,
    pub patients: Vec<Patient>,
    /// Booked (not yet held) appointments per patient: cheap filler, no FHIR write.
    pub booked: usize,
}

impl Plan {
    /// `p` patients from NHS number seed `seed`; half have two DNAs, a third
    /// an outreach attempt, a quarter a note, a fifth a completed VP.
    pub fn new(tag: &str, seed: u64, p: usize, booked: usize) -> Plan {
        let patients = (0..p)
            .map(|i| Patient {
                nhs: nhs_number(seed + i as u64 * 7),
                referral: format!("{tag}-ref-{i}"),
                dna: i % 2 == 0,
                attempt: i % 3 == 0,
                note: i % 4 == 0,
                vp: i % 5 == 0,
            })
            .collect();
        Plan {
            tag: tag.into(),
            patients,
            booked,
        }
    }

    /// Phase one: the referrals (every later message names the bridge's ids).
    pub fn referrals(&self) -> Vec<Msg> {
        self.patients
            .iter()
            .enumerate()
            .map(|(i, p)| Msg {
                id: format!("{}-{i}-referral", self.tag),
                body: json_bytes(&Referral::new(&p.referral, &p.nhs).bars_bundle()),
                content_type: FHIR_JSON,
                patient: i,
            })
            .collect()
    }

    /// One patient's messages after the referral, in the order they are sent.
    fn after_referral(&self, i: usize, ids: &Ids) -> Vec<Msg> {
        let p = &self.patients[i];
        let case = &ids.case_id;
        let mut out: Vec<(String, Value)> = vec![(
            "decision".into(),
            json!({"type": "ips.referral-decision.v1", "referral_id": ids.referral_id,
                "outcome": "accepted", "decided_by": "ES soak"}),
        )];
        let booked = |k: usize| {
            let mut a = appointment(&format!("{}-{i}-booked-{k}", self.tag), &p.nhs, "booked");
            a["start"] = json!(format!("2026-11-0{}T10:00:00Z", 1 + k % 9));
            a.as_object_mut().expect("object").remove("end");
            (format!("booked-{k}"), a)
        };
        let half = self.booked / 2;
        out.extend((0..half).map(booked));
        if p.dna {
            for (n, day) in [(1, 10), (2, 17)] {
                let mut a = appointment(&format!("{}-{i}-dna-{n}", self.tag), &p.nhs, "noshow");
                a["start"] = json!(format!("2026-11-{day}T10:00:00Z"));
                a.as_object_mut().expect("object").remove("end");
                out.push((format!("dna-{n}"), a));
            }
        }
        out.extend((half..self.booked).map(booked));
        if p.attempt {
            out.push(("attempt".into(), json!({"type": "ips.outreach-attempt.v1", "case_id": case,
                "attempt_id": format!("{}-{i}-attempt", self.tag), "method": "phone",
                "outcome": "no-answer", "attempted_at": "2026-11-22T14:00:00Z", "specialist": "ES soak"})));
        }
        if p.note {
            out.push((
                "note".into(),
                json!({"type": "ips.note.v1", "case_id": case,
                "note_id": format!("{}-{i}-note", self.tag), "contact_date": "2026-11-23",
                "text": "Talked about the CV.", "specialist": "ES soak"}),
            ));
        }
        if p.vp {
            let sections: Vec<Value> = SECTIONS
                .iter()
                .map(|(id, text)| json!({"id": id, "text": text}))
                .collect();
            out.push(("sections".into(), json!({"type": "ips.document-sections.v1", "case_id": case,
                "kind": "vp", "session_date": "2026-11-24", "specialist": "ES soak", "sections": sections})));
            out.push((
                "complete".into(),
                json!({"type": "ips.document-complete.v1", "case_id": case, "kind": "vp",
                "specialist": "ES soak"}),
            ));
        }
        out.into_iter()
            .map(|(what, v)| Msg {
                id: format!("{}-{i}-{what}", self.tag),
                content_type: if v["resourceType"].is_string() {
                    FHIR_JSON
                } else {
                    "application/json"
                },
                body: json_bytes(&v),
                patient: i,
            })
            .collect()
    }

    /// Phase two: every patient's later messages, interleaved round-robin
    /// across patients, each patient's in its own order.
    pub fn rest(&self, ids: &[Ids]) -> Vec<Msg> {
        let mut lists: Vec<std::collections::VecDeque<Msg>> = (0..self.patients.len())
            .map(|i| self.after_referral(i, &ids[i]).into())
            .collect();
        let mut out = vec![];
        while lists.iter().any(|l| !l.is_empty()) {
            for l in lists.iter_mut() {
                out.extend(l.pop_front());
            }
        }
        out
    }

    /// Every message of the plan (phase one plus phase two).
    pub fn total(&self) -> usize {
        self.patients
            .iter()
            .map(|p| {
                2 + self.booked
                    + 2 * usize::from(p.dna)
                    + usize::from(p.attempt)
                    + usize::from(p.note)
                    + 2 * usize::from(p.vp)
            })
            .sum()
    }

    /// The audit actions of patient `i`'s case, in the order they must be written.
    fn audit_sequence(&self, i: usize) -> Vec<&'static str> {
        let p = &self.patients[i];
        let mut s = vec!["referral.received", "referral.accepted"];
        s.extend(std::iter::repeat_n("appointment.recorded", self.booked / 2));
        if p.dna {
            // The first DNA's reassessment flags before its own audit row.
            s.extend([
                "outreach.flagged",
                "appointment.recorded",
                "appointment.recorded",
            ]);
        }
        s.extend(std::iter::repeat_n(
            "appointment.recorded",
            self.booked - self.booked / 2,
        ));
        if p.attempt {
            s.push("outreach.attempt-recorded");
        }
        if p.note {
            s.push("document.published");
        }
        if p.vp {
            s.extend(["document.draft-updated", "document.published"]);
        }
        if !p.dna {
            s.push("outreach.flagged"); // by the timer, after the clock's jump
        }
        s
    }

    /// Events every case must publish: routing key → how many distinct ones.
    pub fn expected_events(&self) -> BTreeMap<&'static str, usize> {
        let n = self.patients.len();
        let count = |f: fn(&Patient) -> bool| self.patients.iter().filter(|p| f(p)).count();
        BTreeMap::from([
            ("referral.received", n),
            ("referral.accepted", n),
            ("bars.servicerequest-response", n),
            ("outreach.flagged", n),
            ("document.published", count(|p| p.note) + count(|p| p.vp)),
        ])
    }
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}

/// A durable queue bound to every event the bridge publishes (it survives a
/// broker restart, unlike [`Pub::watch`]'s).
pub async fn watch_all(p: &Pub, n: &Names) -> String {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let q = format!("{}.soak-watch", n.events);
    p.ch.exchange_declare(
        n.events.as_str().into(),
        lapin::ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("events exchange");
    // A quorum queue: its messages outlive a broker restart whatever their
    // delivery mode.
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        lapin::types::AMQPValue::LongString("quorum".into()),
    );
    p.ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await
    .expect("watch queue");
    p.ch.queue_bind(
        q.as_str().into(),
        n.events.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind the watch queue");
    q
}

/// Publishes `msgs` in order, each confirmed; on a failure reconnects (the
/// broker may be away) and sends the same message id again. Returns how many
/// publishes had to be repeated.
pub async fn publish_all(p: &mut Pub, n: &Names, msgs: &[Msg]) -> usize {
    let mut repeats = 0;
    for m in msgs {
        loop {
            let sent = tokio::time::timeout(
                Duration::from_secs(5),
                p.publish(&n.exchange, "soak", &m.body, &m.id, m.content_type),
            )
            .await;
            if matches!(sent, Ok(Ok(()))) {
                break;
            }
            repeats += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok(Some(fresh)) =
                tokio::time::timeout(Duration::from_secs(2), connect_try(&n.url)).await
            {
                *p = fresh;
            }
        }
    }
    repeats
}

/// The test's publisher and every message id it has sent, which the checker
/// expects to find processed.
pub struct Sender {
    publisher: Pub,
    pub sent: HashSet<String>,
}

impl Sender {
    pub async fn connect(url: &str) -> Sender {
        Sender {
            publisher: connect_try(url).await.expect("RabbitMQ"),
            sent: HashSet::new(),
        }
    }

    /// [`publish_all`], remembering the ids; how many publishes were repeated.
    pub async fn send(&mut self, n: &Names, msgs: &[Msg]) -> usize {
        let repeats = publish_all(&mut self.publisher, n, msgs).await;
        self.sent.extend(msgs.iter().map(|m| m.id.clone()));
        repeats
    }
}

/// A confirm-mode publisher, `None` while the broker is unreachable.
pub async fn connect_try(url: &str) -> Option<Pub> {
    use lapin::{Connection, ConnectionProperties, options::ConfirmSelectOptions};
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .ok()?;
    let ch = conn.create_channel().await.ok()?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .ok()?;
    Some(Pub { _conn: conn, ch })
}

/// Waits until every referral of the plan is in the store; their ids by patient.
pub async fn referral_ids(plan: &Plan, db: &str, wait: Duration) -> Vec<Ids> {
    eventually(wait, "every referral received", || async {
        let got = rows(db, "SELECT referral_key, id, case_id FROM referrals").await;
        let by_key: HashMap<String, Ids> = got
            .into_iter()
            .filter_map(|r| {
                let key = r[0].clone()?;
                let ids = Ids {
                    referral_id: r[1].clone()?,
                    case_id: r[2].clone()?,
                };
                let ident = key.rsplit('|').next()?.to_owned();
                Some((ident, ids))
            })
            .collect();
        plan.patients
            .iter()
            .map(|p| by_key.get(&p.referral).cloned())
            .collect::<Option<Vec<Ids>>>()
    })
    .await
}

/// Waits until all `sent` message ids are in the inbox, the inbound queue is
/// settled and the outbox is empty.
pub async fn quiesce(db: &str, n: &Names, sent: usize, wait: Duration) {
    eventually(wait, "every message committed", || async {
        (inbox_count(db, "amqp").await as usize >= sent).then_some(())
    })
    .await;
    settle_queue(&n.url, &n.queue, wait).await;
    drained(db, wait).await;
}

/// Waits until nothing is left in the outbox.
pub async fn drained(db: &str, wait: Duration) {
    eventually(wait, "the outbox drained", || async {
        (outbox_undelivered(db).await == 0).then_some(())
    })
    .await;
}

/// After the clock's jump: waits for the timers to flag every case.
pub async fn timers_fired(plan: &Plan, db: &str, wait: Duration) {
    let want = plan.patients.len() as i64;
    eventually(wait, "every case flagged", || async {
        (audit_count(db, "outreach.flagged").await >= want).then_some(())
    })
    .await;
    drained(db, wait).await;
}

/// An event as the watch queue got it.
pub struct Event {
    pub key: String,
    pub message_id: String,
    pub body: Value,
}

/// Moves every event now in the watch queue `q` into `into` (waiting up to
/// `wait` for at least one).
pub async fn collect_events(p: &Pub, q: &str, wait: Duration, into: &mut Vec<Event>) {
    for m in p.drain(q, 1, wait).await {
        let key = m.delivery.routing_key.to_string();
        let message_id = m
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| panic!("a {key} event without a message id"));
        let body = serde_json::from_slice(&m.delivery.data).expect("event JSON");
        into.push(Event {
            key,
            message_id,
            body,
        });
    }
}
