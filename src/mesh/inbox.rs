//! The bridge's MESH inbox: acknowledgements and reports about documents
//! it sent.
//!
//! Each message is downloaded, read into a command (`ingest::mesh`),
//! applied by the engine under the MESH message id (the inbox table
//! deduplicates, so a message downloaded again after a crash changes
//! nothing), and only then acknowledged to MESH. A message the bridge cannot
//! read is kept in the dead-letter store with its reason before it is
//! acknowledged: nothing is lost, and it does not block the inbox.

use super::client::{Incoming, MeshClient};
use super::error::MeshError;
use crate::engine::Engine;
use crate::engine::command::{Inbound, Source};
use crate::engine::outcome::Applied;
use crate::ingest::mesh::{MeshMessage, classify};
use crate::store::dead_letters::{DeadLetters, NewDeadLetter};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct InboxPoller {
    pub engine: Engine,
    pub client: Arc<MeshClient>,
    pub dead_letters: Arc<dyn DeadLetters>,
    pub interval: Duration,
    pub auth_backoff: Duration,
}

impl InboxPoller {
    pub async fn run(self, shutdown: CancellationToken) {
        match self.client.handshake().await {
            Ok(()) => tracing::info!(mailbox = self.client.mailbox(), "MESH handshake done"),
            Err(e) => tracing::error!(error = %e, "MESH handshake failed"),
        }
        loop {
            let wait = match self.poll().await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(messages = n, "MESH inbox read");
                    }
                    self.interval
                }
                Err(e @ MeshError::Auth { .. }) => {
                    metrics::counter!("ips_mesh_inbox_failures_total", "reason" => e.label())
                        .increment(1);
                    tracing::error!(error = %e, retry_in = ?self.auth_backoff, "MESH inbox: credentials refused; not asking again for a while");
                    self.auth_backoff.max(self.interval)
                }
                Err(e) => {
                    metrics::counter!("ips_mesh_inbox_failures_total", "reason" => e.label())
                        .increment(1);
                    tracing::warn!(error = %e, "MESH inbox could not be read; will try again");
                    self.interval
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// One look at the inbox; returns how many messages were taken.
    async fn poll(&self) -> Result<usize, MeshError> {
        let ids = self.client.inbox().await?;
        let mut taken = 0;
        for id in ids {
            let incoming = self.client.download(&id).await?;
            if self.take(&incoming).await {
                self.client.acknowledge(&id).await?;
                taken += 1;
            }
        }
        Ok(taken)
    }

    /// Applies one message; `false` when it must stay in the inbox (the
    /// store failed: the next look tries again).
    async fn take(&self, m: &Incoming) -> bool {
        let view = MeshMessage {
            message_type: m.header("mex-messagetype"),
            workflow_id: m.header("mex-workflowid"),
            local_id: m.header("mex-localid"),
            linked_message_id: m.header("mex-linkedmsgid"),
            status_success: m.header("mex-statussuccess"),
            status_code: m.header("mex-statuscode"),
            status_event: m.header("mex-statusevent"),
            body: &m.body,
        };
        let inbound = Inbound {
            source: Source::Mesh,
            message_id: m.message_id.clone(),
            received_at: self.engine.now(),
            command: classify(&view),
        };
        let applied = match self.engine.execute_one(inbound).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "MESH message not applied (store); it stays in the inbox");
                return false;
            }
        };
        if let Applied::Rejected(r) = &applied {
            metrics::counter!("ips_mesh_messages_rejected_total", "code" => r.code.as_str())
                .increment(1);
            tracing::warn!(code = %r.code, reason = %r.reason, mesh_message_id = %m.message_id, "MESH message refused; kept as a dead letter");
            let props = serde_json::json!({
                "mex-messagetype": view.message_type,
                "mex-workflowid": view.workflow_id,
                "mex-localid": view.local_id,
                "mex-linkedmsgid": view.linked_message_id,
            })
            .to_string();
            let stored = self
                .dead_letters
                .dead_letter_record(
                    &NewDeadLetter {
                        source_queue: &format!("mesh:{}", self.client.mailbox()),
                        message_id: &m.message_id,
                        error_code: r.code.as_str(),
                        reason: &r.reason,
                        exchange: "",
                        routing_key: view.workflow_id.unwrap_or_default(),
                        properties: &props,
                        body: &m.body,
                    },
                    crate::engine::ms(self.engine.now()),
                )
                .await;
            if let Err(e) = stored {
                tracing::warn!(error = %e, "cannot keep the refused MESH message; it stays in the inbox");
                return false;
            }
        }
        true
    }
}
