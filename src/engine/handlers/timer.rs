//! A durable timer fell due. The timer row is deleted in this same
//! transaction (by the engine), so a deadline fires exactly once however the
//! process stops and starts around it.

use super::referral::ordering_key;
use super::{Outcome, audit, queue_event};
use crate::domain::referral::ReferralState;
use crate::engine::command::{TimerFired, TimerKind};
use crate::engine::events::EventType;
use crate::engine::outcome::Applied;
use crate::engine::{Context, rfc3339};
use crate::store::Tx;
use serde_json::json;
use time::OffsetDateTime;

const KIND: &str = "timer";

pub async fn handle(
    tx: &mut dyn Tx,
    ctx: &Context,
    t: &TimerFired,
    now: OffsetDateTime,
) -> Outcome {
    match t.kind {
        TimerKind::WaitingListTarget => waiting_list_target(tx, ctx, t, now).await,
        TimerKind::OutreachCheck => outreach_check(tx, ctx, t, now).await,
        TimerKind::ReviewChase => super::documents::chase(tx, ctx, &t.subject, now).await,
        TimerKind::DeliveryAckDue => super::documents::ack_due(tx, ctx, &t.subject, now).await,
    }
}

/// A date-based discharge rule's warning starts: assess the case again.
/// The timer was deleted by the engine; `reassess` sets the next one.
async fn outreach_check(
    tx: &mut dyn Tx,
    ctx: &Context,
    t: &TimerFired,
    now: OffsetDateTime,
) -> Outcome {
    let Some(case) = tx.case_get(&t.subject).await? else {
        return Ok(Applied::Unchanged { kind: KIND });
    };
    if case.status != crate::domain::case::CaseStatus::Open {
        return Ok(Applied::Unchanged { kind: KIND });
    }
    let signals =
        super::outreach::reassess(tx, ctx, &case, super::outreach::Cause::Timer, now).await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals,
    })
}

/// Still on the waiting list when the target passed: tell the team. If
/// assistance commenced or the referral closed meanwhile, nothing to say.
async fn waiting_list_target(
    tx: &mut dyn Tx,
    ctx: &Context,
    t: &TimerFired,
    now: OffsetDateTime,
) -> Outcome {
    let Some(row) = tx.referral_by_id(&t.subject).await? else {
        return Ok(Applied::Unchanged { kind: KIND });
    };
    if row.state != ReferralState::Accepted {
        return Ok(Applied::Unchanged { kind: KIND });
    }
    queue_event(
        tx,
        EventType::ReferralWaitExceeded,
        &row.id,
        &ordering_key(&row),
        json!({"referral_id": row.id, "case_id": row.case_id, "due_at": rfc3339(t.due_at)}),
        now,
    )
    .await?;
    audit(
        tx,
        ctx,
        EventType::ReferralWaitExceeded.as_str(),
        "referral",
        &row.id,
        Some(format!("target={}", rfc3339(t.due_at))),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![],
    })
}
