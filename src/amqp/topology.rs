//! Declares exchanges, queues and bindings. Idempotent: declaring what exists
//! with the same arguments is a no-op, so every (re)connect declares again.
//! With `amqp.declare_topology` off the broker's own definitions are the
//! topology (`deploy/rabbitmq/definitions.json`, imported by the platform
//! team): the bridge then only checks, with passive declares, that every
//! exchange and queue it uses exists, and names the one that does not.
//!
//! The inbound queue is a quorum queue (replicated, durable) with a delivery
//! limit: a message that keeps failing transiently is dead-lettered by the
//! broker after `delivery_limit` attempts instead of looping forever.

use crate::config::AmqpSettings;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

pub async fn declare(ch: &Channel, s: &AmqpSettings) -> lapin::Result<()> {
    if !s.declare_topology {
        return check_exists(ch, s).await;
    }
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        s.inbound_exchange.as_str().into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        s.dead_letter_exchange.as_str().into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        s.events_exchange.as_str().into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await?;

    let queue_opts = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut dlq_args = FieldTable::default();
    dlq_args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    ch.queue_declare(s.dead_letter_queue.as_str().into(), queue_opts, dlq_args)
        .await?;
    ch.queue_bind(
        s.dead_letter_queue.as_str().into(),
        s.dead_letter_exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;

    ch.queue_declare(
        s.inbound_queue.as_str().into(),
        queue_opts,
        inbound_arguments(s),
    )
    .await?;
    for key in &s.inbound_bindings {
        ch.queue_bind(
            s.inbound_queue.as_str().into(),
            s.inbound_exchange.as_str().into(),
            key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    Ok(())
}

/// Arguments of the inbound queue (they must match on every declare).
pub fn inbound_arguments(s: &AmqpSettings) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(s.dead_letter_exchange.as_str().into()),
    );
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(s.delivery_limit)),
    );
    if s.single_active_consumer {
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    }
    args
}

/// Passive declares of everything the bridge uses. A missing exchange or
/// queue closes the channel with 404; the error is logged with its name and
/// what to do, and the caller retries as for any broker error.
async fn check_exists(ch: &Channel, s: &AmqpSettings) -> lapin::Result<()> {
    let passive_exchange = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    for name in [
        &s.inbound_exchange,
        &s.dead_letter_exchange,
        &s.events_exchange,
    ] {
        ch.exchange_declare(
            name.as_str().into(),
            ExchangeKind::Topic,
            passive_exchange,
            FieldTable::default(),
        )
        .await
        .inspect_err(|e| missing("exchange", name, e))?;
    }
    let passive_queue = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    for name in [&s.inbound_queue, &s.dead_letter_queue] {
        ch.queue_declare(name.as_str().into(), passive_queue, FieldTable::default())
            .await
            .inspect_err(|e| missing("queue", name, e))?;
    }
    Ok(())
}

fn missing(kind: &str, name: &str, e: &lapin::Error) {
    tracing::error!(
        kind,
        name,
        error = %e,
        "amqp.declare_topology is off and the broker refused a passive declare: \
         import deploy/rabbitmq/definitions.json into this vhost (rabbitmqctl import_definitions), \
         or check the names in [amqp]"
    );
}
