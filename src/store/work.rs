//! Work that replicas share: outbox delivery bookkeeping and durable timers.

use super::{OutboxRow, Result, Settlement, TimerRow};
use async_trait::async_trait;

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims due outbox rows (respecting per-ordering-key order) until
    /// `lease_until` (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
    async fn outbox_claim(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<OutboxRow>>;
    /// Renews the lease of rows still in flight.
    async fn outbox_extend(&self, ids: &[i64], until: i64) -> Result<()>;
    /// Records how deliveries ended, in one transaction (a group commit).
    /// Only pending rows change: a row settled already stays as it is.
    async fn outbox_settle(&self, outcomes: &[Settlement]) -> Result<()>;
    /// `(pending, failed)` row counts.
    async fn outbox_counts(&self) -> Result<(i64, i64)>;
    async fn outbox_by_key(&self, dedupe_key: &str) -> Result<Option<OutboxRow>>;
    /// Parked rows (status `failed`), oldest first, of one kind or all.
    async fn outbox_failed(&self, kind: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>>;
    /// Puts parked rows back to be delivered now, with their attempts
    /// counted afresh (the last error is kept until the next outcome);
    /// returns how many. Rows not parked are left alone.
    async fn outbox_requeue(&self, ids: &[i64], now: i64) -> Result<u64>;
}

#[async_trait]
pub trait TimerStore: Send + Sync {
    async fn timers_due(&self, now: i64, limit: i64) -> Result<Vec<TimerRow>>;
    /// Every timer not fired yet, soonest first.
    async fn timers_all(&self) -> Result<Vec<TimerRow>>;
    /// When the next timer is due, if any.
    async fn timer_next_due(&self) -> Result<Option<i64>>;
}
