//! The outbox: what a committed transaction still has to tell other systems.
//!
//! Handlers queue [`OutboxMessage`]s in the transaction that decided them;
//! the [`dispatcher`] delivers them to [`Sink`]s after commit. The message is
//! a typed enum (stored as its kind code plus a JSON payload) so that a
//! handler cannot queue a write the dispatcher does not know how to do, and
//! each kind has its own retry policy.
//!
//! Every write is idempotent, which is what makes "deliver again after a
//! crash" safe: creates are conditional on a business identifier
//! (`If-None-Exist`), updates on a version (`If-Match`), transactions are
//! made of such entries, and events carry a stable `message_id`.

pub mod amend;
pub mod dispatcher;
mod retry;

pub use amend::{Amendment, FhirAmend};
pub use dispatcher::Dispatcher;
pub use retry::RetryPolicy;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// `POST Type` with `If-None-Exist: identifier=system|value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FhirCreate {
    pub identifier_system: String,
    pub identifier_value: String,
    pub resource: RawResource,
}

/// A resource kept as the JSON text the handler serialised, not as a tree.
///
/// Why: the dispatcher sends a create's body as it was queued. Decoding it
/// into a `serde_json::Value` and serialising it again for every delivery
/// (a map node per element, each allocated and freed) was a large part of
/// the write path's cost over a plain HTTP client, and changed nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawResource(Box<serde_json::value::RawValue>);

impl RawResource {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// `resourceType`, read without building the rest.
    pub fn resource_type(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Peek<'a> {
            #[serde(rename = "resourceType", borrow)]
            resource_type: Option<std::borrow::Cow<'a, str>>,
        }
        serde_json::from_str::<Peek>(self.get())
            .ok()?
            .resource_type
            .map(std::borrow::Cow::into_owned)
    }

    /// The resource as a tree (for tests and inspection).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.get()).unwrap_or(Value::Null)
    }
}

impl From<Value> for RawResource {
    fn from(v: Value) -> Self {
        // A `Value` always serialises (its keys are strings); the `null`
        // fallback only satisfies the signature.
        RawResource(
            serde_json::value::to_raw_value(&v)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        )
    }
}

/// Equal when the same JSON text: a queued row compares with what was queued.
impl PartialEq for RawResource {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

/// `PUT Type/id` with `If-Match: W/"version"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FhirUpdate {
    /// The whole resource to write, with `resourceType` and `id`.
    pub resource: Value,
    /// The version the handler decided on.
    pub if_match: String,
    pub on_conflict: OnConflict,
    /// How often this change was already re-applied after a conflict.
    #[serde(default)]
    pub rebases: u32,
}

/// What a 412 (someone changed the resource first) should lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Park the row with the reason, for a person to look at.
    Park,
    /// Re-read the resource and hand the conflict back to the handler that
    /// queued the update (a [`WriteConflict`](super::command::WriteConflict)
    /// command), which decides again on the current version.
    HandBack,
}

/// `PUT Type/id` with an id the bridge chose (update-as-create). For a
/// resource that has no business identifier to create conditionally on (an
/// R4 `Binary`): the id is derived from what the bridge holds, so a repeat
/// after a crash writes the same resource again instead of a second one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FhirPut {
    /// The whole resource, with `resourceType` and `id`.
    pub resource: Value,
}

/// `POST [base]` with a `transaction` Bundle whose entries are all conditional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FhirTransaction {
    pub bundle: Value,
}

/// A persistent, confirmed publish to the events exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPublish {
    pub routing_key: String,
    /// Stable across redeliveries, so consumers can deduplicate.
    pub message_id: String,
    pub body: Value,
    /// `application/json` for domain events; `application/fhir+json` for BaRS messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// A message sent over MESH (GP Connect Send Document to a GP practice).
///
/// `local_id` goes as `mex-LocalID`: before sending, the sink asks MESH's
/// tracking endpoint whether a message with that id was already sent, so a
/// repeat after a crash between the send and the record of it finds the
/// first send instead of making a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshSend {
    pub local_id: String,
    /// The recipient's mailbox id.
    pub to: String,
    pub workflow_id: String,
    /// `mex-Subject`: no patient data (MESH may show it to operators).
    pub subject: String,
    pub filename: String,
    /// `mex-Content-Type`: `application/fhir+xml` or `application/fhir+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The message content as it goes (the ITK3 Bundle as XML or JSON text).
    pub content: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutboxMessage {
    FhirCreate(FhirCreate),
    FhirUpdate(FhirUpdate),
    FhirPut(FhirPut),
    FhirAmend(FhirAmend),
    FhirTransaction(FhirTransaction),
    Event(EventPublish),
    MeshSend(MeshSend),
}

