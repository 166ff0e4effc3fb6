//! PostgreSQL back-end: for several replicas.
//!
//! Replicas share the outbox; a claim takes rows with `FOR UPDATE SKIP LOCKED`
//! so two replicas never deliver the same row at once, and the lease
//! (`claimed_until`) hands a row to another replica if its claimer dies.

use super::sql::{
    appointment_cols, bind_referral, case_cols, impl_sql_store, outbox_cols, referral_cols,
    referral_data_cols,
};
use crate::config::StoreSettings;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(s: &StoreSettings) -> super::Result<Self> {
        let mut opts = PgConnectOptions::from_str(&s.url)?;
        if s.password.is_set() {
            opts = opts.password(s.password.expose());
        }
        let pool = PgPoolOptions::new()
            .max_connections(s.max_connections)
            .connect_with(opts)
            .await?;
        Ok(PgStore { pool })
    }

    async fn begin_tx(&self) -> super::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

impl_sql_store!(
    PgStore,
    PgTx,
    sqlx::Postgres,
    backend = "postgres",
    claim = concat!(
        "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 WHERE id IN (",
        "SELECT o.id FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= $2 ",
        "AND (o.claimed_until IS NULL OR o.claimed_until < $2) ",
        "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ordering_key = o.ordering_key AND p.status = 'pending' AND p.id < o.id) ",
        "ORDER BY o.id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING ",
        outbox_cols!()
    ),
    migrator = sqlx::migrate!("src/store/migrations/postgres")
);
