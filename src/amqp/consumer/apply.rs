//! The second stage of the consumer: applies classified batches, one at a
//! time and in order, each in one store transaction, and only then
//! acknowledges it. Runs on a task of its own, beside the reader.

use super::SessionError;
use crate::config::AmqpSettings;
use crate::engine::{Applied, Engine, Inbound};
use crate::store::dead_letters::{DeadLetters, NewDeadLetter};
use backon::BackoffBuilder;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicPublishOptions};
use lapin::types::AMQPValue;
use lapin::{Channel, Confirmation};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

/// Store attempts for one batch before it is handed back to the broker.
const STORE_ATTEMPTS: usize = 6;

/// Deliveries read together, with what each was classified as (same order).
pub(super) struct Batch {
    pub deliveries: Vec<Delivery>,
    pub inbounds: Vec<Inbound>,
    /// The applier's turn: held until the batch is applied, so the reader
    /// knows when the applier is free (see `Consumer::read`).
    pub turn: Option<OwnedSemaphorePermit>,
}

impl Batch {
    pub fn with_capacity(n: usize) -> Batch {
        Batch {
            deliveries: Vec::with_capacity(n),
            inbounds: Vec::with_capacity(n),
            turn: None,
        }
    }

    pub fn len(&self) -> usize {
        self.deliveries.len()
    }
}

pub(super) struct Applier {
    pub settings: AmqpSettings,
    pub engine: Engine,
    pub dead_letters: Arc<dyn DeadLetters>,
    /// A confirm channel to the dead-letter exchange.
    pub dlq: Channel,
}

impl Applier {
    /// Applies batches until the reader hangs up, or until one fails.
    pub async fn run(self, mut batches: mpsc::Receiver<Batch>) -> Result<(), SessionError> {
        while let Some(batch) = batches.recv().await {
            self.apply(batch).await?;
        }
        Ok(())
    }

    /// Applies one batch: one transaction, then dead letters, then one ack.
    async fn apply(&self, batch: Batch) -> Result<(), SessionError> {
        let Batch {
            deliveries: batch,
            inbounds,
            turn: _turn,
        } = batch;
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
                        metrics::counter!("ips_messages_total", "source" => "amqp", "outcome" => "requeued")
                            .increment(inbounds.len() as u64);
                        // Handed back by ending the session: the channel's
                        // close returns this batch and everything read after
                        // it in the order they were delivered. A nack first
                        // would not: the broker redelivers the nacked batch
                        // at once, to this same consumer, and on close a
                        // quorum queue returns it *after* the batches read
                        // behind it (it returns in order of last delivery),
                        // and counts the batch's delivery twice.
                        // (`tests/amqp_consumer.rs::a_batch_handed_back_keeps_its_place_in_the_queue`.)
                        return Err(SessionError::StoreUnavailable);
                    }
                },
            }
        };
        for (d, r) in batch.iter().zip(&results) {
            if let Applied::Rejected(rej) = r {
                tracing::warn!(code = rej.code.as_str(), reason = %rej.reason, "dead-lettering inbound message");
                self.dead_letter(d, rej.code.as_str(), &rej.reason).await?;
            }
        }
        if let Some(last) = batch.last() {
            last.acker.ack(BasicAckOptions { multiple: true }).await?;
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
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
                    message_id: &super::message_id(d),
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
        let confirm = self
            .dlq
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
