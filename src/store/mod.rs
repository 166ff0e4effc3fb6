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

mod admin;
pub mod dead_letters;
mod documents;
mod nodelay;
mod outreach;
pub mod pending;
mod postgres;
mod reads;
pub mod rekey;
mod rows;
mod sql;
mod sqlite;
mod team;
mod tx;
mod work;

pub use admin::StoreAdmin;
pub use documents::{
    CommentRow, DeliveryRow, DocumentReads, DocumentRow, DocumentStatus, DocumentTx, DraftRow,
    StoredDelivery, StoredKind, StoredReview,
};
pub use outreach::{
    AttemptRow, ClosureByRuleRow, EpisodeRow, EpisodeStatus, OutreachCounts, OutreachReads,
    OutreachTx, appointment_facts,
};
pub use reads::Reads;
pub use rekey::PatientHashes;
pub use rows::*;
pub use team::{
    AssignmentRow, JobRow, SnapshotRows, StaffRow, StatusRow, TeamStore, TeamTx, parse_date,
    roster, team_snapshot,
};
pub use tx::Tx;
pub use work::{OutboxStore, TimerStore};

use crate::config::StoreSettings;
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

/// Everything a store does outside a unit of work, by concern. The engine
/// holds an `Arc<dyn Store>`; bring the concern traits into scope with
/// `use crate::store::prelude::*`.
pub trait Store:
    StoreAdmin
    + Reads
    + OutreachReads
    + DocumentReads
    + TeamStore
    + OutboxStore
    + TimerStore
    + PatientHashes
{
}

impl<
    T: StoreAdmin
        + Reads
        + OutreachReads
        + DocumentReads
        + TeamStore
        + OutboxStore
        + TimerStore
        + PatientHashes,
> Store for T
{
}

/// Import this to call store methods on an `Arc<dyn Store>` or a `dyn Tx`.
pub mod prelude {
    pub use super::{
        DocumentReads, DocumentTx, OutboxStore, OutreachReads, OutreachTx, PatientHashes, Reads,
        Store, StoreAdmin, TeamStore, TeamTx, TimerStore, Tx,
    };
}

/// Opens the store named by `store.url`.
pub async fn connect(s: &StoreSettings) -> Result<Arc<dyn Store>> {
    if s.url.starts_with("postgres://") || s.url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(s).await?))
    } else {
        Ok(Arc::new(sqlite::SqliteStore::connect(s).await?))
    }
}
