//! Employment specialists' events (`ips.*.v1` JSON, not FHIR).

use super::*;
use crate::engine::command::{DECISION_EVENT, DecisionInput, DecisionOutcome};

pub(super) fn classify_es_event(event_type: &str, value: Value) -> Result<Command, Rejection> {
    match event_type {
        DECISION_EVENT => {
            let d: DecisionInput = serde_path_to_error::deserialize(value).map_err(|e| {
                Rejection::new(
                    RejectCode::InvalidEvent,
                    format!(
                        "{DECISION_EVENT}: {}",
                        crate::ingest::summary::serde_summary(&e)
                    ),
                )
            })?;
            if d.outcome == DecisionOutcome::Declined && d.decline_reason.is_none() {
                return Err(Rejection::new(
                    RejectCode::InvalidEvent,
                    format!("{DECISION_EVENT}: a declined decision needs decline_reason"),
                ));
            }
            Ok(Command::Decision(d))
        }
        other => Err(Rejection::new(
            RejectCode::UnknownEventType,
            format!("unknown ES event type {other:?}; supported: {DECISION_EVENT}"),
        )),
    }
}