/// The kind code stored beside the payload.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[strum(serialize_all = "kebab-case")]
pub enum OutboxKind {
    /// Rows written before the outbox was typed say `fhir`; they were all creates.
    #[strum(serialize = "fhir-create", serialize = "fhir")]
    FhirCreate,
    FhirUpdate,
    FhirPut,
    FhirAmend,
    FhirTransaction,
    Event,
    MeshSend,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::FhirCreate => "fhir-create",
            other => other.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown outbox kind {0:?}")]
    Kind(String),
    /// The serde category and position only: payloads hold patient data.
    #[error("outbox payload does not fit its kind ({0})")]
    Payload(String),
}

impl OutboxMessage {
    pub fn kind(&self) -> OutboxKind {
        match self {
            OutboxMessage::FhirCreate(_) => OutboxKind::FhirCreate,
            OutboxMessage::FhirUpdate(_) => OutboxKind::FhirUpdate,
            OutboxMessage::FhirPut(_) => OutboxKind::FhirPut,
            OutboxMessage::FhirAmend(_) => OutboxKind::FhirAmend,
            OutboxMessage::FhirTransaction(_) => OutboxKind::FhirTransaction,
            OutboxMessage::Event(_) => OutboxKind::Event,
            OutboxMessage::MeshSend(_) => OutboxKind::MeshSend,
        }
    }

    pub fn to_payload(&self) -> String {
        let v = match self {
            OutboxMessage::FhirCreate(m) => serde_json::to_string(m),
            OutboxMessage::FhirUpdate(m) => serde_json::to_string(m),
            OutboxMessage::FhirPut(m) => serde_json::to_string(m),
            OutboxMessage::FhirAmend(m) => serde_json::to_string(m),
            OutboxMessage::FhirTransaction(m) => serde_json::to_string(m),
            OutboxMessage::Event(m) => serde_json::to_string(m),
            OutboxMessage::MeshSend(m) => serde_json::to_string(m),
        };
        // Serialising these plain structs of strings and JSON values cannot fail.
        v.unwrap_or_default()
    }

    pub fn decode(kind: &str, payload: &str) -> Result<Self, DecodeError> {
        fn parse<T: serde::de::DeserializeOwned>(p: &str) -> Result<T, DecodeError> {
            serde_json::from_str(p).map_err(|e| {
                DecodeError::Payload(format!(
                    "{:?} at line {} column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                ))
            })
        }
        let kind: OutboxKind = kind.parse().map_err(|_| DecodeError::Kind(kind.into()))?;
        Ok(match kind {
            OutboxKind::FhirCreate => OutboxMessage::FhirCreate(parse(payload)?),
            OutboxKind::FhirUpdate => OutboxMessage::FhirUpdate(parse(payload)?),
            OutboxKind::FhirPut => OutboxMessage::FhirPut(parse(payload)?),
            OutboxKind::FhirAmend => OutboxMessage::FhirAmend(parse(payload)?),
            OutboxKind::FhirTransaction => OutboxMessage::FhirTransaction(parse(payload)?),
            OutboxKind::Event => OutboxMessage::Event(parse(payload)?),
            OutboxKind::MeshSend => OutboxMessage::MeshSend(parse(payload)?),
        })
    }
}

/// How a delivery ended well.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// Written or published; `result` is kept on the row for inspection.
    Done { result: Option<String> },
    /// A versioned update met a newer version (412). `current` is the
    /// resource as re-read after the conflict (`None`: it is gone).
    Conflict {
        current: Option<Value>,
        version: Option<String>,
        reason: String,
    },
}

/// How a delivery failed. The message names codes and statuses, never
/// values from the payload or a server's diagnostics.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
    /// Repeating the same request cannot succeed (a 4xx, a malformed row).
    pub permanent: bool,
    /// The server's `Retry-After`, which wins over the retry policy.
    pub retry_after: Option<Duration>,
}

impl SinkError {
    pub fn permanent(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            permanent: true,
            retry_after: None,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            permanent: false,
            retry_after: None,
        }
    }
}

/// Where outbox messages go. The engine knows sinks only through this
/// trait; the FHIR and AMQP adapters implement it and `app.rs` wires them,
/// so the engine never imports an adapter.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    async fn deliver(&self, msg: &OutboxMessage) -> Result<Delivered, SinkError>;
}

