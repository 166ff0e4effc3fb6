//! SQLite back-end: the embedded default for a single replica.
//!
//! WAL mode lets readers (API, probes) run beside the writer; every unit of
//! work starts with `BEGIN IMMEDIATE` so that it takes the write lock up front
//! and never fails half-way with `SQLITE_BUSY` on lock upgrade.
//! `synchronous = FULL`: a commit is on disk before the broker gets its ack.

use super::sql::{
    appointment_cols, bind_referral, case_cols, impl_sql_store, outbox_claim_sql, outbox_cols,
    referral_cols, referral_data_cols,
};
use crate::config::StoreSettings;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;

/// Rows SQLite's worker thread may hand over before the async side reads
/// them. sqlx's default, 50, is less than one outbox claim (`batch_size`
/// rows, 256 by default): the worker then stopped mid-claim until a busy
/// runtime thread came back for more, several times per claim, while the
/// one writer connection was held. The write path gained 5–13% (two runs).
const ROW_BUFFER: usize = 1024;

/// The writer's page cache, negative: in KiB (SQLite's own convention).
const WRITER_CACHE_KIB: &str = "-32768";

pub struct SqliteStore {
    /// Readers (API, probes): WAL lets them run beside the writer.
    pool: SqlitePool,
    /// The one writer connection. SQLite admits one writer at a time anyway;
    /// queueing writers here, in sqlx's fair async queue, replaces SQLite's
    /// busy handler, which sleeps in growing steps (1, 2, 5, 10... ms) while a
    /// lock is held and made the consumer idle while the outbox dispatcher wrote.
    writer: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(s: &StoreSettings) -> super::Result<Self> {
        let opts = SqliteConnectOptions::from_str(&s.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(s.busy_timeout)
            .foreign_keys(true)
            .row_buffer_size(ROW_BUFFER);
        let pool = SqlitePoolOptions::new()
            .max_connections(s.max_connections)
            .connect_with(opts.clone())
            .await?;
        // The writer never checkpoints: SQLite's automatic checkpoint runs in
        // the committing connection once the WAL passes 1,000 pages, so now
        // and then one commit also copied the WAL into the database and
        // fsynced it, stalling every unit of work queued behind the one
        // writer (the DNA → Flag latency's p99). A reader connection
        // checkpoints instead, every second, in PASSIVE mode, which never
        // waits for or blocks the writer.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(s.busy_timeout.max(std::time::Duration::from_secs(30)))
            .connect_with(
                opts.pragma("wal_autocheckpoint", "0")
                    // A batch's transaction touches more pages than SQLite's
                    // default 2 MiB cache holds: it then spilled dirty pages
                    // to the WAL mid-transaction, and wrote them again at
                    // commit (`pagerStress`, 7% of the daemon's CPU during a
                    // drain). Pages are allocated only as they are used.
                    .pragma("cache_size", WRITER_CACHE_KIB)
                    // Statement journals (multi-row INSERTs in a transaction)
                    // in memory, not in temporary files written page by page.
                    .pragma("temp_store", "MEMORY"),
            )
            .await?;
        tokio::spawn(checkpoint_loop(pool.clone()));
        Ok(SqliteStore { pool, writer })
    }

    pub(super) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    async fn begin_tx(&self) -> super::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Copies the WAL into the database every second until the store closes
/// (see `connect`). A failed checkpoint is retried on the next tick; SQLite
/// also checkpoints when the last connection closes.
async fn checkpoint_loop(pool: SqlitePool) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::debug!(error = %e, "WAL checkpoint failed; retrying in a second");
        }
    }
}

/// The outbox claim on SQLite (see `outbox_claim_sql!` for the index hint).
macro_rules! sqlite_claim {
    () => {
        outbox_claim_sql!("outbox o INDEXED BY outbox_pending_id", "")
    };
}
const CLAIM: &str = sqlite_claim!();

impl_sql_store!(
    SqliteStore,
    SqliteTx,
    sqlx::Sqlite,
    backend = "sqlite",
    claim = CLAIM,
    lock = "",
    skip_locked = "",
    migrator = sqlx::migrate!("src/store/migrations/sqlite"),
    bulk = bulk
);

super::rekey::impl_patient_hashes!(SqliteStore);

