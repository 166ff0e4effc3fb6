//! Dead letters kept in the store (`dead_letters` table).
//!
//! Why the store and not only the broker: the only way to read a RabbitMQ
//! queue without consuming it is to take messages and hand them back, and on
//! RabbitMQ 4.x every hand-back of a quorum-queue message counts towards a
//! delivery limit (20 by default) after which the broker drops it, since the
//! dead-letter queue has no dead-letter target of its own. Keeping each
//! rejected message here (headers, reason, body) makes listing and showing
//! plain reads, and replay works from a copy nothing can expire.
//!
//! A separate trait rather than more methods on [`super::Store`]: the
//! dead-letter tooling (CLI, consumer) needs only these four operations, and
//! they do not take part in the engine's units of work. Both back-ends
//! implement it with the same SQL.

use super::Result;
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use crate::config::StoreSettings;
use async_trait::async_trait;
use std::sync::Arc;

/// A message the consumer rejected, as it arrived.
#[derive(Debug, Clone)]
pub struct NewDeadLetter<'a> {
    pub source_queue: &'a str,
    /// The consumer's dedupe key: the `message_id` property, else `sha256:` of the body.
    pub message_id: &'a str,
    pub error_code: &'a str,
    pub reason: &'a str,
    pub exchange: &'a str,
    pub routing_key: &'a str,
    /// The AMQP basic properties as JSON (lapin's serde form, so a replay restores them exactly).
    pub properties: &'a str,
    pub body: &'a [u8],
}

/// One stored dead letter. Times are milliseconds since the epoch.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, PartialEq)]
pub struct DeadLetterRow {
    pub id: i64,
    pub source_queue: String,
    pub message_id: String,
    pub body_sha256: String,
    pub error_code: String,
    pub reason: String,
    pub exchange: String,
    pub routing_key: String,
    pub properties: String,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub rejected_at: i64,
    pub rejections: i64,
    pub replayed_at: Option<i64>,
    pub replay_count: i64,
}

/// Which dead letters to list.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    pub error_code: Option<String>,
    pub message_id: Option<String>,
    /// Also those already replayed (by default only those waiting).
    pub include_replayed: bool,
    /// Only ids above this (paging).
    pub after_id: i64,
    pub limit: i64,
}

#[async_trait]
pub trait DeadLetters: Send + Sync + 'static {
    /// Records a rejection; returns the row id. The same message (queue,
    /// message id, body) rejected again updates its row, and reopens it if it
    /// had been replayed, so a redelivery never makes a second row and a
    /// replay that fails again is listed again.
    async fn dead_letter_record(&self, d: &NewDeadLetter<'_>, now: i64) -> Result<i64>;
    /// Oldest first.
    async fn dead_letters_list(&self, f: &DeadLetterFilter) -> Result<Vec<DeadLetterRow>>;
    async fn dead_letter_get(&self, id: i64) -> Result<Option<DeadLetterRow>>;
    async fn dead_letter_find(
        &self,
        source_queue: &str,
        message_id: &str,
        body_sha256: &str,
    ) -> Result<Option<DeadLetterRow>>;
    /// Marks a row replayed, unless it was rejected again since it was read
    /// (`rejections` differs) or is already marked; `false` then.
    async fn dead_letter_mark_replayed(&self, id: i64, rejections: i64, now: i64) -> Result<bool>;
}

/// Hex SHA-256 of a body, the store's body key.
pub fn body_sha256(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

macro_rules! dead_letter_cols {
    () => {
        "id, source_queue, message_id, body_sha256, error_code, reason, exchange, routing_key, \
         properties, body, rejected_at, rejections, replayed_at, replay_count"
    };
}

macro_rules! impl_dead_letters {
    ($store:ty) => {
        #[async_trait]
        impl DeadLetters for $store {
            async fn dead_letter_record(&self, d: &NewDeadLetter<'_>, now: i64) -> Result<i64> {
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO dead_letters (source_queue, message_id, body_sha256, error_code, \
                     reason, exchange, routing_key, properties, body, rejected_at, rejections, \
                     replayed_at, replay_count) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, NULL, 0) \
                     ON CONFLICT (source_queue, message_id, body_sha256) DO UPDATE SET \
                     error_code = excluded.error_code, reason = excluded.reason, \
                     rejected_at = excluded.rejected_at, \
                     rejections = dead_letters.rejections + 1, replayed_at = NULL \
                     RETURNING id",
                )
                .bind(d.source_queue)
                .bind(d.message_id)
                .bind(body_sha256(d.body))
                .bind(d.error_code)
                .bind(d.reason)
                .bind(d.exchange)
                .bind(d.routing_key)
                .bind(d.properties)
                .bind(d.body)
                .bind(now)
                .fetch_one(self.writer())
                .await?;
                Ok(id)
            }

            async fn dead_letters_list(&self, f: &DeadLetterFilter) -> Result<Vec<DeadLetterRow>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    dead_letter_cols!(),
                    " FROM dead_letters WHERE (CAST($1 AS TEXT) IS NULL OR error_code = $1) \
                     AND (CAST($2 AS TEXT) IS NULL OR message_id = $2) \
                     AND ($3 OR replayed_at IS NULL) AND id > $4 ORDER BY id LIMIT $5"
                ))
                .bind(&f.error_code)
                .bind(&f.message_id)
                .bind(f.include_replayed)
                .bind(f.after_id)
                .bind(f.limit)
                .fetch_all(self.writer())
                .await?)
            }

            async fn dead_letter_get(&self, id: i64) -> Result<Option<DeadLetterRow>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    dead_letter_cols!(),
                    " FROM dead_letters WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(self.writer())
                .await?)
            }

            async fn dead_letter_find(
                &self,
                source_queue: &str,
                message_id: &str,
                body_sha256: &str,
            ) -> Result<Option<DeadLetterRow>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    dead_letter_cols!(),
                    " FROM dead_letters WHERE source_queue = $1 AND message_id = $2 AND body_sha256 = $3"
                ))
                .bind(source_queue)
                .bind(message_id)
                .bind(body_sha256)
                .fetch_optional(self.writer())
                .await?)
            }

            async fn dead_letter_mark_replayed(&self, id: i64, rejections: i64, now: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE dead_letters SET replayed_at = $1, replay_count = replay_count + 1 \
                     WHERE id = $2 AND rejections = $3 AND replayed_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .bind(rejections)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

impl_dead_letters!(SqliteStore);
impl_dead_letters!(PgStore);

/// Opens the store named by `store.url` once and hands it out under both
/// traits, so the daemon's dead-letter writes share the engine's connections
/// (on SQLite, its one writer) instead of contending with them.
pub async fn connect(s: &StoreSettings) -> Result<(Arc<dyn super::Store>, Arc<dyn DeadLetters>)> {
    fn both<S: super::Store + DeadLetters>(st: S) -> (Arc<dyn super::Store>, Arc<dyn DeadLetters>) {
        let st = Arc::new(st);
        let store: Arc<dyn super::Store> = st.clone();
        (store, st)
    }
    if s.url.starts_with("postgres://") || s.url.starts_with("postgresql://") {
        Ok(both(PgStore::connect(s).await?))
    } else {
        Ok(both(SqliteStore::connect(s).await?))
    }
}
