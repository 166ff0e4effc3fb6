//! Gauges of stored state: the outbox, the waiting list, incomplete
//! referrals, outreach flags and their deadlines, MESH deliveries, overdue
//! reviews.
//!
//! Why a task of its own on a fixed interval (`http.metrics_refresh`): the
//! figures are counts over the store, so reading them on every scrape would
//! let each Prometheus (or a benchmark's poll) add queries to the store's
//! work; once per interval bounds that cost whatever scrapes. Every replica
//! reads the same store, so every replica reports the same figures, and a
//! restart does not zero them.

use super::{Engine, ms};
use crate::domain::documents::delivery::DeliveryState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// "Near their deadline": active outreach flags due within this window.
pub const DUE_SOON: Duration = Duration::from_secs(48 * 3600);

pub struct StoredGauges {
    pub engine: Engine,
    pub interval: Duration,
}

impl StoredGauges {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.refresh().await,
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Reads every figure once. A failed read leaves the last value (and is
    /// logged at debug: the store's own health is on `/readyz`).
    pub async fn refresh(&self) {
        let store = &self.engine.store;
        let now = ms(self.engine.now());
        match store.referral_state_counts().await {
            Ok(counts) => {
                let waiting = count_of(&counts, "accepted");
                metrics::gauge!("ips_waiting_list_size").set(waiting as f64);
                let incomplete = count_of(&counts, "incomplete");
                metrics::gauge!("ips_referrals_incomplete").set(incomplete as f64);
            }
            Err(e) => tracing::debug!(error = %e, "gauges: referral counts unavailable"),
        }
        if let Ok(oldest) = store.referral_oldest_in_state("incomplete").await {
            let age = oldest.map_or(0, |at| (now - at).max(0) / 1000);
            metrics::gauge!("ips_referrals_incomplete_oldest_seconds").set(age as f64);
        }
        if let Ok((pending, failed)) = store.outbox_counts().await {
            metrics::gauge!("ips_outbox_pending").set(pending as f64);
            metrics::gauge!("ips_outbox_failed").set(failed as f64);
        }
        let soon = now + DUE_SOON.as_millis() as i64;
        if let Ok(o) = store.outreach_counts(now, soon).await {
            metrics::gauge!("ips_outreach_flags_active").set(o.active as f64);
            metrics::gauge!("ips_outreach_flags_due_soon").set(o.due_soon as f64);
            metrics::gauge!("ips_outreach_flags_overdue").set(o.overdue as f64);
            metrics::gauge!("ips_outreach_closures_by_rule").set(o.closures_by_rule as f64);
        }
        // Documents sent over MESH, by state: a growing `unacknowledged` or
        // `rejected` is what to alert on. States with no rows read 0.
        if let Ok(counts) = store.delivery_counts().await {
            use strum::IntoEnumIterator;
            for state in DeliveryState::iter() {
                let n = count_of(&counts, state.as_str());
                metrics::gauge!("ips_document_deliveries", "state" => state.as_str()).set(n as f64);
            }
        }
        if let Ok(overdue) = store.reviews_overdue(now).await {
            metrics::gauge!("ips_document_reviews_overdue").set(overdue as f64);
        }
    }
}

/// The count a `GROUP BY` read gave `key`; 0 when it has no row.
fn count_of(counts: &[(String, i64)], key: &str) -> i64 {
    counts.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n)
}
