//! The inbound consumer.
//!
//! Deliveries are taken in batches (up to `batch_size`, waiting at most
//! `batch_wait` for a batch to fill), classified, applied in one store
//! transaction, and only then acknowledged, with one `multiple` ack. A message
//! that cannot be acted on is kept in the store's `dead_letters` table (read
//! by `ips-bridge dlq`) and published to the dead-letter exchange with
//! `x-ips-error-code` / `x-ips-error` headers (confirmed), both before it is
//! acked, so it is never silently dropped and never blocks the queue. When the store
//! is unavailable the batch is retried in place, then returned to the queue
//! unacknowledged; the quorum queue's delivery limit bounds the redeliveries.
//! A dropped broker connection is re-established with backoff; deliveries
//! that were not acked come back and inbox dedupe absorbs any that had already
//! been committed.

use super::BrokerHealth;
use crate::config::AmqpSettings;
use crate::engine::{Applied, Engine, Inbound, Source};
use crate::ingest::Reading;
use crate::ingest::classify::{self, Envelope};
use crate::store::dead_letters::{DeadLetters, NewDeadLetter};
use backon::BackoffBuilder;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Confirmation, Connection};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Store attempts for one batch before it is handed back to the broker.
const STORE_ATTEMPTS: usize = 6;

pub struct Consumer {
    pub settings: AmqpSettings,
    pub name: String,
    pub engine: Engine,
    /// Limits and intake rules for classifying what arrives.
    pub reading: Arc<Reading>,
    pub health: Arc<BrokerHealth>,
    /// Where rejected messages are kept for `ips-bridge dlq` (the engine's store).
    pub dead_letters: Arc<dyn DeadLetters>,
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker cancelled the consumer")]
    Cancelled,
    #[error("dead-letter publish was not confirmed")]
    DeadLetterNacked,
    #[error("cannot record a dead letter: {0}")]
    DeadLetterStore(#[from] crate::store::StoreError),
    #[error("cannot encode a dead letter's properties: {0}")]
    DeadLetterEncode(#[from] serde_json::Error),
}

impl Consumer {
    /// Consumes until `shutdown`, reconnecting whenever the connection drops.
    pub async fn run(self, shutdown: CancellationToken) {
        let backoff = || {
            backon::ExponentialBuilder::default()
                .with_min_delay(self.settings.reconnect_min_delay)
                .with_max_delay(self.settings.reconnect_max_delay)
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut delays = backoff();
        loop {
            let mut connected = false;
            let result = self.session(&shutdown, &mut connected).await;
            self.health.set(false);
            match result {
                Ok(()) => return,
                Err(e) => {
                    if connected {
                        delays = backoff();
                    }
                    let delay = delays.next().unwrap_or(self.settings.reconnect_max_delay);
                    tracing::warn!(error = %e, retry_in = ?delay, "AMQP consumer lost its connection; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn session(
        &self,
        shutdown: &CancellationToken,
        connected: &mut bool,
    ) -> Result<(), SessionError> {
        let conn =
            Connection::connect(&self.settings.url, super::connection_properties(&self.name))
                .await?;
        let ch = conn.create_channel().await?;
        super::topology::declare(&ch, &self.settings).await?;
        ch.basic_qos(self.settings.prefetch, BasicQosOptions::default())
            .await?;
        let dlq = conn.create_channel().await?;
        dlq.confirm_select(ConfirmSelectOptions::default()).await?;
        let tag = format!("{}-{}", self.name, uuid::Uuid::new_v4());
        let mut consumer = ch
            .basic_consume(
                self.settings.inbound_queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        *connected = true;
        self.health.set(true);
        tracing::info!(queue = %self.settings.inbound_queue, prefetch = self.settings.prefetch, "consuming");
        loop {
            let first = tokio::select! {
                d = consumer.next() => d,
                _ = shutdown.cancelled() => {
                    // Stop taking new deliveries; anything prefetched and unacked returns to the queue on close.
                    let _ = ch.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                    let _ = conn.close(200, "shutdown".into()).await;
                    return Ok(());
                }
            };
            let mut batch = match first {
                Some(Ok(d)) => vec![d],
                Some(Err(e)) => return Err(e.into()),
                None => return Err(SessionError::Cancelled),
            };
            let deadline = tokio::time::Instant::now() + self.settings.batch_wait;
            while batch.len() < self.settings.batch_size {
                match tokio::time::timeout_at(deadline, consumer.next()).await {
                    Ok(Some(Ok(d))) => batch.push(d),
                    Ok(Some(Err(e))) => return Err(e.into()),
                    Ok(None) => return Err(SessionError::Cancelled),
                    Err(_) => break,
                }
            }
            self.process(batch, &dlq).await?;
        }
    }

    async fn process(&self, batch: Vec<Delivery>, dlq: &Channel) -> Result<(), SessionError> {
        let now = self.engine.now();
        let inbounds: Vec<Inbound> = batch
            .iter()
            .map(|d| {
                let env = Envelope {
                    content_type: d.properties.content_type().as_ref().map(|s| s.as_str()),
                    message_type: d.properties.kind().as_ref().map(|s| s.as_str()),
                };
                Inbound {
                    source: Source::Amqp,
                    message_id: message_id(d),
                    received_at: now,
                    command: classify::classify(
                        &d.data,
                        &env,
                        &self.reading.limits,
                        &self.reading.rules,
                    ),
                }
            })
            .collect();
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(STORE_ATTEMPTS)
            .with_jitter()
            .build();
        let started = std::time::Instant::now();
        let results = loop {
            match self.engine.execute(&inbounds, None).await {
                Ok(r) => {
                    metrics::histogram!("ips_batch_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::histogram!("ips_batch_messages").record(batch.len() as f64);
                    break r;
                }
                Err(e) => match delays.next() {
                    Some(d) => {
                        tracing::warn!(error = %e, retry_in = ?d, messages = batch.len(), "store unavailable; retrying batch");
                        tokio::time::sleep(d).await;
                    }
                    None => {
                        tracing::error!(error = %e, messages = batch.len(), "store still unavailable; returning batch to the queue");
                        for _ in &inbounds {
                            metrics::counter!("ips_messages_total", "source" => "amqp", "outcome" => "requeued").increment(1);
                        }
                        if let Some(last) = batch.last() {
                            last.acker
                                .nack(BasicNackOptions {
                                    multiple: true,
                                    requeue: true,
                                })
                                .await?;
                        }
                        return Ok(());
                    }
                },
            }
        };
        for (d, r) in batch.iter().zip(&results) {
            if let Applied::Rejected(rej) = r {
                tracing::warn!(code = rej.code.as_str(), reason = %rej.reason, "dead-lettering inbound message");
                self.dead_letter(dlq, d, rej.code.as_str(), &rej.reason)
                    .await?;
            }
        }
        if let Some(last) = batch.last() {
            last.acker.ack(BasicAckOptions { multiple: true }).await?;
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        dlq: &Channel,
        d: &Delivery,
        code: &str,
        reason: &str,
    ) -> Result<(), SessionError> {
        // The store first: a crash after this and before the ack redelivers
        // the message, which is rejected again and updates this same row.
        let properties = serde_json::to_string(&d.properties)?;
        self.dead_letters
            .dead_letter_record(
                &NewDeadLetter {
                    source_queue: &self.settings.inbound_queue,
                    message_id: &message_id(d),
                    error_code: code,
                    reason,
                    exchange: d.exchange.as_str(),
                    routing_key: d.routing_key.as_str(),
                    properties: &properties,
                    body: &d.data,
                },
                crate::engine::ms(self.engine.now()),
            )
            .await?;
        let mut headers = d.properties.headers().clone().unwrap_or_default();
        headers.insert(
            "x-ips-error-code".into(),
            AMQPValue::LongString(code.into()),
        );
        headers.insert("x-ips-error".into(), AMQPValue::LongString(reason.into()));
        headers.insert(
            "x-ips-original-exchange".into(),
            AMQPValue::LongString(d.exchange.as_str().into()),
        );
        headers.insert(
            "x-ips-original-routing-key".into(),
            AMQPValue::LongString(d.routing_key.as_str().into()),
        );
        headers.insert(
            "x-ips-source-queue".into(),
            AMQPValue::LongString(self.settings.inbound_queue.as_str().into()),
        );
        let props = d
            .properties
            .clone()
            .with_headers(headers)
            .with_delivery_mode(2);
        let confirm = dlq
            .basic_publish(
                self.settings.dead_letter_exchange.as_str().into(),
                d.routing_key.clone(),
                BasicPublishOptions::default(),
                &d.data,
                props,
            )
            .await?
            .await?;
        match confirm {
            Confirmation::Nack(_) => Err(SessionError::DeadLetterNacked),
            _ => Ok(()),
        }
    }
}

/// The dedupe key: the `message_id` property, else a hash of the body.
fn message_id(d: &Delivery) -> String {
    match d.properties.message_id() {
        Some(id) if !id.as_str().is_empty() => id.as_str().to_owned(),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(&d.data))),
    }
}
