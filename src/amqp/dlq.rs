//! Inspecting and replaying dead letters (`ips-bridge dlq ...`).
//!
//! The store's `dead_letters` table is the record (see
//! [`crate::store::dead_letters`] for why): `list` and `show` only read it, so
//! looking never touches the broker. The broker's dead-letter queue still
//! gets a copy of every rejected message for operators and other tools.
//!
//! A replay publishes each stored message, with its original properties, to
//! the queue it was rejected from (confirmed), then marks the row replayed. A
//! crash in between leaves the row waiting, and replaying it again is safe:
//! if the first copy was processed, the inbox absorbs the second. The
//! message goes to its queue through the default exchange rather than back
//! to the shared inbound exchange, so other queues bound there do not
//! receive it a second time.
//!
//! [`sync`] (run after every replay) then reconciles the broker's queue with
//! the store, taking each message once: copies of replayed rows are acked
//! away; every other message is republished to the back of the queue
//! (confirmed) before its original is acked, so nothing is ever handed back
//! with a nack or a closed channel, which on RabbitMQ 4.x would count towards
//! the delivery limit. Messages the broker dead-lettered by itself (the
//! inbound queue's delivery limit, while the store was down) have no row
//! yet: `sync` records them, so they can be listed and replayed too.

use crate::config::AmqpSettings;
use crate::engine::{from_ms, rfc3339};
use crate::store::StoreError;
use crate::store::dead_letters::{
    DeadLetterFilter, DeadLetterRow, DeadLetters, NewDeadLetter, body_sha256,
};
use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use std::collections::BTreeMap;

/// Rows read per store query when walking every dead letter.
const PAGE: i64 = 500;

/// One dead letter, summarised without its body.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub message_id: String,
    pub error_code: String,
    pub reason: String,
    pub source_queue: String,
    pub routing_key: String,
    pub bytes: usize,
    pub rejected_at: String,
    pub rejections: i64,
    pub replayed_at: Option<String>,
    pub replay_count: i64,
}

impl From<&DeadLetterRow> for DeadLetter {
    fn from(r: &DeadLetterRow) -> Self {
        DeadLetter {
            id: r.id,
            message_id: r.message_id.clone(),
            error_code: r.error_code.clone(),
            reason: r.reason.clone(),
            source_queue: r.source_queue.clone(),
            routing_key: r.routing_key.clone(),
            bytes: r.body.len(),
            rejected_at: rfc3339(from_ms(r.rejected_at)),
            rejections: r.rejections,
            replayed_at: r.replayed_at.map(|t| rfc3339(from_ms(t))),
            replay_count: r.replay_count,
        }
    }
}

/// A dead letter in full, as `dlq show` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Shown {
    #[serde(flatten)]
    pub summary: DeadLetter,
    pub exchange: String,
    pub content_type: Option<String>,
    pub message_type: Option<String>,
    /// Header values as text (the stored properties keep their AMQP types).
    pub headers: BTreeMap<String, String>,
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// Which stored dead letters a replay takes (only those not yet replayed).
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    Ids(Vec<i64>),
    MessageId(String),
    Code(String),
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReplayReport {
    pub replayed: usize,
    pub broker: SyncReport,
}

/// What [`sync`] did with each message in the broker's dead-letter queue.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SyncReport {
    /// Copies of replayed dead letters, acked away.
    pub removed: usize,
    /// Messages the store did not hold yet (dead-lettered by the broker itself), now recorded.
    pub recorded: usize,
    /// Messages left in the queue (moved to its back).
    pub kept: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("no dead letter matches {0:?}")]
    NotFound(String),
    #[error("the broker did not confirm a published message")]
    NotConfirmed,
    #[error("queue {0:?} does not exist; the message was not replayed")]
    Unroutable(String),
    #[error("stored properties of dead letter {0} cannot be read: {1}")]
    Properties(i64, serde_json::Error),
}

/// Dead letters matching `f`, oldest first. Reads the store only.
pub async fn list(
    store: &dyn DeadLetters,
    f: &DeadLetterFilter,
) -> Result<Vec<DeadLetter>, DlqError> {
    Ok(store
        .dead_letters_list(f)
        .await?
        .iter()
        .map(DeadLetter::from)
        .collect())
}