/// Many rows at once, SQLite style: multi-row `VALUES` and `IN` lists, in
/// chunks that stay far below SQLite's limit of 32,766 bound variables.
/// (SQLite runs in-process, so one statement text per batch size costs
/// little.)
mod bulk {
    use crate::store::sql::{
        appointment_cols, appointment_upsert_set, case_cols, referral_cols, referral_data_cols,
    };
    use crate::store::{
        AppointmentRow, AuditEntry, CaseRow, InboxEntry, NewOutbox, ReferralRow, Result,
    };
    use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

    const CHUNK: usize = 200;

    fn in_list(head: &'static str, items: &[String]) -> QueryBuilder<Sqlite> {
        let mut q = QueryBuilder::new(head);
        let mut list = q.separated(", ");
        for i in items {
            list.push_bind(i);
        }
        q.push(")");
        q
    }

    /// The statement of [`settle_done`]. The `+` keeps SQLite from walking
    /// an index on `status` for every outcome (it chose that, a scan per
    /// JSON element, without it): the outcomes are read in turn and each
    /// row found by its id.
    pub(super) const SETTLE_DONE: &str = "UPDATE outbox SET status = 'done', done_at = j.at, result = j.result, \
         claimed_until = NULL, last_error = NULL \
         FROM (SELECT value ->> 0 AS id, value ->> 1 AS at, value ->> 2 AS result FROM json_each($1)) AS j \
         WHERE outbox.id = j.id AND +outbox.status = 'pending'";

    /// Marks delivered outbox rows done, `(id, done_at, result)`, in one
    /// statement of one shape whatever the count: the rows go as one JSON
    /// array, so the statement is prepared once and cached (a `VALUES`
    /// list of each group's length was prepared again at every commit).
    /// A row no longer pending is left as it is.
    pub async fn settle_done(
        c: &mut SqliteConnection,
        rows: &[(i64, i64, Option<&str>)],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_string(rows)
            .map_err(|e| crate::store::StoreError::Corrupt(format!("outcomes as JSON: {e}")))?;
        sqlx::query(SETTLE_DONE).bind(json).execute(&mut *c).await?;
        Ok(())
    }

