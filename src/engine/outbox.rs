//! The outbox dispatcher: delivers outbox rows to FHIR and AMQP.
//!
//! Rows are claimed with a lease, delivered concurrently (rows that share an
//! ordering key, i.e. one case, are never in flight together), and marked
//! done only after the remote side confirmed. Every FHIR write is conditional
//! on a business identifier, so a crash between the remote write and
//! `outbox_done` delivers again harmlessly: the second conditional create
//! finds the first. Failures back off exponentially with jitter; rows that
//! keep failing, or fail permanently (a 4xx), are parked as `failed` and
//! counted in metrics.

use crate::amqp::Publisher;
use crate::config::{AmqpSettings, OutboxSettings};
use crate::engine::{Engine, ms};
use crate::fhir::{FhirClient, FhirError};
use crate::store::{OutboxRow, Settlement};
use futures_util::StreamExt;
use lapin::BasicProperties;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Dispatcher {
    pub engine: Engine,
    pub fhir: Arc<FhirClient>,
    pub publisher: Arc<Publisher>,
    pub settings: OutboxSettings,
    pub amqp: AmqpSettings,
    /// When the pending/failed gauges were last refreshed.
    gauges_at: std::sync::Mutex<Option<std::time::Instant>>,
}

#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("{0}")]
    Fhir(#[from] FhirError),
    #[error("publish failed: {0}")]
    Publish(#[from] crate::amqp::publisher::PublishError),
    #[error("outbox row is malformed: {0}")]
    Malformed(String),
}

impl DeliveryError {
    fn is_permanent(&self) -> bool {
        match self {
            DeliveryError::Fhir(e) => !e.is_retryable(),
            DeliveryError::Publish(_) => false,
            DeliveryError::Malformed(_) => true,
        }
    }
}

impl Dispatcher {
    pub fn new(
        engine: Engine,
        fhir: Arc<FhirClient>,
        publisher: Arc<Publisher>,
        settings: OutboxSettings,
        amqp: AmqpSettings,
    ) -> Self {
        Dispatcher {
            engine,
            fhir,
            publisher,
            settings,
            amqp,
            gauges_at: Default::default(),
        }
    }

    /// Delivers until `shutdown`; the round in flight is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let delivered = match self.round().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox round failed");
                    0
                }
            };
            if shutdown.is_cancelled() {
                return;
            }
            if delivered == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    _ = self.engine.outbox_wake.notified() => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }

    /// Claims and delivers one batch, then records every outcome in one
    /// transaction; returns how many rows were claimed. If recording fails,
    /// the leases expire and the rows are delivered again (harmlessly: every
    /// delivery is idempotent).
    pub async fn round(&self) -> Result<usize, crate::store::StoreError> {
        let now = ms(self.engine.now());
        let lease_until = now + self.settings.lease.as_millis() as i64;
        let rows = self
            .engine
            .store
            .outbox_claim(now, lease_until, self.settings.batch_size)
            .await?;
        let n = rows.len();
        let outcomes: Vec<Settlement> = futures_util::stream::iter(rows)
            .map(|row| async move { self.settle(&row).await })
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await;
        self.engine.store.outbox_settle(&outcomes).await?;
        if n > 0
            && self.gauges_due()
            && let Ok((pending, failed)) = self.engine.store.outbox_counts().await
        {
            metrics::gauge!("ips_outbox_pending").set(pending as f64);
            metrics::gauge!("ips_outbox_failed").set(failed as f64);
        }
        Ok(n)
    }

    /// Counting rows scans the outbox: at most once a second.
    fn gauges_due(&self) -> bool {
        let mut last = self.gauges_at.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        true
    }

    /// Delivers one row and says how that ended.
    async fn settle(&self, row: &OutboxRow) -> Settlement {
        match self.deliver(row).await {
            Ok(result) => Settlement::Done {
                id: row.id,
                at: ms(self.engine.now()),
                result,
            },
            Err(e) if e.is_permanent() || row.attempts >= i64::from(self.settings.max_attempts) => {
                tracing::error!(error = %e, outbox_id = row.id, kind = %row.kind, attempts = row.attempts, "outbox row parked as failed");
                Settlement::Failed {
                    id: row.id,
                    error: e.to_string(),
                }
            }
            Err(e) => {
                let delay = self.retry_delay(row.attempts, &e);
                tracing::info!(error = %e, outbox_id = row.id, retry_in = ?delay, "outbox delivery failed; will retry");
                Settlement::Retry {
                    id: row.id,
                    next_attempt_at: ms(self.engine.now()) + delay.as_millis() as i64,
                    error: e.to_string(),
                }
            }
        }
    }

    fn retry_delay(&self, attempts: i64, e: &DeliveryError) -> Duration {
        if let DeliveryError::Fhir(f) = e
            && let Some(d) = f.retry_after()
        {
            return d;
        }
        let exp = self
            .settings
            .retry_min_delay
            .saturating_mul(1u32 << attempts.clamp(0, 20) as u32);
        let capped = exp.min(self.settings.retry_max_delay);
        // Full jitter between half and all of the delay, so replicas do not retry in step.
        capped.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }

    async fn deliver(&self, row: &OutboxRow) -> Result<Option<String>, DeliveryError> {
        let payload: Value = serde_json::from_str(&row.payload)
            .map_err(|e| DeliveryError::Malformed(e.to_string()))?;
        match row.kind.as_str() {
            "fhir" => {
                let resource = &payload["resource"];
                let (Some(system), Some(value)) = (
                    payload["identifier_system"].as_str(),
                    payload["identifier_value"].as_str(),
                ) else {
                    return Err(DeliveryError::Malformed(
                        "fhir row without identifier".into(),
                    ));
                };
                let written = self
                    .fhir
                    .create_conditional(resource, system, value)
                    .await?;
                let result = serde_json::to_string(&written)
                    .map_err(|e| DeliveryError::Malformed(e.to_string()))?;
                Ok(Some(result))
            }
            "event" => {
                let routing_key = payload["routing_key"]
                    .as_str()
                    .ok_or_else(|| DeliveryError::Malformed("event without routing_key".into()))?;
                let message_id = payload["message_id"].as_str().unwrap_or_default();
                let body = serde_json::to_vec(&payload["body"])
                    .map_err(|e| DeliveryError::Malformed(e.to_string()))?;
                let props = BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_message_id(message_id.into())
                    .with_type(routing_key.into());
                self.publisher
                    .publish(&self.amqp.events_exchange, routing_key, &body, props)
                    .await?;
                Ok(None)
            }
            other => Err(DeliveryError::Malformed(format!(
                "unknown outbox kind {other:?}"
            ))),
        }
    }
}
