//! The FHIR sink: outbox writes done with the FHIR client's idempotent
//! operations (conditional create, `If-Match` update, transaction).

use super::{FhirClient, FhirError};
use crate::engine::outbox::{Delivered, OutboxMessage, Sink, SinkError};
use async_trait::async_trait;
use std::sync::Arc;

pub struct FhirSink {
    pub client: Arc<FhirClient>,
}

fn sink_error(e: FhirError) -> SinkError {
    SinkError {
        permanent: !e.is_retryable(),
        retry_after: e.retry_after(),
        message: e.to_string(),
    }
}

#[async_trait]
impl Sink for FhirSink {
    async fn deliver(&self, msg: &OutboxMessage) -> Result<Delivered, SinkError> {
        let written = match msg {
            OutboxMessage::FhirCreate(c) => self
                .client
                .create_conditional(&c.resource, &c.identifier_system, &c.identifier_value)
                .await
                .map_err(sink_error)?,
            OutboxMessage::FhirUpdate(u) => {
                match self.client.update_if_match(&u.resource, &u.if_match).await {
                    Ok(w) => w,
                    Err(FhirError::VersionConflict { resource, expected }) => {
                        // Someone changed it first: read what is there now
                        // for the handler (or the person) to decide on.
                        let current = self.client.read(&resource).await.map_err(sink_error)?;
                        return Ok(Delivered::Conflict {
                            version: current.as_ref().and_then(|c| c.version.clone()),
                            current: current.map(|c| c.body),
                            reason: format!(
                                "version conflict on {resource}: it changed since version {expected}"
                            ),
                        });
                    }
                    Err(e) => return Err(sink_error(e)),
                }
            }
            OutboxMessage::FhirTransaction(t) => {
                let reply = self
                    .client
                    .transaction(&t.bundle)
                    .await
                    .map_err(sink_error)?;
                return Ok(Delivered::Done {
                    result: Some(format!("transaction: {reply} entries")),
                });
            }
            OutboxMessage::Event(_) => {
                return Err(SinkError::permanent(
                    "the FHIR sink cannot deliver an event row",
                ));
            }
        };
        let result = serde_json::to_string(&written)
            .map_err(|_| SinkError::permanent("write result is not serialisable"))?;
        Ok(Delivered::Done {
            result: Some(result),
        })
    }
}