/// The dead letter with row id `key`, else the latest with message id `key`. Reads the store only.
pub async fn show(store: &dyn DeadLetters, key: &str) -> Result<Shown, DlqError> {
    let by_id = match key.parse::<i64>() {
        Ok(id) => store.dead_letter_get(id).await?,
        Err(_) => None,
    };
    let row = match by_id {
        Some(r) => r,
        None => all_rows(store, Some(key), true)
            .await?
            .pop()
            .ok_or_else(|| DlqError::NotFound(key.to_owned()))?,
    };
    let props = properties(&row)?;
    Ok(Shown {
        summary: DeadLetter::from(&row),
        exchange: row.exchange.clone(),
        content_type: props.content_type().as_ref().map(|s| s.as_str().to_owned()),
        message_type: props.kind().as_ref().map(|s| s.as_str().to_owned()),
        headers: props
            .headers()
            .as_ref()
            .map(|h| {
                h.inner()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), text(v)))
                    .collect()
            })
            .unwrap_or_default(),
        body: row.body,
    })
}

/// Replays the selected dead letters that are waiting, then reconciles the
/// broker's dead-letter queue ([`sync`]). `now` is milliseconds since the epoch.
pub async fn replay(
    store: &dyn DeadLetters,
    s: &AmqpSettings,
    sel: &Selection,
    now: i64,
) -> Result<ReplayReport, DlqError> {
    let rows = match sel {
        Selection::All => all_rows(store, None, false).await?,
        Selection::MessageId(id) => all_rows(store, Some(id), false).await?,
        Selection::Code(code) => {
            let mut f = filter(None, false);
            f.error_code = Some(code.clone());
            pages(store, f).await?
        }
        Selection::Ids(ids) => {
            let mut rows = Vec::new();
            for id in ids {
                match store.dead_letter_get(*id).await? {
                    Some(r) if r.replayed_at.is_none() => rows.push(r),
                    _ => return Err(DlqError::NotFound(format!("id {id} (waiting)"))),
                }
            }
            rows
        }
    };
    if rows.is_empty()
        && let Selection::MessageId(id) = sel
    {
        return Err(DlqError::NotFound(id.clone()));
    }
    let (conn, ch) = open(s).await?;
    let mut report = ReplayReport::default();
    for row in &rows {
        let props = replay_properties(row)?;
        let confirm = ch
            .basic_publish(
                "".into(),
                row.source_queue.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &row.body,
                props,
            )
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(_)) => {
                return Err(DlqError::Unroutable(row.source_queue.clone()));
            }
            _ => return Err(DlqError::NotConfirmed),
        }
        // Not marked if it was rejected again meanwhile: it then stays listed.
        store
            .dead_letter_mark_replayed(row.id, row.rejections, now)
            .await?;
        report.replayed += 1;
    }
    report.broker = walk(store, s, &ch, now).await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(report)
}

/// Reconciles the broker's dead-letter queue with the store (see the module
/// documentation). Each message present at the start is taken once.
pub async fn sync(
    store: &dyn DeadLetters,
    s: &AmqpSettings,
    now: i64,
) -> Result<SyncReport, DlqError> {
    let (conn, ch) = open(s).await?;
    let report = walk(store, s, &ch, now).await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(report)
}

/// Messages ready in the broker's dead-letter queue (a passive declare; nothing is taken).
pub async fn broker_depth(s: &AmqpSettings) -> Result<u32, DlqError> {
    let (conn, ch) = open(s).await?;
    let depth = depth(&ch, &s.dead_letter_queue).await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(depth)
}

async fn walk(
    store: &dyn DeadLetters,
    s: &AmqpSettings,
    ch: &Channel,
    now: i64,
) -> Result<SyncReport, DlqError> {
    let mut report = SyncReport::default();
    let queue = s.dead_letter_queue.as_str();
    for _ in 0..depth(ch, queue).await? {
        let Some(m) = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let h = m.delivery.properties.headers();
        let source = header(h, "x-ips-source-queue").unwrap_or_else(|| s.inbound_queue.clone());
        let message_id = dedupe_key(&m);
        let found = store
            .dead_letter_find(&source, &message_id, &body_sha256(&m.delivery.data))
            .await?;
        match found {
            Some(r) if r.replayed_at.is_some() => {
                m.delivery.acker.ack(BasicAckOptions::default()).await?;
                report.removed += 1;
                continue;
            }
            Some(_) => {}
            None => {
                record_broker_only(store, &m, &source, &message_id, now).await?;
                report.recorded += 1;
            }
        }
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                &m.delivery.data,
                m.delivery.properties.clone(),
            )
            .await?
            .await?;
        if !matches!(confirm, Confirmation::Ack(None)) {
            return Err(DlqError::NotConfirmed);
        }
        m.delivery.acker.ack(BasicAckOptions::default()).await?;
        report.kept += 1;
    }
    Ok(report)
}

