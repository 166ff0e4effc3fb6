//! SQLite back-end: the embedded default for a single replica.
//!
//! WAL mode lets readers (API, probes) run beside the writer; every unit of
//! work starts with `BEGIN IMMEDIATE` so that it takes the write lock up front
//! and never fails half-way with `SQLITE_BUSY` on lock upgrade.
//! `synchronous = FULL`: a commit is on disk before the broker gets its ack.

use super::sql::{
    appointment_cols, bind_referral, case_cols, impl_sql_store, outbox_cols, referral_cols,
    referral_data_cols,
};
use crate::config::StoreSettings;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(s: &StoreSettings) -> super::Result<Self> {
        let opts = SqliteConnectOptions::from_str(&s.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(s.busy_timeout)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(s.max_connections)
            .connect_with(opts)
            .await?;
        Ok(SqliteStore { pool })
    }

    async fn begin_tx(&self) -> super::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl_sql_store!(
    SqliteStore,
    SqliteTx,
    sqlx::Sqlite,
    backend = "sqlite",
    claim = concat!(
        "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 WHERE id IN (",
        "SELECT o.id FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= $2 ",
        "AND (o.claimed_until IS NULL OR o.claimed_until < $2) ",
        "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ordering_key = o.ordering_key AND p.status = 'pending' AND p.id < o.id) ",
        "ORDER BY o.id LIMIT $3) RETURNING ",
        outbox_cols!()
    ),
    migrator = sqlx::migrate!("src/store/migrations/sqlite")
);
