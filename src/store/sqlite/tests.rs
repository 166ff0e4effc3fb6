//! Plans and statement reuse of the SQLite store's hot statements.

use super::{outbox_claim_sql, outbox_cols};

/// The steps of `EXPLAIN QUERY PLAN sql` on a migrated store.
async fn plan(sql: &str, binds: &[i64]) -> Vec<String> {
    let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
    sqlx::migrate!("src/store/migrations/sqlite")
        .run(&pool)
        .await
        .unwrap();
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    // A test of our own fixed statements, not of input.
    let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(sql));
    for v in binds {
        q = q.bind(*v);
    }
    q.fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.3)
        .collect()
}

/// Outcomes are recorded by looking each row up by id, never by a scan
/// of the outbox (or of an index) per outcome.
#[tokio::test]
async fn recording_outcomes_looks_each_row_up_by_id() {
    let steps = plan(super::bulk::SETTLE_DONE, &[0]).await;
    assert!(
        steps
            .iter()
            .any(|s| s.contains("SEARCH outbox USING INTEGER PRIMARY KEY")),
        "{steps:?}"
    );
    assert!(
        !steps
            .iter()
            .any(|s| s.contains("SCAN outbox") || s.contains("INDEX outbox_due")),
        "{steps:?}"
    );
}
/// The claim walks the partial index of pending rows in id order and
/// stops at its batch: no scan of every due row, no sort. (A plan is
/// checked, not a time: speed is for the benchmarks.)
#[tokio::test]
async fn the_outbox_claim_walks_the_pending_index_without_sorting() {
    let steps = plan(sqlite_claim!(), &[1, 1, 256]).await;
    assert!(
        steps.iter().any(|s| s.contains("outbox_pending_id")),
        "{steps:?}"
    );
    assert!(
        !steps.iter().any(|s| s.contains("TEMP B-TREE")),
        "{steps:?}"
    );
}

/// How many times SQLite compiled the cached statement whose text starts
/// with `head` again after its first preparation.
async fn reprepares(c: &mut sqlx::SqliteConnection, head: &str) -> Option<i32> {
    use libsqlite3_sys as ffi;
    use std::ffi::CStr;
    let mut handle = c.lock_handle().await.unwrap();
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this connection's open handle, held locked for the
    // whole walk; `sqlite3_next_stmt`, `sqlite3_sql` and
    // `sqlite3_stmt_status` only read the statements it owns, and the SQL
    // text is copied before the lock is released.
    unsafe {
        let mut stmt = ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
        while !stmt.is_null() {
            let sql = ffi::sqlite3_sql(stmt);
            if !sql.is_null() && CStr::from_ptr(sql).to_string_lossy().starts_with(head) {
                return Some(ffi::sqlite3_stmt_status(
                    stmt,
                    ffi::SQLITE_STMTSTATUS_REPREPARE,
                    0,
                ));
            }
            stmt = ffi::sqlite3_next_stmt(db, stmt);
        }
    }
    None
}

/// The claim is compiled once and reused, whatever `LIMIT` it is given.
/// With `LIMIT $3` the bundled SQLite compiled it again at every claim,
/// because its planner looks at a bound `LIMIT` value (see `outbox_claim_sql!`).
#[tokio::test]
async fn the_outbox_claim_is_compiled_once_and_reused() {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    sqlx::migrate!("src/store/migrations/sqlite")
        .run(&mut c)
        .await
        .unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) \
         INSERT INTO outbox (kind, dedupe_key, ordering_key, payload, status, next_attempt_at, created_at) \
         SELECT 'fhir', 'd' || i, 'k' || i, '{}', 'pending', 0, 0 FROM n",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let mut claimed = 0;
    for (round, limit) in [7_i64, 3, 11, 5].into_iter().enumerate() {
        let now = round as i64;
        claimed += sqlx::query(super::CLAIM)
            .bind(now + 1_000)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut c)
            .await
            .unwrap()
            .len();
    }
    // The rows were really claimed (the statement ran), ...
    assert_eq!(claimed, 7 + 3 + 11 + 5);
    // ... by one compiled statement.
    let head = "UPDATE outbox SET claimed_until";
    assert_eq!(reprepares(&mut c, head).await, Some(0));
}
