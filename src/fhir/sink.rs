//! The FHIR sink: outbox writes done with the FHIR client's idempotent
//! operations (conditional create, `If-Match` update, transaction).

use super::{FhirClient, FhirError};
use crate::engine::outbox::{Delivered, FhirAmend, OutboxMessage, Sink, SinkError};
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
            OutboxMessage::FhirCreate(c) => {
                let rt = c
                    .resource
                    .resource_type()
                    .ok_or_else(|| SinkError::permanent("queued create has no resourceType"))?;
                let body = bytes::Bytes::copy_from_slice(c.resource.get().as_bytes());
                self.client
                    .create_conditional_raw(&rt, body, &c.identifier_system, &c.identifier_value)
                    .await
                    .map_err(sink_error)?
            }
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
            OutboxMessage::FhirPut(p) => self.client.put(&p.resource).await.map_err(sink_error)?,
            OutboxMessage::FhirAmend(a) => return self.amend(a).await,
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
            OutboxMessage::Event(_) | OutboxMessage::MeshSend(_) => {
                return Err(SinkError::permanent(
                    "the FHIR sink cannot deliver an event or MESH row",
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

/// How often an amendment is re-applied to a newer version after a 412
/// before the row is parked for a person.
const AMEND_REBASES: usize = 3;

impl FhirSink {
    /// Finds the resource by identifier, applies the amendment and writes it
    /// back with `If-Match`; a 412 re-reads and re-applies (see
    /// [`crate::engine::outbox::amend`]).
    async fn amend(&self, a: &FhirAmend) -> Result<Delivered, SinkError> {
        let what = format!("{} by business identifier", a.resource_type);
        for _ in 0..=AMEND_REBASES {
            let Some(current) = self
                .client
                .find_by_identifier(&a.resource_type, &a.identifier_system, &a.identifier_value)
                .await
                .map_err(sink_error)?
            else {
                // Rows of one case go in order, so its create has been
                // delivered; a missing resource was deleted by someone.
                return Err(SinkError::permanent(format!("{what}: not found")));
            };
            let mut body = current.body;
            if !a.change.apply(&mut body) {
                return Ok(Delivered::Done {
                    result: Some(format!("{what}: already amended")),
                });
            }
            let Some(version) = current.version else {
                return Err(SinkError::permanent(format!(
                    "{what}: the server gave no version to update against"
                )));
            };
            match self.client.update_if_match(&body, &version).await {
                Ok(w) => {
                    let result = serde_json::to_string(&w)
                        .map_err(|_| SinkError::permanent("write result is not serialisable"))?;
                    return Ok(Delivered::Done {
                        result: Some(result),
                    });
                }
                Err(FhirError::VersionConflict { .. }) => continue,
                Err(e) => return Err(sink_error(e)),
            }
        }
        Ok(Delivered::Conflict {
            current: None,
            version: None,
            reason: format!("{what}: still changing after {AMEND_REBASES} re-reads"),
        })
    }
}
