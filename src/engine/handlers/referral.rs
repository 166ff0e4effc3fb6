//! A referral version arrived (BaRS message, plain ServiceRequest, or polled).

use super::{Outcome, audit, case_for, queue_event};
use crate::domain::referral::{self, Intake, KnownReferral, ReferralState};
use crate::engine::command::ReferralInput;
use crate::engine::events::EventType;
use crate::engine::outcome::{Applied, Signal};
use crate::engine::{Context, from_ms, ms};
use crate::store::{ReferralRow, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;

const KIND: &str = "referral";

pub async fn handle(
    tx: &mut dyn Tx,
    ctx: &Context,
    input: &ReferralInput,
    channel: &str,
    now: OffsetDateTime,
) -> Outcome {
    let existing = tx.referral_by_key(&input.key).await?;
    let known = existing.as_ref().map(|r| KnownReferral {
        state: r.state,
        content_hash: r.content_hash.clone(),
        source_updated_at: r.source_updated_at.map(from_ms),
        completed_at: r.completed_at.map(from_ms),
    });
    let v = &input.version;
    match (referral::apply_version(known.as_ref(), v, now), existing) {
        (Intake::Unchanged, _) => Ok(Applied::Unchanged { kind: KIND }),
        (Intake::New(r), _) => {
            // Never match or merge on an invalid number: such a referral has no case until corrected.
            let case = match v.nhs.valid() {
                Some(n) => Some(case_for(tx, ctx, n, now).await?),
                None => None,
            };
            let row = ReferralRow {
                id: crate::engine::new_id(now),
                referral_key: input.key.clone(),
                case_id: case.as_ref().map(|(c, _)| c.id.clone()),
                resource_ref: input.resource_ref.clone(),
                channel: channel.to_owned(),
                state: r.state,
                fhir_status: input.fhir_status.clone(),
                incomplete_reasons: json!(r.incomplete_reasons).to_string(),
                content_hash: v.content_hash.clone(),
                source_updated_at: v.source_updated_at.map(ms),
                authored_at: input.authored_at.map(ms),
                received_at: ms(now),
                completed_at: r.completed_at.map(ms),
                source_ods: v.source.ods_code.clone(),
                source_kind: v.source.kind.as_str().to_owned(),
                is_multiple: i64::from(case.as_ref().is_some_and(|(_, m)| *m)),
                decision: crate::store::StoredDecision(None),
                decline_reason: None,
                decided_at: None,
                decided_by: None,
                assistance_commenced_at: None,
                updated_at: ms(now),
                raw: input.raw.clone(),
                origin: origin_json(input),
            };
            tx.referral_insert(&row).await?;
            remember_practice(tx, row.case_id.as_deref(), v, now).await?;
            let mut signals = vec![Signal::ReferralReceived {
                source_kind: v.source.kind.as_str(),
                incomplete: !r.incomplete_reasons.is_empty(),
            }];
            if let Some((c, false)) = &case {
                signals.extend(super::outreach::on_case_opened(tx, ctx, c, now).await?);
            }
            let ordering = ordering_key(&row);
            queue_event(
                tx,
                EventType::ReferralReceived,
                &row.id,
                &ordering,
                json!({
                    "referral_id": row.id, "case_id": row.case_id, "state": row.state,
                    "source_kind": row.source_kind, "incomplete": !r.incomplete_reasons.is_empty(),
                    "multiple": row.is_multiple == 1, "channel": channel
                }),
                now,
            )
            .await?;
            if r.closed_now {
                closed(tx, &row, &ordering, now).await?;
            }
            audit(
                tx,
                ctx,
                "referral.received",
                "referral",
                &row.id,
                Some(format!("state={} channel={channel}", row.state)),
                now,
            )
            .await?;
            Ok(Applied::Processed {
                kind: KIND,
                signals,
            })
        }
        (Intake::Updated(r), Some(mut row)) => {
            let before = row.state;
            if row.case_id.is_none()
                && let Some(n) = v.nhs.valid()
            {
                let (case, multiple) = case_for(tx, ctx, n, now).await?;
                row.case_id = Some(case.id);
                row.is_multiple = i64::from(multiple);
            }
            row.state = r.state;
            row.fhir_status = input.fhir_status.clone();
            row.incomplete_reasons = json!(r.incomplete_reasons).to_string();
            row.content_hash = v.content_hash.clone();
            row.source_updated_at = v.source_updated_at.map(ms).or(row.source_updated_at);
            row.authored_at = input.authored_at.map(ms).or(row.authored_at);
            row.completed_at = r.completed_at.map(ms);
            if v.source.ods_code.is_some() {
                row.source_ods = v.source.ods_code.clone();
                row.source_kind = v.source.kind.as_str().to_owned();
            }
            row.resource_ref = row
                .resource_ref
                .take()
                .or_else(|| input.resource_ref.clone());
            // The request's origin is what an answer must name; a later
            // update or response does not replace it.
            row.origin = row.origin.take().or_else(|| origin_json(input));
            row.updated_at = ms(now);
            row.raw = input.raw.clone();
            tx.referral_update(&row).await?;
            remember_practice(tx, row.case_id.as_deref(), v, now).await?;
            let ordering = ordering_key(&row);
            let mut signals = vec![];
            if let Some(appt) = &input.feedback_appointment {
                // The missed appointment the referrer's feedback reports.
                if let Applied::Processed { signals: s, .. } =
                    super::appointment::handle_for(tx, ctx, appt, row.case_id.as_deref(), now)
                        .await?
                {
                    signals.extend(s);
                }
            }
            if r.closed_now {
                closed(tx, &row, &ordering, now).await?;
                signals.extend(
                    super::outreach::closure::on_referral_closed(tx, ctx, &row, now).await?,
                );
            }
            audit(
                tx,
                ctx,
                "referral.updated",
                "referral",
                &row.id,
                Some(format!("state {before} -> {}", row.state)),
                now,
            )
            .await?;
            Ok(Applied::Processed {
                kind: KIND,
                signals,
            })
        }
        (Intake::Updated(_), None) => {
            Err(StoreError::Corrupt("update without a stored referral".into()).into())
        }
    }
}

/// The referrer closed the referral: withdrawn, or closed after DNAs. Two
/// different events, because they call for different things: a withdrawal
/// ends the referral, a DNA closure calls for assertive outreach.
async fn closed(
    tx: &mut dyn Tx,
    row: &ReferralRow,
    ordering: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let event = match row.state {
        ReferralState::ClosedByReferrerAfterDna => EventType::ReferralClosedAfterDna,
        _ => EventType::ReferralWithdrawn,
    };
    queue_event(
        tx,
        event,
        &row.id,
        ordering,
        json!({"referral_id": row.id, "case_id": row.case_id, "state": row.state, "fhir_status": row.fhir_status}),
        now,
    )
    .await
}

/// The patient's GP practice, as the latest referral that names one says:
/// documents for the GP are routed by it.
async fn remember_practice(
    tx: &mut dyn Tx,
    case_id: Option<&str>,
    v: &crate::domain::referral::ReferralVersion,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if let (Some(case_id), Some(ods)) = (case_id, v.gp_practice.as_deref()) {
        tx.practice_set(case_id, ods, ms(now)).await?;
    }
    Ok(())
}

fn origin_json(input: &ReferralInput) -> Option<String> {
    input
        .origin
        .as_ref()
        .and_then(|o| serde_json::to_string(o).ok())
}

/// Rows of one case are delivered in order; a referral with no case yet orders by itself.
pub(super) fn ordering_key(row: &ReferralRow) -> String {
    row.case_id.clone().unwrap_or_else(|| row.id.clone())
}
