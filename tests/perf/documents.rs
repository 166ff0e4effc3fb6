//! Document latency (issue 17): a vocational profile's completion published
//! on the queue → its `DocumentReference` written at the FHIR server (the
//! machinery is `record.rs`).
//!
//! Each open case first gets its VP's required sections (untimed); the timed
//! message is `ips.document-complete.v1`. Completing writes the `Binary`
//! (a `PUT`), then the `DocumentReference` (a conditional create), then the
//! review `Task`, in that order per case: the figure includes the Binary.

use crate::fixtures::Message;
use crate::latency::Plan;
use crate::record::{Case, Scenario};
use serde_json::json;

pub const SCENARIO: Scenario = Scenario {
    name: "VP completed → DocumentReference",
    tag: "documents",
    resource: "DocumentReference",
    rules: None,
    prepare: sections,
    timed: complete,
    key: "ips.es",
};

/// The VP template's required sections (config/questionnaires).
fn sections(c: &Case) -> anyhow::Result<Vec<Message>> {
    let body = json!({
        "type": "ips.document-sections.v1", "case_id": c.case_id, "kind": "vp",
        "session_date": "2026-11-24", "specialist": "ES bench",
        "sections": [
            {"id": "work-goal", "text": "Warehouse work, part time."},
            {"id": "work-history", "text": "Retail 2018-2022."},
            {"id": "job-preferences", "text": "Days; near home."},
            {"id": "support-wanted", "text": "Help with applications."},
        ],
    });
    Ok(vec![Message {
        id: format!("{}-sections", c.value),
        body: serde_json::to_vec(&body)?,
        referral_value: None,
    }])
}

fn complete(c: &Case) -> anyhow::Result<Message> {
    let body = json!({"type": "ips.document-complete.v1", "case_id": c.case_id,
        "kind": "vp", "specialist": "ES bench"});
    Ok(Message {
        id: format!("{}-complete", c.value),
        body: serde_json::to_vec(&body)?,
        referral_value: None,
    })
}

pub fn note(plan: &Plan) -> String {
    format!(
        "VP completed → DocumentReference: the daemon (SQLite, documents routed to FHIR); N = {:.0} cases opened by referrals \
         and given their VP's required sections first (untimed), then one ips.document-complete.v1 per case published at \
         {:.0} msg/s for {:.0} s. Latency = DocumentReference arrival − publish time, matched by its subject NHS number; it \
         includes the Binary PUT written before it. Sink and sandbox as for DNA → Flag.",
        plan.rate * plan.duration.as_secs_f64(),
        plan.rate,
        plan.duration.as_secs_f64()
    )
}