/// Records a message found in the broker's queue that the store lacks: one the
/// broker dead-lettered by itself, or one rejected before the store kept dead letters.
async fn record_broker_only(
    store: &dyn DeadLetters,
    m: &BasicGetMessage,
    source: &str,
    message_id: &str,
    now: i64,
) -> Result<(), DlqError> {
    let h = m.delivery.properties.headers();
    let properties =
        serde_json::to_string(&m.delivery.properties).map_err(|e| DlqError::Properties(0, e))?;
    let code = header(h, "x-ips-error-code").unwrap_or_else(|| "broker-dead-lettered".into());
    let reason = header(h, "x-ips-error").unwrap_or_else(|| death_reason(h));
    let exchange = header(h, "x-ips-original-exchange")
        .unwrap_or_else(|| m.delivery.exchange.as_str().to_owned());
    let routing_key = header(h, "x-ips-original-routing-key")
        .unwrap_or_else(|| m.delivery.routing_key.as_str().to_owned());
    store
        .dead_letter_record(
            &NewDeadLetter {
                source_queue: source,
                message_id,
                error_code: &code,
                reason: &reason,
                exchange: &exchange,
                routing_key: &routing_key,
                properties: &properties,
                body: &m.delivery.data,
            },
            now,
        )
        .await?;
    Ok(())
}

async fn open(s: &AmqpSettings) -> Result<(Connection, Channel), DlqError> {
    let conn = Connection::connect(&s.url, super::connection_properties("ips-bridge-dlq")).await?;
    let ch = conn.create_channel().await?;
    super::topology::declare(&ch, s).await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok((conn, ch))
}

async fn depth(ch: &Channel, queue: &str) -> Result<u32, DlqError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    Ok(ch
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await?
        .message_count())
}

fn filter(message_id: Option<&str>, include_replayed: bool) -> DeadLetterFilter {
    DeadLetterFilter {
        message_id: message_id.map(str::to_owned),
        include_replayed,
        limit: PAGE,
        ..Default::default()
    }
}

async fn all_rows(
    store: &dyn DeadLetters,
    message_id: Option<&str>,
    include_replayed: bool,
) -> Result<Vec<DeadLetterRow>, DlqError> {
    pages(store, filter(message_id, include_replayed)).await
}

/// Every row matching `f`, page by page.
async fn pages(
    store: &dyn DeadLetters,
    mut f: DeadLetterFilter,
) -> Result<Vec<DeadLetterRow>, DlqError> {
    let mut out: Vec<DeadLetterRow> = Vec::new();
    loop {
        let page = store.dead_letters_list(&f).await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        f.after_id = last.id;
        out.extend(page);
    }
}

fn properties(row: &DeadLetterRow) -> Result<BasicProperties, DlqError> {
    serde_json::from_str(&row.properties).map_err(|e| DlqError::Properties(row.id, e))
}

/// The original properties, without what dead-lettering added, marked as a replay.
fn replay_properties(row: &DeadLetterRow) -> Result<BasicProperties, DlqError> {
    let props = properties(row)?;
    let mut headers = FieldTable::default();
    if let Some(h) = props.headers() {
        for (k, v) in h.inner() {
            if !k.as_str().starts_with("x-ips-") && k.as_str() != "x-death" {
                headers.insert(k.clone(), v.clone());
            }
        }
    }
    headers.insert("x-ips-replayed".into(), AMQPValue::Boolean(true));
    headers.insert(
        "x-ips-dead-letter-id".into(),
        AMQPValue::LongLongInt(row.id),
    );
    Ok(props.with_headers(headers).with_delivery_mode(2))
}

/// The consumer's dedupe key for a message (as `consumer::message_id`).
fn dedupe_key(m: &BasicGetMessage) -> String {
    match m.delivery.properties.message_id() {
        Some(id) if !id.as_str().is_empty() => id.as_str().to_owned(),
        _ => format!("sha256:{}", body_sha256(&m.delivery.data)),
    }
}

fn text(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        other => format!("{other:?}"),
    }
}

fn header(h: &Option<FieldTable>, key: &str) -> Option<String> {
    h.as_ref()?.inner().get(key).map(text)
}

/// Why the broker dead-lettered a message it was not told about (delivery limit, TTL).
fn death_reason(h: &Option<FieldTable>) -> String {
    let death = h.as_ref().and_then(|h| h.inner().get("x-death"));
    match death {
        Some(d) => format!("dead-lettered by the broker: {d:?}")
            .chars()
            .take(300)
            .collect(),
        None => "found in the dead-letter queue without a reason".into(),
    }
}
