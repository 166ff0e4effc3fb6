//! The events sink: outbox events published to the events exchange.

use super::Publisher;
use crate::engine::outbox::{Delivered, OutboxMessage, Sink, SinkError};
use async_trait::async_trait;
use lapin::BasicProperties;
use std::sync::Arc;

pub struct EventSink {
    pub publisher: Arc<Publisher>,
    pub exchange: String,
}

#[async_trait]
impl Sink for EventSink {
    async fn deliver(&self, msg: &OutboxMessage) -> Result<Delivered, SinkError> {
        let OutboxMessage::Event(e) = msg else {
            return Err(SinkError::permanent(format!(
                "the events sink cannot deliver a {} row",
                msg.kind().as_str()
            )));
        };
        let body = serde_json::to_vec(&e.body)
            .map_err(|_| SinkError::permanent("event body is not serialisable"))?;
        let props = BasicProperties::default()
            .with_content_type(
                e.content_type
                    .as_deref()
                    .unwrap_or("application/json")
                    .into(),
            )
            .with_message_id(e.message_id.as_str().into())
            .with_type(e.routing_key.as_str().into());
        self.publisher
            .publish(&self.exchange, &e.routing_key, &body, props)
            .await
            .map_err(|err| SinkError::transient(format!("publish failed: {err}")))?;
        Ok(Delivered::Done { result: None })
    }
}
