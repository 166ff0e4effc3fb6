//! Employment specialists' events (`ips.*.v1` JSON, not FHIR).
//!
//! Reasons for refusing one name the event type and fields only: these
//! events carry free text about the patient (an outreach note), and a reason
//! travels to the dead-letter headers and the logs.

use super::*;
use crate::engine::command::{
    CaseRef, CompleteInput, DECISION_EVENT, DOCUMENT_COMPLETE_EVENT, DOCUMENT_SECTIONS_EVENT,
    DecisionInput, DecisionOutcome, EMPLOYMENT_STATUS_EVENT, JOB_END_EVENT, JOB_START_EVENT,
    NOTE_EVENT, NoteInput, OUTREACH_ATTEMPT_EVENT, OutreachAttemptInput, SectionsBody,
    SectionsInput,
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
        DOCUMENT_SECTIONS_EVENT => {
            let b: SectionsBody = decode(DOCUMENT_SECTIONS_EVENT, value)?;
            let (Some(case_id), Some(kind)) = (b.case_id, b.kind) else {
                return Err(needs(DOCUMENT_SECTIONS_EVENT));
            };
            Ok(Command::DocumentSections(Box::new(SectionsInput {
                case: CaseRef::Id(case_id),
                kind,
                session_date: b.session_date,
                sections: b.sections,
                specialist: b.specialist,
                complete: None,
            })))
        }
        DOCUMENT_COMPLETE_EVENT => {
            let c: CompleteInput = decode(DOCUMENT_COMPLETE_EVENT, value)?;
            if c.case_id.is_none() || c.kind.is_none() {
                return Err(needs(DOCUMENT_COMPLETE_EVENT));
            }
            Ok(Command::DocumentComplete(Box::new(c)))
        }
        NOTE_EVENT => {
            let n: NoteInput = decode(NOTE_EVENT, value)?;
            if n.case_id.is_none() {
                return Err(Rejection::new(
                    RejectCode::InvalidEvent,
                    format!("{NOTE_EVENT}: case_id is required"),
                ));
            }
            Ok(Command::Note(Box::new(n)))
        }
        JOB_START_EVENT => Ok(Command::JobStart(Box::new(decode(JOB_START_EVENT, value)?))),
        JOB_END_EVENT => Ok(Command::JobEnd(Box::new(decode(JOB_END_EVENT, value)?))),
        EMPLOYMENT_STATUS_EVENT => Ok(Command::EmploymentStatus(Box::new(decode(
            EMPLOYMENT_STATUS_EVENT,
            value,
        )?))),
        _ => Err(Rejection::new(
            RejectCode::UnknownEventType,
            // The type is the sender's text: named by what is supported, never echoed.
            format!(
                "unknown ES event type; supported: {DECISION_EVENT}, {OUTREACH_ATTEMPT_EVENT}, \
                 {DOCUMENT_SECTIONS_EVENT}, {DOCUMENT_COMPLETE_EVENT}, {NOTE_EVENT}, {JOB_START_EVENT}, \
                 {JOB_END_EVENT}, {EMPLOYMENT_STATUS_EVENT}"
            ),
        )),
    }
}

fn needs(event_type: &str) -> Rejection {
    Rejection::new(
        RejectCode::InvalidEvent,
        format!("{event_type}: case_id and kind (vp or iwsp) are required"),
    )
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
