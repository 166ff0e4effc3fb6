//! A person closes a case, or decides that outreach is no longer needed.
//!
//! The bridge itself never closes a case because of missed appointments
//! (IPS fidelity item 25): closing takes a person and a reason.

use super::{Cause, reassess};
use crate::engine::command::{CloseCaseInput, ResolveOutreachInput};
use crate::engine::handlers::{HandlerError, Outcome, audit, open_case};
use crate::engine::outcome::Applied;
use crate::engine::rejection::{RejectCode, Rejection};
use crate::engine::{Context, ms};
use crate::store::Tx;
use time::OffsetDateTime;

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
