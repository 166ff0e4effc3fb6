//! SQL shared by both back-ends.
//!
//! The queries use `$n` placeholders, which SQLite and PostgreSQL both accept,
//! and only portable SQL (`ON CONFLICT`, `RETURNING`, partial indexes). The
//! one real difference, how outbox rows are claimed, is a parameter of the
//! macro. A macro rather than generic code because sqlx's generic executor
//! bounds would bury every query under trait clauses.

/// The outbox claim: due, unclaimed (or lease-expired) pending rows, never a
/// row whose ordering key has an earlier pending row, in id order. `$from`
/// names the table as the back-end should read it, `$lock` is its
/// row-locking clause (`FOR UPDATE SKIP LOCKED` on PostgreSQL; nothing on
/// SQLite, whose writers are serialised).
///
/// Why SQLite reads `INDEXED BY outbox_pending_id`: without statistics
/// (the bridge never runs ANALYZE) its planner picks `outbox_due`, checks the
/// ordering-key subquery for every due row and sorts them all, so each claim
/// cost grew with the backlog (8 ms per claim at 20,000 rows pending, against
/// 0.13 ms walking the partial index in id order and stopping at the
/// batch). A unit test in `store/sqlite/tests.rs` checks the plan.
///
/// `LIMIT +$3`, not `LIMIT $3`: the planner of the SQLite that sqlx bundles
/// (3.51) looks at a bound `LIMIT` value, so `LIMIT $3` marked the statement
/// to be compiled again whenever its value was bound, at every claim (seen
/// as `sqlite3Reprepare`, 4% of the write path's CPU; Debian's 3.40 did not
/// do this). An expression is not looked at, and the plan is the same.
/// PostgreSQL reads `+$3` as the same `bigint`.
macro_rules! outbox_claim_sql {
    ($from:literal, $lock:literal) => {
        concat!(
            "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 WHERE id IN (",
            "SELECT o.id FROM ",
            $from,
            " WHERE o.status = 'pending' AND o.next_attempt_at <= $2 ",
            "AND (o.claimed_until IS NULL OR o.claimed_until < $2) ",
            "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ordering_key = o.ordering_key AND p.status = 'pending' AND p.id < o.id) ",
            "ORDER BY o.id LIMIT +$3",
            $lock,
            ") RETURNING ",
            outbox_cols!()
        )
    };
}
/// The `SET` list of an appointment upsert (`excluded` is the arriving row).
macro_rules! appointment_upsert_set {
    () => {
        "case_id = excluded.case_id, status = excluded.status, start_at = excluded.start_at, \
         content_hash = excluded.content_hash, source_updated_at = excluded.source_updated_at, \
         updated_at = excluded.updated_at, raw = excluded.raw"
    };
}
/// Every referral column but `id`, in the order [`bind_referral`] binds them.
macro_rules! referral_data_cols {
    () => {
        "referral_key, case_id, resource_ref, channel, state, fhir_status, incomplete_reasons, \
         content_hash, source_updated_at, authored_at, received_at, completed_at, source_ods, source_kind, \
         is_multiple, decision, decline_reason, decided_at, decided_by, assistance_commenced_at, updated_at, raw, origin"
    };
}
macro_rules! referral_cols {
    () => {
        concat!("id, ", referral_data_cols!())
    };
}
/// Binds a referral row as `$1` = id, `$2..$24` = [`referral_data_cols`], so
/// the insert and the update share one list and cannot drift apart.
macro_rules! bind_referral {
    ($q:expr, $r:expr) => {
        $q.bind(&$r.id)
            .bind(&$r.referral_key)
            .bind(&$r.case_id)
            .bind(&$r.resource_ref)
            .bind(&$r.channel)
            .bind($r.state.as_str())
            .bind(&$r.fhir_status)
            .bind(&$r.incomplete_reasons)
            .bind(&$r.content_hash)
            .bind($r.source_updated_at)
            .bind($r.authored_at)
            .bind($r.received_at)
            .bind($r.completed_at)
            .bind(&$r.source_ods)
            .bind(&$r.source_kind)
            .bind($r.is_multiple)
            .bind($r.decision.as_str())
            .bind(&$r.decline_reason)
            .bind($r.decided_at)
            .bind(&$r.decided_by)
            .bind($r.assistance_commenced_at)
            .bind($r.updated_at)
            .bind(&$r.raw)
            .bind(&$r.origin)
    };
}
macro_rules! case_cols {
    () => {
        "id, patient_id, status, opened_at, closed_at, closed_reason, referral_count"
    };
}
macro_rules! outbox_cols {
    () => {
        "id, kind, dedupe_key, ordering_key, payload, status, attempts, next_attempt_at, last_error, result, created_at"
    };
}
macro_rules! appointment_cols {
    () => {
        "id, appointment_key, case_id, status, start_at, content_hash, source_updated_at, updated_at, raw"
    };
}

/// Implements the store traits for `$store` (holding `pool: Pool<$db>` for
/// reads and a `writer()` pool for every write) and [`Tx`](super::Tx) for
/// `$tx` (holding `tx: Transaction<'static, $db>`), one concern per file.
/// `$claim` is the outbox claim statement; `$lock` the back-end's clause for
/// reading a row to update it (`FOR UPDATE` on PostgreSQL, nothing on SQLite,
/// where `BEGIN IMMEDIATE` already serialises writers); `$skip_locked` the
/// clause for claiming work that replicas share; `$bulk` the module with the
/// back-end's many-rows-at-once statements (multi-row `VALUES` for SQLite,
/// `UNNEST` over bound arrays for PostgreSQL).
macro_rules! impl_sql_store {
    ($store:ident, $tx:ident, $db:ty, backend = $backend:literal, claim = $claim:expr, lock = $lock:literal, skip_locked = $skip:literal, migrator = $migrator:expr, bulk = $bulk:ident) => {
        $crate::store::sql::impl_unit_of_work!($tx, $db, $bulk);
        $crate::store::sql::impl_admin!($store, $tx, backend = $backend, migrator = $migrator);
        $crate::store::sql::impl_reads!($store);
        $crate::store::sql::impl_work!($store, $db, claim = $claim, bulk = $bulk);
        $crate::store::sql::impl_tx!($tx, $db, lock = $lock, skip_locked = $skip, bulk = $bulk);
        $crate::store::sql::impl_outreach!($store, $tx, $db);
        $crate::store::sql::impl_documents!($store, $tx);
        $crate::store::sql::impl_team!($store, $tx);
    };
}

/// ` IN ($1, $2, …)` with every id bound: one statement for a batch of rows.
pub(crate) fn push_in<DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<DB>, ids: &[i64])
where
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push(" IN (");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(")");
}

mod admin;
mod documents;
mod outreach;
mod reads;
mod team;
mod tx;
mod work;

pub(crate) use admin::{impl_admin, impl_unit_of_work};
pub(crate) use documents::{comment_cols, delivery_cols, document_cols, impl_documents};
pub(crate) use outreach::{attempt_cols, closure_cols, episode_cols, impl_outreach};
pub(crate) use reads::impl_reads;
pub(crate) use team::{impl_team, job_cols, status_cols};
pub(crate) use tx::{impl_tx, settle};
pub(crate) use work::impl_work;
pub(crate) use {
    appointment_cols, appointment_upsert_set, bind_referral, case_cols, impl_sql_store,
    outbox_claim_sql, outbox_cols, referral_cols, referral_data_cols,
};
