//! An outreach attempt the specialist made: stored, written to the record
//! as a `Communication` (about the active Flag, if any), counted, and, when
//! it reached the person, resolving the outreach episode.

use super::records::{Queued, communication};
use super::{Cause, reassess};
use crate::engine::command::OutreachAttemptInput;
use crate::engine::handlers::open_case;
use crate::engine::handlers::{HandlerError, Outcome, audit, content_key, queue};
use crate::engine::outcome::{Applied, Signal};
use crate::engine::rejection::{RejectCode, Rejection};
use crate::engine::{Context, ms};
use crate::store::{AttemptRow, StoreError, Tx};
use time::OffsetDateTime;

const KIND: &str = "outreach-attempt";

pub async fn handle(
    tx: &mut dyn Tx,
    ctx: &Context,
    a: &OutreachAttemptInput,
    now: OffsetDateTime,
) -> Outcome {
    let key = attempt_key(a);
    if let Err(e) = a.validate() {
        return Err(HandlerError::Reject(Rejection::new(
            RejectCode::InvalidOutreachAttempt,
            e.summary(),
        )));
    }
    let case = open_case(tx, &a.case_id).await?;
    let episode = tx.episode_active(&case.id).await?;
    let row = AttemptRow {
        id: crate::engine::new_id(now),
        attempt_key: key,
        case_id: case.id.clone(),
        episode_id: episode.as_ref().map(|e| e.id.clone()),
        method: <&str>::from(a.method).to_owned(),
        outcome: <&str>::from(a.outcome).to_owned(),
        attempted_at: ms(a.attempted_at),
        specialist: a.specialist.clone(),
        note: a.note.clone(),
        created_at: ms(now),
    };
    if !tx.attempt_insert(&row).await? {
        return Ok(Applied::Unchanged { kind: KIND });
    }
    let nhs = tx
        .patient_nhs_number(&case.patient_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("case {} has no patient", case.id)))?;
    let Queued {
        dedupe_key,
        message,
    } = communication(ctx, &row, a, &nhs);
    queue(tx, dedupe_key, &case.id, &message, now).await?;
    audit(
        tx,
        ctx,
        "outreach.attempt-recorded",
        "case",
        &case.id,
        Some(format!(
            "attempt={} method={} outcome={}",
            row.id, row.method, row.outcome
        )),
        now,
    )
    .await?;
    let mut signals = vec![Signal::OutreachAttempt {
        method: a.method.into(),
        outcome: a.outcome.into(),
    }];
    let cause = if a.outcome.is_contact() {
        Cause::Contacted
    } else {
        Cause::AppointmentChanged
    };
    signals.extend(reassess(tx, ctx, &case, cause, now).await?);
    Ok(Applied::Processed {
        kind: KIND,
        signals,
    })
}

/// What makes a repeat the same attempt, whichever channel and message id
/// it came with: the sender's own id for it, else its content (two real
/// attempts never share method, outcome, time, specialist and note).
fn attempt_key(a: &OutreachAttemptInput) -> String {
    match &a.attempt_id {
        Some(id) => format!("{}:id:{id}", a.case_id),
        None => content_key(
            &a.case_id,
            &[
                a.case_id.as_str(),
                a.method.into(),
                a.outcome.into(),
                &ms(a.attempted_at).to_string(),
                &a.specialist,
                a.note.as_deref().unwrap_or(""),
            ],
        ),
    }
}