    pub async fn insert_inbox(
        c: &mut SqliteConnection,
        entries: &[InboxEntry<'_>],
    ) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in entries.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO inbox (source, message_id, received_at, processed_at, kind, outcome) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.source)
                    .push_bind(e.message_id)
                    .push_bind(e.received_at)
                    .push_bind(e.processed_at)
                    .push_bind(e.kind)
                    .push_bind(e.outcome);
            });
            q.push(" ON CONFLICT (source, message_id) DO NOTHING RETURNING source, message_id");
            out.extend(
                q.build_query_as::<(String, String)>()
                    .fetch_all(&mut *c)
                    .await?,
            );
        }
        Ok(out)
    }

    pub async fn referrals_by_keys(
        c: &mut SqliteConnection,
        keys: &[String],
    ) -> Result<Vec<ReferralRow>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(CHUNK) {
            let mut q = in_list(
                concat!(
                    "SELECT ",
                    referral_cols!(),
                    " FROM referrals WHERE referral_key IN ("
                ),
                chunk,
            );
            out.extend(q.build_query_as().fetch_all(&mut *c).await?);
        }
        Ok(out)
    }

    pub async fn patients_by_hashes(
        c: &mut SqliteConnection,
        hashes: &[String],
    ) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in hashes.chunks(CHUNK) {
            let mut q = in_list(
                "SELECT id, nhs_hash FROM patients WHERE nhs_hash IN (",
                chunk,
            );
            out.extend(q.build_query_as().fetch_all(&mut *c).await?);
        }
        Ok(out)
    }

    pub async fn open_cases_for(
        c: &mut SqliteConnection,
        patient_ids: &[String],
    ) -> Result<Vec<CaseRow>> {
        let mut out = Vec::new();
        for chunk in patient_ids.chunks(CHUNK) {
            let mut q = in_list(
                concat!(
                    "SELECT ",
                    case_cols!(),
                    " FROM cases WHERE status = 'open' AND patient_id IN ("
                ),
                chunk,
            );
            out.extend(q.build_query_as().fetch_all(&mut *c).await?);
        }
        Ok(out)
    }

    pub async fn appointments_by_keys(
        c: &mut SqliteConnection,
        keys: &[String],
    ) -> Result<Vec<AppointmentRow>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(CHUNK) {
            let mut q = in_list(
                concat!(
                    "SELECT ",
                    appointment_cols!(),
                    " FROM appointments WHERE appointment_key IN ("
                ),
                chunk,
            );
            out.extend(q.build_query_as().fetch_all(&mut *c).await?);
        }
        Ok(out)
    }

    pub async fn insert_patients(
        c: &mut SqliteConnection,
        rows: &[(String, String, String, i64)],
    ) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO patients (id, nhs_hash, nhs_number, created_at) ",
            );
            q.push_values(chunk, |mut b, (id, hash, nhs, at)| {
                b.push_bind(id)
                    .push_bind(hash)
                    .push_bind(nhs)
                    .push_bind(*at);
            });
            q.build().execute(&mut *c).await?;
        }
        Ok(())
    }

    pub async fn insert_cases(c: &mut SqliteConnection, rows: &[&CaseRow]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let mut q =
                QueryBuilder::<Sqlite>::new(concat!("INSERT INTO cases (", case_cols!(), ") "));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.id)
                    .push_bind(&r.patient_id)
                    .push_bind(r.status.as_str())
                    .push_bind(r.opened_at)
                    .push_bind(r.closed_at)
                    .push_bind(&r.closed_reason)
                    .push_bind(r.referral_count);
            });
            q.build().execute(&mut *c).await?;
        }
        Ok(())
    }

    pub async fn insert_referrals(c: &mut SqliteConnection, rows: &[&ReferralRow]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(concat!(
                "INSERT INTO referrals (",
                referral_cols!(),
                ") "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.id)
                    .push_bind(&r.referral_key)
                    .push_bind(&r.case_id)
                    .push_bind(&r.resource_ref)
                    .push_bind(&r.channel)
                    .push_bind(r.state.as_str())
                    .push_bind(&r.fhir_status)
                    .push_bind(&r.incomplete_reasons)
                    .push_bind(&r.content_hash)
                    .push_bind(r.source_updated_at)
                    .push_bind(r.authored_at)
                    .push_bind(r.received_at)
                    .push_bind(r.completed_at)
                    .push_bind(&r.source_ods)
                    .push_bind(&r.source_kind)
                    .push_bind(r.is_multiple)
                    .push_bind(r.decision.as_str())
                    .push_bind(&r.decline_reason)
                    .push_bind(r.decided_at)
                    .push_bind(&r.decided_by)
                    .push_bind(r.assistance_commenced_at)
                    .push_bind(r.updated_at)
                    .push_bind(&r.raw)
                    .push_bind(&r.origin);
            });
            q.build().execute(&mut *c).await?;
        }
        Ok(())
    }

    pub async fn upsert_appointments(
        c: &mut SqliteConnection,
        rows: &[&AppointmentRow],
    ) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(concat!(
                "INSERT INTO appointments (",
                appointment_cols!(),
                ") "
            ));
            q.push_values(chunk, |mut b, a| {
                b.push_bind(&a.id)
                    .push_bind(&a.appointment_key)
                    .push_bind(&a.case_id)
                    .push_bind(&a.status)
                    .push_bind(a.start_at)
                    .push_bind(&a.content_hash)
                    .push_bind(a.source_updated_at)
                    .push_bind(a.updated_at)
                    .push_bind(&a.raw);
            });
            q.push(concat!(
                " ON CONFLICT (appointment_key) DO UPDATE SET ",
                appointment_upsert_set!()
            ));
            q.build().execute(&mut *c).await?;
        }
        Ok(())
    }

    pub async fn insert_outbox(c: &mut SqliteConnection, rows: &[(NewOutbox, i64)]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO outbox (kind, dedupe_key, ordering_key, payload, status, attempts, next_attempt_at, created_at) ",
            );
            q.push_values(chunk, |mut b, (o, at)| {
                b.push_bind(o.kind)
                    .push_bind(&o.dedupe_key)
                    .push_bind(&o.ordering_key)
                    .push_bind(&o.payload)
                    .push_bind("pending")
                    .push_bind(0i64)
                    .push_bind(*at)
                    .push_bind(*at);
            });
            q.push(" ON CONFLICT (dedupe_key) DO NOTHING");
            q.build().execute(&mut *c).await?;
        }
        Ok(())
    }

    pub async fn insert_audit(c: &mut SqliteConnection, rows: &[(AuditEntry, i64)]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO audit (at, actor, action, resource_type, resource_id, detail) ",
            );
            q.push_values(chunk, |mut b, (a, at)| {
                b.push_bind(*at)
                    .push_bind(&a.actor)
                    .push_bind(&a.action)
                    .push_bind(&a.resource_type)
                    .push_bind(&a.resource_id)
                    .push_bind(&a.detail);
            });
            q.build().execute(&mut *c).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
