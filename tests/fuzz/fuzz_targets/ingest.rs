//! The whole synchronous ingest path over arbitrary bytes: the guard
//! (size, UTF-8, depth, string length, duplicate keys), the classifier
//! (resource types, BaRS event + focus status, ES events) and the mapping
//! each command goes through before the engine (identifier systems,
//! references by `fullUrl`, BaRS keys, NHS numbers, dates). Whatever the
//! bytes, none of it may panic; results are discarded.
//!
//! Inputs are message bodies as they are (a seed is a file as it would be
//! published). The AMQP `type` property goes with the body's length, so the
//! same body also reaches the ES event reader when mutations change it.
#![no_main]

use ips_bridge::config::Settings;
use ips_bridge::ingest::classify::{
    Envelope, classify, classify_fhir, classify_polled_appointment, classify_polled_document_input,
    classify_polled_referral,
};
use ips_bridge::ingest::fhir_view::Resolver;
use ips_bridge::ingest::{Reading, guard};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The embedded defaults, with the DoS service ids of the published BaRS
/// examples and of the test fixtures, so their referrals are IPS referrals.
static READING: LazyLock<Reading> = LazyLock::new(|| {
    let env = [
        (
            "IPS__INTAKE__BARS_SERVICE_IDS",
            "2000072489,111111111,2222222222",
        ),
        (
            "IPS__INTAKE__PERFORMER_REFERENCES",
            "HealthcareService/ips,https://fhir.nhs.uk/Id/ods-organization-code|RX4",
        ),
        ("IPS__INTAKE__CMHT_ODS_CODES", "RX4,A81001"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let s = Settings::load_from(None, env).expect("the embedded default settings load");
    Reading::from_settings(&s)
});

/// AMQP `type` properties the consumer sees (ES events are `ips.*.v1`).
const MESSAGE_TYPES: &[Option<&str>] = &[
    None,
    Some("ips.referral-decision.v1"),
    Some("ips.outreach-attempt.v1"),
    Some("ips.case-closed.v1"),
    Some("ips.unknown.v1"),
    Some("bars"),
];

fuzz_target!(|body: &[u8]| {
    let r = &*READING;
    let env = Envelope {
        content_type: Some("application/fhir+json"),
        message_type: MESSAGE_TYPES[body.len() % MESSAGE_TYPES.len()],
    };
    // What the AMQP consumer does with a delivery.
    if let Ok(cmd) = classify(body, &env, &r.limits, &r.rules) {
        // Debug is what an operator's trace would show: it must not panic either.
        let _ = format!("{cmd:?}");
    }
    // What the FHIR poller does with a resource it fetched (no other resources).
    if let Ok(value) = guard::parse(body, &r.limits) {
        let fetched = Resolver::default();
        let _ = classify_polled_referral(value.clone(), &fetched, &r.rules);
        let _ = classify_polled_appointment(value.clone(), &fetched);
        let _ = classify_polled_document_input(value.clone(), &fetched, &r.rules);
        if let Ok(cmd) = classify_fhir(value, &r.limits, &r.rules) {
            let _ = format!("{cmd:?}");
        }
    }
});
