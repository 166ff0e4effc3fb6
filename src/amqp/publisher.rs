//! Publishes with publisher confirms: a publish only counts once the broker
//! has confirmed it, so the outbox can mark a row delivered safely.
//!
//! The connection is opened lazily and dropped on any error; the next publish
//! reconnects. Publishes share one confirm channel and run concurrently.

use crate::config::AmqpSettings;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("broker refused the message (nack)")]
    Nacked,
}

pub struct Publisher {
    url: String,
    name: String,
    settings: AmqpSettings,
    conn: Mutex<Option<(Connection, Channel)>>,
}

impl Publisher {
    pub fn new(settings: &AmqpSettings, name: &str) -> Self {
        Publisher {
            url: settings.url.clone(),
            name: format!("{name}-publisher"),
            settings: settings.clone(),
            conn: Mutex::new(None),
        }
    }

    async fn channel(&self) -> Result<Channel, PublishError> {
        let mut guard = self.conn.lock().await;
        if let Some((c, ch)) = guard.as_ref()
            && c.status().connected()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let conn = Connection::connect(&self.url, super::connection_properties(&self.name)).await?;
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        super::topology::declare(&ch, &self.settings).await?;
        *guard = Some((conn, ch.clone()));
        Ok(ch)
    }

    /// Publishes persistently to `exchange` and waits for the broker's confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), PublishError> {
        let result = async {
            let ch = self.channel().await?;
            let confirm = ch
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions::default(),
                    body,
                    props.with_delivery_mode(2),
                )
                .await?
                .await?;
            match confirm {
                Confirmation::Nack(_) => Err(PublishError::Nacked),
                _ => Ok(()),
            }
        }
        .await;
        if result.is_err() {
            *self.conn.lock().await = None;
        }
        result
    }

    pub async fn close(&self) {
        if let Some((c, _)) = self.conn.lock().await.take() {
            let _ = c.close(200, "shutdown".into()).await;
        }
    }
}

/// Publishes one message to the inbound exchange, as a clinical system would
/// (used by `ips-bridge send`). The message id is the body's hash, so sending
/// the same file twice is deduplicated by the bridge.
pub async fn send_inbound(
    settings: &AmqpSettings,
    routing_key: &str,
    message_type: Option<&str>,
    body: &[u8],
) -> Result<(), PublishError> {
    use sha2::{Digest, Sha256};
    let p = Publisher::new(settings, "ips-bridge-send");
    let mut props = BasicProperties::default()
        .with_message_id(format!("sha256:{}", hex::encode(Sha256::digest(body))).into());
    props = match message_type {
        Some(t) => props
            .with_type(t.into())
            .with_content_type("application/json".into()),
        None => props.with_content_type("application/fhir+json".into()),
    };
    let result = p
        .publish(&settings.inbound_exchange, routing_key, body, props)
        .await;
    p.close().await;
    result
}
