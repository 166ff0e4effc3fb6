//! Durable state: one trait, two back-ends.
//!
//! Every inbound batch is applied in one unit of work ([`Tx`]) that holds the
//! inbox rows (dedupe), the state changes, the outbox rows for what must be
//! written elsewhere, and the audit rows. A unit of work reads in bulk
//! (`prefetch`) and buffers its new rows until commit ([`pending`]), so a
//! batch costs a handful of statements rather than several per message.
//! SQLite is the embedded default (one replica; writes queue on one writer
//! connection); PostgreSQL serves several replicas, which claim outbox work
//! with `FOR UPDATE SKIP LOCKED`. Both share their row-level SQL (`sql.rs`),
//! so a change to a query cannot reach one back-end and miss the other; only
//! the many-rows-at-once statements differ (multi-row `VALUES` for SQLite,
//! `UNNEST` over arrays for PostgreSQL). Times are milliseconds since the
//! epoch in both.

pub mod pending;
mod postgres;
pub mod rekey;
mod rows;
mod sql;
mod sqlite;

pub use rekey::PatientHashes;
pub use rows::*;

use crate::config::StoreSettings;
use async_trait::async_trait;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Operations outside a unit of work: reads for the API, outbox delivery bookkeeping.
#[async_trait]
pub trait Store: PatientHashes + Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> Result<()>;
    async fn begin(&self) -> Result<Box<dyn Tx>>;
    async fn ping(&self) -> Result<()>;
    async fn close(&self);

    async fn cursor(&self, source: &str) -> Result<Option<String>>;
    async fn inbox_count(&self, source: &str) -> Result<i64>;

    /// Claims due outbox rows (respecting per-ordering-key order) until `lease_until`.
    async fn outbox_claim(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<OutboxRow>>;
    /// Records how deliveries ended, all in one transaction (one commit per
    /// dispatcher round rather than one per row).
    async fn outbox_settle(&self, outcomes: &[Settlement]) -> Result<()>;
    /// `(pending, failed)` row counts.
    async fn outbox_counts(&self) -> Result<(i64, i64)>;
    async fn outbox_by_key(&self, dedupe_key: &str) -> Result<Option<OutboxRow>>;

    async fn case_get(&self, id: &str) -> Result<Option<CaseRow>>;
    async fn cases_list(&self, limit: i64, offset: i64) -> Result<Vec<CaseRow>>;
    async fn referrals_for_case(&self, case_id: &str) -> Result<Vec<ReferralRow>>;
    async fn referral_get(&self, id: &str) -> Result<Option<ReferralRow>>;
    async fn referral_by_key(&self, key: &str) -> Result<Option<ReferralRow>>;
    async fn referrals_in_state(&self, state: &str, limit: i64) -> Result<Vec<ReferralRow>>;
    async fn referral_state_counts(&self) -> Result<Vec<(String, i64)>>;
    async fn audit_for(&self, resource_id: &str) -> Result<Vec<AuditRow>>;
    async fn timers_due(&self, now: i64, limit: i64) -> Result<Vec<TimerRow>>;

    /// Deletes inbox rows processed before `inbox_before` and delivered outbox
    /// rows finished before `outbox_before`; returns `(inbox, outbox)` counts.
    async fn purge(&self, inbox_before: i64, outbox_before: i64) -> Result<(u64, u64)>;
}

/// One unit of work. Dropped without `commit`, it rolls back.
#[async_trait]
pub trait Tx: Send {
    /// Records a message in the inbox; `false` when it was seen before.
    async fn inbox_record(&mut self, e: &InboxEntry<'_>) -> Result<bool>;
    /// Records a batch of messages in one statement; `false` for each seen before
    /// (including a second occurrence within the batch).
    async fn inbox_record_many(&mut self, entries: &[InboxEntry<'_>]) -> Result<Vec<bool>>;
    /// Loads, in a few bulk queries, the rows a batch's commands will ask for.
    async fn prefetch(&mut self, want: &pending::Prefetch) -> Result<()>;

    /// Removes an inbox row recorded earlier in this unit of work (the message was then rejected).
    async fn inbox_forget(&mut self, source: &str, message_id: &str) -> Result<()>;

    async fn patient_by_hash(&mut self, nhs_hash: &str) -> Result<Option<String>>;
    async fn patient_nhs_number(&mut self, patient_id: &str) -> Result<Option<String>>;
    async fn patient_upsert(
        &mut self,
        nhs_hash: &str,
        nhs_number: &str,
        new_id: &str,
        now: i64,
    ) -> Result<String>;
    async fn case_open_for(&mut self, patient_id: &str) -> Result<Option<CaseRow>>;
    async fn case_get(&mut self, id: &str) -> Result<Option<CaseRow>>;
    async fn case_insert(&mut self, c: &CaseRow) -> Result<()>;
    async fn case_count_referral(&mut self, case_id: &str) -> Result<i64>;

    async fn referral_by_key(&mut self, key: &str) -> Result<Option<ReferralRow>>;
    async fn referral_by_id(&mut self, id: &str) -> Result<Option<ReferralRow>>;
    async fn referrals_for_case(&mut self, case_id: &str) -> Result<Vec<ReferralRow>>;
    async fn referral_insert(&mut self, r: &ReferralRow) -> Result<()>;
    async fn referral_update(&mut self, r: &ReferralRow) -> Result<()>;

    async fn appointment_by_key(&mut self, key: &str) -> Result<Option<AppointmentRow>>;
    async fn appointment_upsert(&mut self, a: &AppointmentRow) -> Result<()>;

    /// Queues an outbox row, written at commit; a row whose dedupe key exists already is dropped.
    async fn outbox_add(&mut self, o: &NewOutbox, now: i64) -> Result<()>;
    async fn audit(&mut self, a: &AuditEntry, now: i64) -> Result<()>;
    async fn cursor_set(&mut self, source: &str, cursor: &str, now: i64) -> Result<()>;
    async fn timer_set(
        &mut self,
        kind: &str,
        subject: &str,
        due_at: i64,
        payload: &str,
    ) -> Result<()>;
    async fn timer_fired(&mut self, id: i64, now: i64) -> Result<()>;

    async fn commit(self: Box<Self>) -> Result<()>;
}

/// Opens the store named by `store.url`.
pub async fn connect(s: &StoreSettings) -> Result<Arc<dyn Store>> {
    if s.url.starts_with("postgres://") || s.url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(s).await?))
    } else {
        Ok(Arc::new(sqlite::SqliteStore::connect(s).await?))
    }
}
