//! A source system closed a referral because of missed appointments.
//!
//! IPS does not discharge for DNAs (fidelity item 25), but the referrer's or
//! the trust's own rules may. When that happens the bridge records a
//! *closure by DNA rule*, keeps the IPS case open for outreach, and tells the
//! service (`outreach.closed-by-rule`): it is the fidelity breach a team lead
//! must see.

use super::{Cause, facts, reassess};
use crate::domain::outreach::Attendance;
use crate::domain::referral::ReferralState;
use crate::engine::events::EventType;
use crate::engine::handlers::{audit, queue_event};
use crate::engine::outcome::Signal;
use crate::engine::{Context, from_ms, ms, rfc3339};
use crate::store::{ClosureByRuleRow, ReferralRow, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;

/// Why the closure counts as one by a DNA rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "kebab-case")]
pub enum ClosureCause {
    /// BaRS `servicerequest-response` with a no-show Appointment.
    BarsDnaFeedback,
    /// ServiceRequest `revoked` right after a DNA.
    ReferralRevokedAfterDna,
    /// ServiceRequest `completed` right after a DNA.
    ReferralCompletedAfterDna,
    /// A clinical team's `EpisodeOfCare` finished right after a DNA.
    EpisodeFinishedAfterDna,
}

/// "Right after DNAs": the latest appointment of the case held so far was missed.
async fn last_held_was_dna(
    tx: &mut dyn Tx,
    case_id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let history = facts(tx, case_id).await?;
    let last_held = history
        .iter()
        .filter(|f| {
            matches!(
                f.attendance,
                Attendance::Attended | Attendance::DidNotAttend
            ) && f.start.is_none_or(|s| s <= now)
        })
        .max_by(|a, b| a.start.cmp(&b.start).then_with(|| a.key.cmp(&b.key)));
    Ok(last_held.is_some_and(|f| f.attendance == Attendance::DidNotAttend))
}

/// A team finished its episode of care with a patient who has an open IPS
/// case: a closure by DNA rule when it came right after a missed appointment.
pub async fn on_episode_finished(
    tx: &mut dyn Tx,
    ctx: &Context,
    e: &crate::engine::command::EpisodeFinishedInput,
    now: OffsetDateTime,
) -> crate::engine::handlers::Outcome {
    use crate::engine::outcome::Applied;
    const KIND: &str = "episode-of-care";
    let case = crate::engine::handlers::open_case_of(tx, ctx, &e.nhs).await?;
    let Some(case) = case else {
        return Ok(Applied::Ignored(
            "EpisodeOfCare of a patient without an open IPS case".into(),
        ));
    };
    if !last_held_was_dna(tx, &case.id, now).await? {
        return Ok(Applied::Unchanged { kind: KIND });
    }
    let closed_at = e.ended_at.map(ms).unwrap_or(ms(now));
    let signals = record(
        tx,
        ctx,
        &case,
        &e.key,
        ClosureCause::EpisodeFinishedAfterDna,
        closed_at,
        now,
    )
    .await?;
    Ok(if signals.is_empty() {
        Applied::Unchanged { kind: KIND }
    } else {
        Applied::Processed {
            kind: KIND,
            signals,
        }
    })
}

/// Called when a referral of an open case has just been closed by its
/// sender. Returns the signals of what it recorded (nothing when the closure
/// had nothing to do with DNAs).
pub(crate) async fn on_referral_closed(
    tx: &mut dyn Tx,
    ctx: &Context,
    row: &ReferralRow,
    now: OffsetDateTime,
) -> Result<Vec<Signal>, StoreError> {
    let Some(case_id) = &row.case_id else {
        return Ok(vec![]);
    };
    let Some(case) = tx.case_get(case_id).await? else {
        return Ok(vec![]);
    };
    let cause = if row.state == ReferralState::ClosedByReferrerAfterDna {
        ClosureCause::BarsDnaFeedback
    } else {
        if !last_held_was_dna(tx, case_id, now).await? {
            return Ok(vec![]);
        }
        match row.fhir_status.as_str() {
            "revoked" => ClosureCause::ReferralRevokedAfterDna,
            "completed" => ClosureCause::ReferralCompletedAfterDna,
            _ => return Ok(vec![]),
        }
    };
    let closed_at = row.source_updated_at.unwrap_or(ms(now));
    record(tx, ctx, &case, &row.id, cause, closed_at, now).await
}

/// Records the closure (once per source and cause), publishes it, and
/// assesses the still-open case again.
async fn record(
    tx: &mut dyn Tx,
    ctx: &Context,
    case: &crate::store::CaseRow,
    source_ref: &str,
    cause: ClosureCause,
    closed_at: i64,
    now: OffsetDateTime,
) -> Result<Vec<Signal>, StoreError> {
    let c = ClosureByRuleRow {
        id: crate::engine::new_id(now),
        case_id: case.id.clone(),
        referral_id: source_ref.to_owned(),
        cause: <&str>::from(cause).to_owned(),
        closed_at,
        recorded_at: ms(now),
    };
    if !tx.closure_by_rule_insert(&c).await? {
        return Ok(vec![]);
    }
    queue_event(
        tx,
        EventType::OutreachClosedByRule,
        &format!("{source_ref}:{}", c.cause),
        &case.id,
        json!({
            "case_id": case.id,
            "referral_id": source_ref,
            "cause": c.cause,
            "closed_at": rfc3339(from_ms(closed_at)),
            "case_status": case.status,
        }),
        now,
    )
    .await?;
    audit(
        tx,
        ctx,
        EventType::OutreachClosedByRule.as_str(),
        "case",
        &case.id,
        Some(format!("source={source_ref} cause={}", c.cause)),
        now,
    )
    .await?;
    let mut signals = vec![Signal::ClosureByRule {
        cause: cause.into(),
    }];
    if case.status == crate::domain::case::CaseStatus::Open {
        signals.extend(reassess(tx, ctx, case, Cause::AppointmentChanged, now).await?);
    }
    Ok(signals)
}
