//! Inspecting and replaying the dead-letter queue (`ips-bridge dlq ...`).
//!
//! Listing takes messages with `basic.get` and hands them all back (nack with
//! requeue) once the listing is complete, so looking never consumes. A replay
//! republishes the original body and properties to the inbound exchange with
//! the original routing key (confirmed), and only then acknowledges the
//! dead-letter copy: a crash in between leaves a copy in both places, never
//! in neither. The inbox never records rejected messages, so a replayed
//! message with its original `message_id` is processed normally.

use crate::config::AmqpSettings;
use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Confirmation, Connection};

/// One dead letter, summarised without its body.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub position: usize,
    pub message_id: Option<String>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub routing_key: String,
    pub bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("no dead letter matches {0:?}")]
    NotFound(String),
    #[error("the broker did not confirm the replayed message")]
    NotConfirmed,
}

async fn open(s: &AmqpSettings) -> Result<(Connection, Channel), DlqError> {
    let conn = Connection::connect(&s.url, super::connection_properties("ips-bridge-dlq")).await?;
    let ch = conn.create_channel().await?;
    super::topology::declare(&ch, s).await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok((conn, ch))
}

fn header(h: &Option<FieldTable>, key: &str) -> Option<String> {
    match h.as_ref()?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        other => Some(format!("{other:?}")),
    }
}

/// Why the broker dead-lettered a message it was not told about (delivery limit, TTL).
fn death_reason(h: &Option<FieldTable>) -> Option<String> {
    let deaths = h.as_ref()?.inner().get("x-death")?;
    Some(
        format!("dead-lettered by the broker: {deaths:?}")
            .chars()
            .take(300)
            .collect(),
    )
}

fn summary(position: usize, m: &BasicGetMessage) -> DeadLetter {
    let h = m.delivery.properties.headers();
    DeadLetter {
        position,
        message_id: m
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        error_code: header(h, "x-ips-error-code")
            .or_else(|| death_reason(h).map(|_| "broker-dead-lettered".into())),
        error: header(h, "x-ips-error").or_else(|| death_reason(h)),
        routing_key: header(h, "x-ips-original-routing-key")
            .unwrap_or_else(|| m.delivery.routing_key.as_str().to_owned()),
        bytes: m.delivery.data.len(),
    }
}

/// Takes up to `limit` messages, calls `f` on each, then returns all that `f`
/// did not acknowledge to the queue.
async fn walk<F>(ch: &Channel, queue: &str, limit: usize, mut f: F) -> Result<(), DlqError>
where
    F: AsyncFnMut(usize, &BasicGetMessage) -> Result<bool, DlqError>,
{
    let mut held = Vec::new();
    let mut result = Ok(());
    for position in 1..=limit {
        let Some(m) = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        match f(position, &m).await {
            Ok(true) => {
                m.delivery.acker.ack(BasicAckOptions::default()).await?;
            }
            Ok(false) => held.push(m),
            Err(e) => {
                held.push(m);
                result = Err(e);
                break;
            }
        }
    }
    for m in held {
        m.delivery
            .acker
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await?;
    }
    result
}

pub async fn list(s: &AmqpSettings, limit: usize) -> Result<Vec<DeadLetter>, DlqError> {
    let (conn, ch) = open(s).await?;
    let mut out = Vec::new();
    walk(&ch, &s.dead_letter_queue, limit, async |pos, m| {
        out.push(summary(pos, m));
        Ok(false)
    })
    .await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(out)
}

/// The summary and body of the dead letter with `message_id`.
pub async fn show(
    s: &AmqpSettings,
    message_id: &str,
    limit: usize,
) -> Result<(DeadLetter, Vec<u8>), DlqError> {
    let (conn, ch) = open(s).await?;
    let mut found = None;
    walk(&ch, &s.dead_letter_queue, limit, async |pos, m| {
        if found.is_none() && summary(pos, m).message_id.as_deref() == Some(message_id) {
            found = Some((summary(pos, m), m.delivery.data.clone()));
        }
        Ok(false)
    })
    .await?;
    let _ = conn.close(200, "done".into()).await;
    found.ok_or_else(|| DlqError::NotFound(message_id.to_owned()))
}

/// Replays the dead letter with `message_id`, or every one when `None`.
/// Returns how many were replayed.
pub async fn replay(
    s: &AmqpSettings,
    message_id: Option<&str>,
    limit: usize,
) -> Result<usize, DlqError> {
    let (conn, ch) = open(s).await?;
    let mut replayed = 0;
    walk(&ch, &s.dead_letter_queue, limit, async |pos, m| {
        let d = summary(pos, m);
        if message_id.is_some_and(|id| d.message_id.as_deref() != Some(id)) {
            return Ok(false);
        }
        let mut headers = m.delivery.properties.headers().clone().unwrap_or_default();
        let mut kept = FieldTable::default();
        for (k, v) in headers.inner() {
            if !k.as_str().starts_with("x-ips-") && k.as_str() != "x-death" {
                kept.insert(k.clone(), v.clone());
            }
        }
        headers = kept;
        headers.insert("x-ips-replayed".into(), AMQPValue::Boolean(true));
        let props = m.delivery.properties.clone().with_headers(headers);
        let confirm = ch
            .basic_publish(
                s.inbound_exchange.as_str().into(),
                d.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &m.delivery.data,
                props,
            )
            .await?
            .await?;
        if matches!(confirm, Confirmation::Nack(_)) {
            return Err(DlqError::NotConfirmed);
        }
        replayed += 1;
        Ok(true)
    })
    .await?;
    let _ = conn.close(200, "done".into()).await;
    if replayed == 0
        && let Some(id) = message_id
    {
        return Err(DlqError::NotFound(id.to_owned()));
    }
    Ok(replayed)
}