/// The sinks a deployment has, by the kind of message they take.
#[derive(Clone)]
pub struct Sinks {
    pub fhir: std::sync::Arc<dyn Sink>,
    pub events: std::sync::Arc<dyn Sink>,
    /// `None` when MESH is off: a MESH row then waits (retried, not lost)
    /// until a deployment with MESH configured delivers it.
    pub mesh: Option<std::sync::Arc<dyn Sink>>,
}

impl Sinks {
    pub fn for_message(&self, msg: &OutboxMessage) -> Option<&dyn Sink> {
        match msg {
            OutboxMessage::Event(_) => Some(self.events.as_ref()),
            OutboxMessage::MeshSend(_) => self.mesh.as_deref(),
            _ => Some(self.fhir.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use strum::IntoEnumIterator;

    #[test]
    fn every_kind_round_trips_through_the_store_shape() {
        let msgs = [
            OutboxMessage::FhirCreate(FhirCreate {
                identifier_system: "s".into(),
                identifier_value: "v".into(),
                resource: json!({"resourceType": "Task"}).into(),
            }),
            OutboxMessage::FhirUpdate(FhirUpdate {
                resource: json!({"resourceType": "Flag", "id": "1"}),
                if_match: "3".into(),
                on_conflict: OnConflict::HandBack,
                rebases: 0,
            }),
            OutboxMessage::FhirPut(FhirPut {
                resource: json!({"resourceType": "Binary", "id": "b1"}),
            }),
            OutboxMessage::FhirAmend(FhirAmend {
                resource_type: "Flag".into(),
                identifier_system: "s".into(),
                identifier_value: "v".into(),
                change: Amendment::FlagInactive {
                    ended_at: "2026-11-30T00:00:00Z".into(),
                },
            }),
            OutboxMessage::FhirTransaction(FhirTransaction {
                bundle: json!({"resourceType": "Bundle", "type": "transaction"}),
            }),
            OutboxMessage::Event(EventPublish {
                routing_key: "referral.received".into(),
                message_id: "m".into(),
                body: json!({"a": 1}),
                content_type: None,
            }),
            OutboxMessage::MeshSend(MeshSend {
                local_id: "ips-doc-1".into(),
                to: "X26ABC2".into(),
                workflow_id: "GPCONNECT_SEND_DOCUMENT".into(),
                subject: "s".into(),
                filename: "f.json".into(),
                content_type: Some("application/fhir+json".into()),
                content: "{}".into(),
            }),
        ];
        for m in msgs {
            let back = OutboxMessage::decode(m.kind().as_str(), &m.to_payload()).unwrap();
            assert_eq!(back, m);
        }
        for k in OutboxKind::iter() {
            assert_eq!(k.as_str().parse::<OutboxKind>(), Ok(k));
        }
    }

    #[test]
    fn a_create_keeps_the_resource_text_it_was_queued_with() {
        let resource = json!({"resourceType": "Flag", "id": "f1", "note": "<b>x</b> é"});
        let queued = OutboxMessage::FhirCreate(FhirCreate {
            identifier_system: "s".into(),
            identifier_value: "v".into(),
            resource: resource.clone().into(),
        });
        let Ok(OutboxMessage::FhirCreate(back)) =
            OutboxMessage::decode("fhir-create", &queued.to_payload())
        else {
            panic!("a create decodes as a create");
        };
        assert_eq!(back.resource.get(), resource.to_string());
        assert_eq!(back.resource.to_value(), resource);
        assert_eq!(back.resource.resource_type().as_deref(), Some("Flag"));
        let untyped = RawResource::from(json!({"id": "x"}));
        assert_eq!(untyped.resource_type(), None);
    }

    #[test]
    fn rows_queued_before_the_typed_outbox_still_decode() {
        let legacy = r#"{"op":"create","identifier_system":"s","identifier_value":"v","resource":{"resourceType":"Task"}}"#;
        assert!(matches!(
            OutboxMessage::decode("fhir", legacy),
            Ok(OutboxMessage::FhirCreate(_))
        ));
        let event = r#"{"routing_key":"referral.received","message_id":"m","body":{}}"#;
        assert!(matches!(
            OutboxMessage::decode("event", event),
            Ok(OutboxMessage::Event(_))
        ));
    }

    #[test]
    fn a_malformed_payload_is_named_without_its_content() {
        let e = OutboxMessage::decode("event", r#"{"routing_key": 9999999999}"#).unwrap_err();
        assert!(!e.to_string().contains("9999999999"), "{e}");
        assert!(matches!(
            OutboxMessage::decode("carrier-pigeon", "{}"),
            Err(DecodeError::Kind(_))
        ));
    }
}
