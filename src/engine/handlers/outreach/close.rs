//! A person closes a case, or decides that outreach is no longer needed.
//!
//! The bridge itself never closes a case because of missed appointments
//! (IPS fidelity item 25): closing takes a person and a reason.

use super::{Cause, reassess};
use crate::domain::case::CaseStatus;
use crate::engine::command::{CloseCaseInput, ResolveOutreachInput};
use crate::engine::handlers::{HandlerError, Outcome, audit};
use crate::engine::outcome::Applied;
use crate::engine::rejection::{RejectCode, Rejection};
use crate::engine::{Context, ms};
use crate::store::{CaseRow, Tx};
use time::OffsetDateTime;

/// Reads the case a person's command names, which must be open.
pub(crate) async fn open_case(tx: &mut dyn Tx, case_id: &str) -> Result<CaseRow, HandlerError> {
    let case = tx.case_get(case_id).await?.ok_or_else(|| {
        HandlerError::Reject(Rejection::new(
            RejectCode::UnknownCase,
            "no case with this id",
        ))
    })?;
    if case.status != CaseStatus::Open {
        return Err(HandlerError::Reject(Rejection::new(
            RejectCode::CaseClosed,
            "the case is closed",
        )));
    }
    Ok(case)
}

pub async fn close(
    tx: &mut dyn Tx,
    ctx: &Context,
    c: &CloseCaseInput,
    now: OffsetDateTime,
) -> Outcome {
    let case = open_case(tx, &c.case_id).await?;
    tx.case_close(&case.id, &c.reason, ms(now)).await?;
    let signals = reassess(tx, ctx, &case, Cause::CaseClosed, now).await?;
    audit(
        tx,
        ctx,
        "case.closed",
        "case",
        &case.id,
        Some(format!("by={}", c.closed_by)),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: "case-close",
        signals,
    })
}

pub async fn resolve(
    tx: &mut dyn Tx,
    ctx: &Context,
    r: &ResolveOutreachInput,
    now: OffsetDateTime,
) -> Outcome {
    let case = open_case(tx, &r.case_id).await?;
    if tx.episode_active(&case.id).await?.is_none() {
        return Err(HandlerError::Reject(Rejection::new(
            RejectCode::NoActiveOutreach,
            "the case has no active outreach flag",
        )));
    }
    let signals = reassess(tx, ctx, &case, Cause::ClinicianDecision, now).await?;
    audit(
        tx,
        ctx,
        "outreach.resolved-by-decision",
        "case",
        &case.id,
        Some(format!("by={}", r.decided_by)),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: "outreach-resolve",
        signals,
    })
}
