//! RabbitMQ helpers: declaring queues as the bridge does, publishing with
//! confirms, and the raw lapin consumer the bridge is compared with.

use crate::fixtures::Message;
use anyhow::{Context as _, bail};
use futures_util::StreamExt;
use ips_bridge::config::AmqpSettings;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, PublisherConfirm};
use std::time::{Duration, Instant};

/// Publishes in flight before their confirms are awaited: enough to keep the
/// broker busy, few enough to bound memory.
const CONFIRM_WINDOW: usize = 1000;

/// A connection with one publisher-confirm channel.
pub struct Amqp {
    pub conn: Connection,
    pub ch: Channel,
}

impl Amqp {
    pub async fn connect(url: &str, name: &str) -> anyhow::Result<Amqp> {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        let conn = Connection::connect(url, props)
            .await
            .with_context(|| format!("cannot connect to RabbitMQ at {}", redact(url)))?;
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Amqp { conn, ch })
    }

    pub async fn close(self) {
        let _ = self.conn.close(200, "bench done".into()).await;
    }

    /// Declares `queue` exactly as the bridge declares its inbound queue
    /// (quorum, dead-letter exchange, delivery limit, single active consumer).
    pub async fn declare_like_inbound(&self, queue: &str, s: &AmqpSettings) -> anyhow::Result<()> {
        let opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        self.ch
            .queue_declare(
                queue.into(),
                opts,
                ips_bridge::amqp::topology::inbound_arguments(s),
            )
            .await?;
        Ok(())
    }

    /// Publishes every message persistently and waits for all confirms.
    pub async fn publish_all(
        &self,
        exchange: &str,
        routing_key: &str,
        messages: &[Message],
    ) -> anyhow::Result<()> {
        let mut in_flight = Vec::with_capacity(CONFIRM_WINDOW);
        for m in messages {
            in_flight.push(self.publish(exchange, routing_key, m).await?);
            if in_flight.len() >= CONFIRM_WINDOW {
                await_confirms(&mut in_flight).await?;
            }
        }
        await_confirms(&mut in_flight).await
    }

    /// Publishes one message (persistent, FHIR JSON, with its message id); the
    /// confirm is returned to be awaited by the caller.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        m: &Message,
    ) -> anyhow::Result<PublisherConfirm> {
        let props = BasicProperties::default()
            .with_message_id(m.id.as_str().into())
            .with_content_type("application/fhir+json".into())
            .with_delivery_mode(2);
        Ok(self
            .ch
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                &m.body,
                props,
            )
            .await?)
    }

    pub async fn delete_queue(&self, queue: &str) -> anyhow::Result<()> {
        self.ch
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await?;
        Ok(())
    }

    pub async fn delete_exchange(&self, exchange: &str) -> anyhow::Result<()> {
        self.ch
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await?;
        Ok(())
    }
}

/// Awaits the confirms in order and fails on the first nack.
pub async fn await_confirms(in_flight: &mut Vec<PublisherConfirm>) -> anyhow::Result<()> {
    for c in in_flight.drain(..) {
        if c.await?.is_nack() {
            bail!("the broker refused a publish (nack)");
        }
    }
    Ok(())
}

/// How a drain went: messages taken and the time from the first delivery to
/// the last acknowledgement.
pub struct Drained {
    pub messages: usize,
    pub first_to_last: Duration,
}

impl Drained {
    /// Messages per second after the first one (the clock starts at the first delivery).
    pub fn rate(&self) -> f64 {
        (self.messages.saturating_sub(1)) as f64 / self.first_to_last.as_secs_f64().max(1e-9)
    }
}

/// A queue for a raw baseline, declared exactly like the daemon's inbound
/// queue (same arguments, same prefetch setting) and registered for cleanup.
pub async fn raw_queue(
    svc: &crate::setup::Services,
    cleanup: &crate::setup::Cleanup,
    label: &str,
) -> anyhow::Result<(Amqp, crate::setup::Names, AmqpSettings)> {
    use crate::setup;
    let names = setup::Names::new(label);
    let settings = setup::settings(&setup::bridge_env(
        svc,
        "sqlite::memory:",
        &svc.sandbox_url,
        &names,
    ))?;
    let amqp = Amqp::connect(&svc.amqp_url, "ips-bench-publisher").await?;
    cleanup.queue(&names.queue);
    amqp.declare_like_inbound(&names.queue, &settings.amqp)
        .await?;
    Ok((amqp, names, settings.amqp))
}

