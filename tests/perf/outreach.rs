//! Assertive outreach latency (issue 13): a DNA published on the queue →
//! the outreach `Flag` written at the FHIR server (the machinery is
//! `record.rs`).
//!
//! The daemon runs with a rules file holding only "2 consecutive DNAs, warn
//! after the first", so the first DNA of an open case is what creates the
//! outreach episode and its Flag; the timed message is one `noshow`
//! Appointment per case.

use crate::fixtures::{self, Message};
use crate::latency::Plan;
use crate::record::{Case, Scenario};

/// The only discharge rule the daemon is given: the first DNA warns.
const RULES: &str = r#"[[rule]]
id = "bench-2-consecutive-dna"
name = "Benchmark: discharged after 2 consecutive DNAs"
kind = "consecutive_dna"
threshold = 2
warn_before = { dnas = 1 }
"#;

pub const SCENARIO: Scenario = Scenario {
    name: "DNA → Flag",
    tag: "outreach",
    resource: "Flag",
    rules: Some(RULES),
    prepare: |_| Ok(vec![]),
    timed: dna,
    key: "appointment",
};

/// A `noshow` Appointment (started in the past) for the case's patient.
fn dna(c: &Case) -> anyhow::Result<Message> {
    Ok(Message {
        id: format!("{}-dna", c.value),
        body: serde_json::to_vec(&fixtures::appointment(&c.value, &c.nhs, "noshow"))?,
        referral_value: None,
    })
}

pub fn note(plan: &Plan) -> String {
    format!(
        "DNA → Flag: the daemon (SQLite) with one rule, 2 consecutive DNAs warned after the first; N = {:.0} cases opened by \
         referrals first (untimed), then one noshow Appointment per case published at {:.0} msg/s for {:.0} s. Latency = Flag \
         arrival − publish time, matched by the Flag's subject NHS number. Sink: wall time the POST /fhir/Flag reached the \
         sink's handler. FHIR sandbox: the Flag's meta.lastUpdated (stamped by the sandbox on write, same clock, 1 ms \
         resolution), read with paged searches after the run; the sandbox writes one request at a time (a Flag and a Task per \
         DNA), so past its write rate this figure includes its queue (reference only).",
        plan.rate * plan.duration.as_secs_f64(),
        plan.rate,
        plan.duration.as_secs_f64()
    )
}
