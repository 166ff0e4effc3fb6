//! Employment specialists' events (`ips.*.v1` JSON, not FHIR).
//!
//! Reasons for refusing one name the event type and fields only: these
//! events carry free text about the patient (an outreach note), and a reason
//! travels to the dead-letter headers and the logs.

use super::*;
use crate::engine::command::{
    DECISION_EVENT, DecisionInput, DecisionOutcome, OUTREACH_ATTEMPT_EVENT, OutreachAttemptInput,
};
use serde::de::DeserializeOwned;

pub(super) fn classify_es_event(event_type: &str, value: Value) -> Result<Command, Rejection> {
    match event_type {
        DECISION_EVENT => {
            let d: DecisionInput = decode(DECISION_EVENT, value)?;
            if d.outcome == DecisionOutcome::Declined && d.decline_reason.is_none() {
                return Err(Rejection::new(
                    RejectCode::InvalidEvent,
                    format!("{DECISION_EVENT}: a declined decision needs decline_reason"),
                ));
            }
            Ok(Command::Decision(d))
        }
        OUTREACH_ATTEMPT_EVENT => {
            let a: OutreachAttemptInput = decode(OUTREACH_ATTEMPT_EVENT, value)?;
            // The problems name fields and limits, never the values.
            a.validate().map_err(|e| {
                Rejection::new(
                    RejectCode::InvalidEvent,
                    format!("{OUTREACH_ATTEMPT_EVENT}: {e}"),
                )
            })?;
            Ok(Command::OutreachAttempt(Box::new(a)))
        }
        other => Err(Rejection::new(
            RejectCode::UnknownEventType,
            format!(
                "unknown ES event type {other:?}; supported: {DECISION_EVENT}, {OUTREACH_ATTEMPT_EVENT}"
            ),
        )),
    }
}

fn decode<T: DeserializeOwned>(event_type: &str, value: Value) -> Result<T, Rejection> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        Rejection::new(
            RejectCode::InvalidEvent,
            format!(
                "{event_type}: {}",
                crate::ingest::summary::serde_summary(&e)
            ),
        )
    })
}