/// A manual-ack consumer with `prefetch` on a connection of its own; keep the
/// connection as long as the consumer.
pub async fn consumer(
    url: &str,
    name: &str,
    queue: &str,
    prefetch: u16,
) -> anyhow::Result<(Connection, lapin::Consumer)> {
    let conn = Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name(format!("{name}-consumer").into()),
    )
    .await?;
    let ch = conn.create_channel().await?;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let consumer = ch
        .basic_consume(
            queue.into(),
            name.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((conn, consumer))
}

/// The baseline consumer: the least work a correct consumer does. Consumes
/// `n` messages from `queue` with `prefetch`, acknowledging each delivery on
/// receipt (one `basic.ack` per message, no processing).
pub async fn drain_raw(
    url: &str,
    queue: &str,
    prefetch: u16,
    n: usize,
    stall: Duration,
) -> anyhow::Result<Drained> {
    let (conn, mut consumer) = consumer(url, "ips-bench-raw", queue, prefetch).await?;
    let mut first = None;
    for taken in 0..n {
        let delivery = next_delivery(&mut consumer, stall, "raw", taken, n).await?;
        first.get_or_insert_with(Instant::now);
        delivery.acker.ack(BasicAckOptions::default()).await?;
    }
    let first_to_last = first.map(|t| t.elapsed()).unwrap_or_default();
    let _ = conn.close(200, "drained".into()).await;
    Ok(Drained {
        messages: n,
        first_to_last,
    })
}

/// The second baseline: the transport work the bridge's job itself needs.
/// Consumes `n` messages with `prefetch`, publishes one small persistent
/// message per delivery to `exchange` (a durable topic exchange declared like
/// the bridge's events exchange, with the same bindings: none in the bench)
/// on a confirm channel of the same connection, and acknowledges each
/// delivery once its publish is confirmed. Up to `prefetch` deliveries wait
/// for their confirms at once, as a relay that must not ack early would.
pub async fn drain_relay(
    url: &str,
    queue: &str,
    exchange: &str,
    prefetch: u16,
    n: usize,
    stall: Duration,
) -> anyhow::Result<Drained> {
    use lapin::options::ExchangeDeclareOptions;
    let (conn, mut consumer) = consumer(url, "ips-bench-relay", queue, prefetch).await?;
    let publisher = conn.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    publisher
        .exchange_declare(
            exchange.into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    // Each delivery's publish, confirm and ack run as a task of their own, up
    // to `prefetch` at once: a relay that must not ack early, but does not
    // wait for one confirm before publishing the next.
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(usize::from(prefetch.max(1))));
    let mut tasks = tokio::task::JoinSet::new();
    let mut first = None;
    for taken in 0..n {
        let delivery = next_delivery(&mut consumer, stall, "relay", taken, n).await?;
        first.get_or_insert_with(Instant::now);
        let slot = slots.clone().acquire_owned().await?;
        let (publisher, exchange) = (publisher.clone(), exchange.to_owned());
        tasks.spawn(async move {
            let _slot = slot;
            let body = format!(
                r#"{{"kind":"referral.received","message_id":"{taken}","case_id":"00000000-0000-0000-0000-000000000000"}}"#
            );
            let props = BasicProperties::default()
                .with_message_id(format!("relay-{taken}").into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            let confirm = publisher
                .basic_publish(
                    exchange.as_str().into(),
                    "referral.received".into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    props,
                )
                .await?;
            if confirm.await?.is_nack() {
                bail!("the broker nacked a relay publish");
            }
            delivery.acker.ack(BasicAckOptions::default()).await?;
            anyhow::Ok(())
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let first_to_last = first.map(|t| t.elapsed()).unwrap_or_default();
    let _ = publisher
        .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await;
    let _ = conn.close(200, "drained".into()).await;
    Ok(Drained {
        messages: n,
        first_to_last,
    })
}

/// The next delivery, or why there is none within `stall`.
async fn next_delivery(
    consumer: &mut lapin::Consumer,
    stall: Duration,
    who: &str,
    taken: usize,
    n: usize,
) -> anyhow::Result<lapin::message::Delivery> {
    let next = tokio::time::timeout(stall, consumer.next())
        .await
        .with_context(|| format!("{who} consumer stalled after {taken} of {n} messages"))?;
    match next {
        Some(d) => Ok(d?),
        None => bail!("the broker cancelled the {who} consumer after {taken} messages"),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    ips_bridge::config::redact_url(url)
}
