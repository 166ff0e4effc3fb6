//! The inbound consumer.
//!
//! Deliveries are taken in batches (up to `batch_size`; see [`Consumer::read`]
//! for when a batch closes) and classified here; an [`apply::Applier`]
//! on a task of its own applies each batch in one store transaction and only
//! then acknowledges it, with one `multiple` ack. Why two stages: reading and
//! classifying a batch (JSON parsing, checks, serialising what is kept) is
//! CPU work that does not need the store, so it runs on one core while the
//! previous batch's transaction runs on the other, instead of one after the
//! other. Batches are applied one at a time and in the order they arrived,
//! and at most `prefetch` deliveries are unacknowledged, which bounds what
//! waits between the stages.
//!
//! A message that cannot be acted on is kept in the store's `dead_letters`
//! table (read by `ips-bridge dlq`) and published to the dead-letter exchange
//! (see [`apply`]) before it is acked, so it is never silently dropped and
//! never blocks the queue. When the store stays unavailable the batch is
//! handed back unacknowledged and the session ends, so that every later
//! delivery goes back too and the queue's order is kept. A dropped broker
//! connection is re-established with backoff; deliveries that were not acked
//! come back and inbox dedupe absorbs any that had already been committed.

mod apply;

use super::BrokerHealth;
use crate::config::AmqpSettings;
use crate::engine::{Engine, Inbound, Source};
use crate::ingest::Reading;
use crate::ingest::classify::{self, Envelope};
use crate::store::dead_letters::DeadLetters;
use apply::{Applier, Batch};
use backon::BackoffBuilder;
use futures_util::StreamExt;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
    #[error(
        "the store stayed unavailable; the batch and everything after it went back to the queue"
    )]
    StoreUnavailable,
    #[error("the batch applier stopped: {0}")]
    Applier(#[from] tokio::task::JoinError),
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
        // The reader sends only when the applier is free (see `read`), so
        // the channel never holds a batch for long: the next one fills in the
        // reader, where it can still grow.
        let (to_apply, batches) = mpsc::channel::<Batch>(1);
        let applier = Applier {
            settings: self.settings.clone(),
            engine: self.engine.clone(),
            dead_letters: self.dead_letters.clone(),
            dlq,
        };
        let mut applying = tokio::spawn(applier.run(batches));
        *connected = true;
        self.health.set(true);
        tracing::info!(queue = %self.settings.inbound_queue, prefetch = self.settings.prefetch, "consuming");
        let ended = self
            .read(&mut consumer, &to_apply, &mut applying, shutdown)
            .await;
        // Stop taking new deliveries and let the applier finish what it
        // holds (it commits and acks, or hands back; its store retries are
        // bounded), then close: anything prefetched and not acked returns to
        // the queue on close.
        drop(to_apply);
        let result = match ended {
            Ended::Applier(r) => joined(r),
            Ended::Shutdown => joined(applying.await),
            Ended::Failed(e) => {
                let _ = applying.await;
                Err(e)
            }
        };
        let _ = ch
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
        let _ = conn.close(200, "shutdown".into()).await;
        result
    }

    /// Reads and classifies batches and hands them to the applier until
    /// `shutdown`, or until the consumer or the applier stops.
    ///
    /// A batch is closed when it is full, or once `batch_wait` has passed
    /// since its first delivery *and* the applier is free (`idle`): under
    /// load, batches grow while the previous one is being applied, so there
    /// are fewer, larger commits; when idle, a message waits `batch_wait`
    /// at most. Each delivery is classified as it arrives, so a batch is
    /// ready the moment the applier is.
    async fn read(
        &self,
        consumer: &mut lapin::Consumer,
        to_apply: &mpsc::Sender<Batch>,
        applying: &mut JoinHandle<Result<(), SessionError>>,
        shutdown: &CancellationToken,
    ) -> Ended {
        let idle = Arc::new(Semaphore::new(1));
        let size = self.settings.batch_size;
        loop {
            let first = tokio::select! {
                d = consumer.next() => d,
                // The applier only ends early when it fails.
                r = &mut *applying => return Ended::Applier(r),
                _ = shutdown.cancelled() => return Ended::Shutdown,
            };
            let mut batch = Batch::with_capacity(size);
            if let Err(e) = self.take(&mut batch, first) {
                return Ended::Failed(e);
            }
            let deadline = tokio::time::Instant::now() + self.settings.batch_wait;
            while batch.len() < size {
                match tokio::time::timeout_at(deadline, consumer.next()).await {
                    Ok(d) => {
                        if let Err(e) = self.take(&mut batch, d) {
                            return Ended::Failed(e);
                        }
                    }
                    Err(_) => break,
                }
            }
            let turn = loop {
                tokio::select! {
                    biased;
                    t = idle.clone().acquire_owned() => break t,
                    d = consumer.next(), if batch.len() < size => {
                        if let Err(e) = self.take(&mut batch, d) {
                            return Ended::Failed(e);
                        }
                    }
                    r = &mut *applying => return Ended::Applier(r),
                    // Not applied and not acked: it returns to the queue on close.
                    _ = shutdown.cancelled() => return Ended::Shutdown,
                }
            };
            // The semaphore is never closed.
            let Ok(turn) = turn else {
                return Ended::Shutdown;
            };
            batch.turn = Some(turn);
            // The applier is free and the channel empty: this does not wait.
            // Its receiver lives as long as the applier, watched above.
            if to_apply.send(batch).await.is_err() {
                return Ended::Applier(applying.await);
            }
        }
    }

    /// Adds what the consumer stream yielded to `batch`, classified.
    fn take(
        &self,
        batch: &mut Batch,
        next: Option<Result<Delivery, lapin::Error>>,
    ) -> Result<(), SessionError> {
        let d = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(SessionError::Cancelled),
        };
        let env = Envelope {
            content_type: d.properties.content_type().as_ref().map(|s| s.as_str()),
            message_type: d.properties.kind().as_ref().map(|s| s.as_str()),
        };
        let inbound = Inbound {
            source: Source::Amqp,
            message_id: message_id(&d),
            received_at: self.engine.now(),
            command: classify::classify(&d.data, &env, &self.reading.limits, &self.reading.rules),
        };
        batch.inbounds.push(inbound);
        batch.deliveries.push(d);
        Ok(())
    }
}

/// Why [`Consumer::read`] stopped.
enum Ended {
    Shutdown,
    /// The applier's task ended (it ends early only on an error).
    Applier(Result<Result<(), SessionError>, tokio::task::JoinError>),
    Failed(SessionError),
}

/// The applier's outcome, whether its task failed or it returned an error.
fn joined(r: Result<Result<(), SessionError>, tokio::task::JoinError>) -> Result<(), SessionError> {
    r.map_err(SessionError::from).and_then(|r| r)
}

/// The dedupe key: the `message_id` property, else a hash of the body.
fn message_id(d: &Delivery) -> String {
    match d.properties.message_id() {
        Some(id) if !id.as_str().is_empty() => id.as_str().to_owned(),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(&d.data))),
    }
}
