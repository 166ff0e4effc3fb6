//! The soak checker: what the stream must have left, from what was sent.

use super::{Event, Ids, Plan, rows};
use crate::common::Names;
use crate::common::Sandbox;
use crate::common::effects::{audit_count, queue_counts};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What the checker counted, for the test's summary line.
pub struct Counted {
    pub fhir: usize,
    pub events: usize,
    pub duplicate_events: usize,
}

/// The identifier values of every resource of `rt`, each with its resource.
async fn by_identifier(sb: &Sandbox, rt: &str) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    for r in sb.search_all(&format!("{rt}?_count=1000")).await {
        let key = r["identifier"][0]["value"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("id:{}", r["id"].as_str().unwrap_or("?")));
        out.entry(key).or_default().push(r);
    }
    out
}

fn subject_nhs(r: &Value) -> String {
    let s = if r["resourceType"] == "Task" {
        &r["for"]
    } else {
        &r["subject"]
    };
    s["identifier"]["value"].as_str().unwrap_or("").to_owned()
}

impl Plan {
    /// Checks everything the stream must have left, against what was sent.
    /// `sent` is every message id published; `got` every event collected
    /// from the [`super::watch_all`] queue.
    pub async fn check(
        &self,
        ids: &[Ids],
        sent: &HashSet<String>,
        db: &str,
        sb: &Sandbox,
        n: &Names,
        got: &[Event],
    ) -> Counted {
        // 1. Every message processed once, none dead-lettered, the queue empty.
        assert_eq!(
            sent.len(),
            self.total(),
            "the plan's messages were all sent"
        );
        let inbox = rows(
            db,
            "SELECT message_id, outcome FROM inbox WHERE source = 'amqp'",
        )
        .await;
        let outcomes: HashMap<String, String> = inbox
            .into_iter()
            .filter_map(|r| Some((r[0].clone()?, r[1].clone()?)))
            .collect();
        for id in sent {
            assert_eq!(
                outcomes.get(id).map(String::as_str),
                Some("applied"),
                "message {id} not applied"
            );
        }
        assert_eq!(
            outcomes.len(),
            sent.len(),
            "the inbox holds only our messages"
        );
        let dead = rows(db, "SELECT CAST(COUNT(*) AS TEXT) FROM dead_letters").await;
        assert_eq!(dead[0][0].as_deref(), Some("0"), "nothing dead-lettered");
        assert_eq!(queue_counts(&n.url, &n.dlq), (0, 0), "the DLQ is empty");
        assert_eq!(queue_counts(&n.url, &n.queue), (0, 0), "the queue is empty");

        // 2. FHIR: every resource exactly once by business identifier.
        let nhs_of: HashMap<&str, usize> = self
            .patients
            .iter()
            .enumerate()
            .map(|(i, p)| (p.nhs.as_str(), i))
            .collect();
        let mut fhir = 0;
        let mut per_patient: Vec<BTreeMap<String, usize>> =
            vec![BTreeMap::new(); self.patients.len()];
        let mut doc_ids = HashSet::new();
        for rt in ["Task", "Flag", "Communication", "DocumentReference"] {
            for (ident, found) in by_identifier(sb, rt).await {
                assert_eq!(found.len(), 1, "{rt} {ident} written {} times", found.len());
                fhir += 1;
                let r = &found[0];
                let i = *nhs_of
                    .get(subject_nhs(r).as_str())
                    .unwrap_or_else(|| panic!("{rt} {ident} about nobody we sent"));
                let what = match (rt, ident.as_str()) {
                    ("Task", v) if v.starts_with("referral-decision-") => {
                        assert_eq!(v, format!("referral-decision-{}", ids[i].referral_id));
                        "decision-task"
                    }
                    ("Task", v) if v.starts_with("outreach-task-") => "outreach-task",
                    ("Task", v) if v.starts_with("ips-document-review-") => "review-task",
                    ("Flag", v) if v.starts_with("outreach-flag-") => "flag",
                    ("Communication", _) => "communication",
                    ("DocumentReference", v) => {
                        doc_ids.insert(v.trim_start_matches("ips-document-").to_owned());
                        let code = r["type"]["coding"][0]["code"].as_str().unwrap_or("");
                        if code == "ips-contact-note" {
                            "note"
                        } else {
                            "vp"
                        }
                    }
                    _ => panic!("unexpected {rt} {ident}"),
                };
                *per_patient[i].entry(what.to_owned()).or_default() += 1;
            }
        }
        let binaries = by_identifier(sb, "Binary").await;
        fhir += binaries.len();
        let binary_ids: HashSet<String> = binaries
            .values()
            .flatten()
            .filter_map(|b| b["id"].as_str())
            .map(|id| id.trim_start_matches("ips-doc-").to_owned())
            .collect();
        assert_eq!(binary_ids, doc_ids, "one Binary per DocumentReference");
        for (i, p) in self.patients.iter().enumerate() {
            let want: BTreeMap<String, usize> = [
                ("decision-task", 1),
                ("outreach-task", 1),
                ("flag", 1),
                ("review-task", usize::from(p.vp)),
                ("communication", usize::from(p.attempt)),
                ("note", usize::from(p.note)),
                ("vp", usize::from(p.vp)),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.to_owned(), n))
            .collect();
            assert_eq!(per_patient[i], want, "FHIR resources of patient {i}");
        }

