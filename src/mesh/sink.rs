//! The MESH sink: outbox `MeshSend` rows sent exactly once.
//!
//! Tracking first, then send: a row delivered again after a crash between
//! the send and the record of it (or after a lost reply) finds its message
//! by `mex-LocalID` and is settled with that message's id instead of sending
//! a second copy. What MESH refuses for good (credentials, recipient, size)
//! is a permanent error: the dispatcher parks the row with the reason at
//! once, so a refusal costs one request, not a retry storm.

use super::client::MeshClient;
use super::error::MeshError;
use crate::engine::outbox::{Delivered, OutboxMessage, Sink, SinkError};
use async_trait::async_trait;
use std::sync::Arc;

pub struct MeshSink {
    pub client: Arc<MeshClient>,
}

fn sink_error(e: MeshError) -> SinkError {
    metrics::counter!("ips_mesh_send_failures_total", "reason" => e.label()).increment(1);
    SinkError {
        permanent: e.is_permanent(),
        retry_after: e.retry_after(),
        message: e.to_string(),
    }
}

#[async_trait]
impl Sink for MeshSink {
    async fn deliver(&self, msg: &OutboxMessage) -> Result<Delivered, SinkError> {
        let OutboxMessage::MeshSend(m) = msg else {
            return Err(SinkError::permanent(
                "the MESH sink was given a message that is not a MESH send",
            ));
        };
        // Checked before any request: a message MESH would refuse for its
        // size costs nothing to refuse here.
        let len = m.content.len() as u64;
        if let Err(e) = self.client.check_size(len) {
            return Err(sink_error(e));
        }
        if let Some(t) = self.client.track(&m.local_id).await.map_err(sink_error)? {
            if t.status.as_deref() == Some("uploading") {
                // The first chunk went, the rest did not: finish it.
                self.client
                    .resume(m, &t.message_id)
                    .await
                    .map_err(sink_error)?;
                return Ok(Delivered::Done {
                    result: Some(format!("mesh:{} (chunks resumed)", t.message_id)),
                });
            }
            tracing::info!(
                mesh_message_id = %t.message_id,
                status = t.status.as_deref().unwrap_or("unknown"),
                "MESH already has this message (sent before a restart); not sending it again"
            );
            return Ok(Delivered::Done {
                result: Some(format!("mesh:{} (found by tracking)", t.message_id)),
            });
        }
        let id = self.client.send(m).await.map_err(sink_error)?;
        metrics::counter!("ips_mesh_messages_sent_total", "workflow" => workflow_label(&m.workflow_id))
            .increment(1);
        Ok(Delivered::Done {
            result: Some(format!("mesh:{id}")),
        })
    }
}

/// Workflow ids as metric labels: the configured ones by name, others grouped.
fn workflow_label(w: &str) -> &'static str {
    match w {
        "GPCONNECT_SEND_DOCUMENT" => "GPCONNECT_SEND_DOCUMENT",
        _ => "other",
    }
}
