//! An appointment was booked, attended, missed or cancelled.

use super::outreach::{Cause, reassess};
use super::{Outcome, audit};
use crate::domain::outreach::Attendance;
use crate::domain::referral;
use crate::engine::command::{AppointmentInput, TimerKind};
use crate::engine::outcome::{Applied, Signal};
use crate::engine::{Context, from_ms, ms};
use crate::store::{AppointmentRow, Tx};
use time::OffsetDateTime;

const KIND: &str = "appointment";

pub async fn handle(
    tx: &mut dyn Tx,
    ctx: &Context,
    input: &AppointmentInput,
    now: OffsetDateTime,
) -> Outcome {
    handle_for(tx, ctx, input, None, now).await
}

/// As [`handle`]; `case_hint` is the case of the referral the appointment
/// came with (BaRS DNA feedback), used when its patient cannot be matched.
pub async fn handle_for(
    tx: &mut dyn Tx,
    ctx: &Context,
    input: &AppointmentInput,
    case_hint: Option<&str>,
    now: OffsetDateTime,
) -> Outcome {
    let existing = tx.appointment_by_key(&input.key).await?;
    if let Some(e) = &existing {
        let stale = matches!((e.source_updated_at, input.source_updated_at.map(ms)), (Some(held), Some(new)) if new < held);
        if e.content_hash == input.content_hash || stale {
            return Ok(Applied::Unchanged { kind: KIND });
        }
    }
    let mut case = super::open_case_of(tx, ctx, &input.nhs).await?;
    if case.is_none()
        && let Some(id) = case_hint
    {
        case = tx
            .case_get(id)
            .await?
            .filter(|c| c.status == crate::domain::case::CaseStatus::Open);
    }
    let row = AppointmentRow {
        id: existing
            .as_ref()
            .map(|e| e.id.clone())
            .unwrap_or_else(|| crate::engine::new_id(now)),
        appointment_key: input.key.clone(),
        case_id: case.as_ref().map(|c| c.id.clone()),
        status: input.status.clone(),
        start_at: input.start.map(ms),
        content_hash: input.content_hash.clone(),
        source_updated_at: input.source_updated_at.map(ms),
        updated_at: ms(now),
        raw: input.raw.clone(),
    };
    tx.appointment_upsert(&row).await?;
    let mut signals = vec![];
    if let (Some(case), true) = (&case, input.attended()) {
        let at = input.start.unwrap_or(now);
        for mut r in tx.referrals_for_case(&case.id).await? {
            if let Some(next) =
                referral::on_attended(r.state, r.assistance_commenced_at.map(from_ms))
            {
                r.state = next;
                r.assistance_commenced_at = Some(ms(at));
                r.updated_at = ms(now);
                tx.referral_update(&r).await?;
                // Seen: the waiting-list deadline no longer applies.
                tx.timer_cancel(TimerKind::WaitingListTarget.as_str(), &r.id)
                    .await?;
                audit(
                    tx,
                    ctx,
                    "referral.assistance-commenced",
                    "referral",
                    &r.id,
                    None,
                    now,
                )
                .await?;
                let days = (at - from_ms(r.received_at)).as_seconds_f64() / 86_400.0;
                signals.push(Signal::FirstContact {
                    days: days.max(0.0),
                });
            }
        }
    }
    if let Some(case) = &case {
        // What the discharge rules see of it, then the case assessed again.
        let fact = input.fact();
        let json = serde_json::to_string(&fact).unwrap_or_default();
        tx.fact_upsert(&input.key, &case.id, &json, ms(now)).await?;
        let cause = if fact.attendance == Attendance::Attended {
            Cause::Attended
        } else {
            Cause::AppointmentChanged
        };
        signals.extend(reassess(tx, ctx, case, cause, now).await?);
    }
    audit(
        tx,
        ctx,
        "appointment.recorded",
        "appointment",
        &row.id,
        Some(format!("status={}", row.status)),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals,
    })
}