        // 3. Events: each at least once, copies under one message id.
        let case_of: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .flat_map(|(i, x)| [(x.case_id.as_str(), i), (x.referral_id.as_str(), i)])
            .collect();
        let mut distinct: BTreeMap<String, HashMap<String, Value>> = BTreeMap::new();
        let mut duplicate_events = 0;
        for e in got {
            let copies = distinct.entry(e.key.clone()).or_default();
            match copies.get(&e.message_id) {
                Some(first) => {
                    duplicate_events += 1;
                    assert_eq!(
                        first, &e.body,
                        "copies of {} {} differ",
                        e.key, e.message_id
                    );
                }
                None => {
                    copies.insert(e.message_id.clone(), e.body.clone());
                }
            }
        }
        let counts: BTreeMap<&str, usize> = distinct
            .iter()
            .map(|(k, v)| (k.as_str(), v.len()))
            .collect();
        assert_eq!(counts, self.expected_events(), "distinct events by kind");
        // One message id per subject: a republished event that got a new id
        // would be a second subject entry here.
        let mut timeline: Vec<Vec<(OffsetDateTime, String)>> = vec![vec![]; self.patients.len()];
        for (key, events) in &distinct {
            let mut subjects = HashSet::new();
            for body in events.values() {
                let subject = match key.as_str() {
                    "document.published" => body["document_id"].as_str(),
                    "bars.servicerequest-response" => body["id"].as_str(),
                    k if k.starts_with("referral.") => body["referral_id"].as_str(),
                    _ => body["case_id"].as_str(),
                };
                assert!(
                    subjects.insert(subject.map(str::to_owned)),
                    "{key} twice for {subject:?}"
                );
                if let Some(at) = body["occurred_at"].as_str() {
                    let case = body["case_id"].as_str().unwrap_or("");
                    let i = *case_of
                        .get(case)
                        .unwrap_or_else(|| panic!("{key} for an unknown case"));
                    let at = OffsetDateTime::parse(at, &Rfc3339).expect("occurred_at");
                    timeline[i].push((at, key.clone()));
                }
            }
        }

        // 4. Per-patient order, from the events' times: referral received,
        // accepted, the DNA flag, the note, the VP; a timer's flag last.
        for (i, p) in self.patients.iter().enumerate() {
            let t = &mut timeline[i];
            t.sort_by_key(|e| e.0);
            let at = |k: &str| {
                t.iter()
                    .filter(|e| e.1 == k)
                    .map(|e| e.0)
                    .collect::<Vec<_>>()
            };
            let (rec, acc, flag, docs) = (
                at("referral.received"),
                at("referral.accepted"),
                at("outreach.flagged"),
                at("document.published"),
            );
            assert!(rec[0] <= acc[0], "patient {i}: accepted before received");
            if p.dna {
                assert!(acc[0] <= flag[0], "patient {i}: flagged before accepted");
            } else {
                assert!(
                    docs.iter().chain(&acc).all(|d| *d < flag[0]),
                    "patient {i}: timer flag early"
                );
            }
            assert!(
                docs.iter().all(|d| acc[0] <= *d),
                "patient {i}: published before accepted"
            );
        }

        // 5. Audit rows match the writes: per case, in the order sent.
        let referral_case: HashMap<String, String> = ids
            .iter()
            .map(|x| (x.referral_id.clone(), x.case_id.clone()))
            .collect();
        let appt_case: HashMap<String, String> = rows(db, "SELECT id, case_id FROM appointments")
            .await
            .into_iter()
            .filter_map(|r| Some((r[0].clone()?, r[1].clone()?)))
            .collect();
        let audit = rows(db, "SELECT action, resource_id FROM audit ORDER BY id").await;
        let mut actions: HashMap<String, Vec<String>> = HashMap::new();
        for r in audit {
            let (Some(action), Some(res)) = (r[0].clone(), r[1].clone()) else {
                continue;
            };
            let case = referral_case
                .get(&res)
                .or_else(|| appt_case.get(&res))
                .cloned()
                .unwrap_or(res);
            actions.entry(case).or_default().push(action);
        }
        let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
        for (i, x) in ids.iter().enumerate() {
            let want = self.audit_sequence(i);
            for a in &want {
                *totals.entry(a).or_default() += 1;
            }
            assert_eq!(
                actions.get(&x.case_id).cloned().unwrap_or_default(),
                want,
                "audit of patient {i}'s case, in order"
            );
        }
        for (action, n) in totals {
            assert_eq!(audit_count(db, action).await, n, "audit rows {action}");
        }
        Counted {
            fhir,
            events: got.len(),
            duplicate_events,
        }
    }
}
