//! The metrics catalogue is complete: every metric the code records is
//! listed in `telemetry::catalog::METRICS`, and a fresh process exports every
//! listed metric (so alert rules and the dashboard never name a series that
//! only appears after its first event).

use ips_bridge::telemetry::{catalog, init_metrics};
use std::collections::BTreeSet;
use std::path::Path;

/// Metric names recorded anywhere under `src/` (`counter!("ips_…"`, etc.).
fn names_in_source(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            names_in_source(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for macro_ in ["counter!(", "gauge!(", "histogram!("] {
                for (i, _) in text.match_indices(macro_) {
                    let rest = text[i + macro_.len()..].trim_start();
                    if let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next())
                        && name.starts_with("ips_")
                    {
                        out.insert(name.to_owned());
                    }
                }
            }
        }
    }
}

#[test]
fn every_recorded_metric_is_in_the_catalogue() {
    let mut used = BTreeSet::new();
    names_in_source(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut used,
    );
    assert!(used.len() > 20, "the scan found too few names: {used:?}");
    let listed: BTreeSet<String> = catalog::METRICS.iter().map(|m| m.name.to_owned()).collect();
    let missing: Vec<_> = used.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "recorded but not in the catalogue: {missing:?}"
    );
}

#[test]
fn a_fresh_process_exports_every_listed_metric() {
    let handle = init_metrics();
    catalog::register_zero(&["primary-care-2-dna"]);
    let text = handle.render();
    let typed: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let absent: Vec<_> = catalog::METRICS
        .iter()
        .map(|m| m.name)
        .filter(|n| !typed.contains(n))
        .collect();
    assert!(
        absent.is_empty(),
        "not exported at start: {absent:?}\n{text}"
    );
    // Histograms have buckets (the dashboard takes quantiles over them).
    for m in catalog::METRICS
        .iter()
        .filter(|m| m.kind == catalog::Kind::Histogram)
    {
        assert!(
            text.contains(&format!("# TYPE {} histogram", m.name)),
            "{} is not exported as a histogram:\n{text}",
            m.name
        );
    }
    // A counter an alert watches with increase() starts at 0 for every code.
    assert!(
        text.contains("ips_dead_letters_total{code=\"invalid-json\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("ips_outbox_parked_total{kind=\"mesh-send\"} 0"),
        "{text}"
    );
    // Registering again does not reset what was counted.
    metrics::counter!("ips_timers_fired_total").increment(3);
    catalog::register_zero(&[]);
    assert!(handle.render().contains("ips_timers_fired_total 3"));
}
