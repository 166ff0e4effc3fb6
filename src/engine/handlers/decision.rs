//! An employment specialist decided on a referral (API or queue).
//!
//! The referral row is read with a lock (`FOR UPDATE` on PostgreSQL; SQLite
//! serialises writers), so two replicas deciding at the same moment cannot
//! both pass the "not decided yet" check: the second waits, then sees the
//! first decision and is refused (or told it was already recorded).

use super::referral::ordering_key;
use super::{HandlerError, Outcome, audit, queue, queue_event};
use crate::domain::referral::{self, Decision, DecisionEffect, DecisionError, ReferralState};
use crate::engine::command::{DecisionInput, DecisionOutcome, MessageOrigin, TimerKind};
use crate::engine::events::EventType;
use crate::engine::outbox::{EventPublish, FhirCreate, OutboxMessage};
use crate::engine::outcome::{Applied, Signal};
use crate::engine::rejection::{RejectCode, Rejection};
use crate::engine::{Context, ms, rfc3339};
use crate::render::{BarsResponse, DecisionTask, ReferralRef, bars_response};
use crate::store::{ReferralRow, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;

const KIND: &str = "decision";

pub async fn handle(
    tx: &mut dyn Tx,
    ctx: &Context,
    d: &DecisionInput,
    now: OffsetDateTime,
) -> Outcome {
    let decision = match d.outcome {
        DecisionOutcome::Accepted => Decision::Accept,
        DecisionOutcome::Declined => Decision::Decline {
            reason: d.decline_reason.clone().unwrap_or_default(),
        },
    };
    let Some(mut row) = tx.referral_lock(&d.referral_id).await? else {
        return Err(HandlerError::Reject(Rejection::new(
            RejectCode::UnknownReferral,
            "no referral with that id",
        )));
    };
    let previous = match (row.decision.0, row.decline_reason.clone()) {
        (Some(DecisionOutcome::Accepted), _) => Some(Decision::Accept),
        (Some(DecisionOutcome::Declined), reason) => Some(Decision::Decline {
            reason: reason.unwrap_or_default(),
        }),
        (None, _) => None,
    };
    let reasons: Vec<String> = serde_json::from_str(&row.incomplete_reasons).unwrap_or_default();
    let effect = referral::decide(
        row.state,
        previous.as_ref(),
        &reasons,
        &decision,
        &ctx.decline_reasons,
        now,
    )
    .map_err(|e| {
        let code = match e {
            DecisionError::Incomplete(_) => RejectCode::ReferralIncomplete,
            DecisionError::AlreadyDecided(_) => RejectCode::AlreadyDecided,
            DecisionError::NotDecidable(_) => RejectCode::NotDecidable,
            DecisionError::UnknownDeclineReason(..) => RejectCode::UnknownDeclineReason,
        };
        HandlerError::Reject(Rejection::new(code, e.to_string()))
    })?;
    let (new_state, decided_at) = match effect {
        DecisionEffect::AlreadyRecorded => return Ok(Applied::Unchanged { kind: KIND }),
        DecisionEffect::Record { state, decided_at } => (state, decided_at),
    };
    row.state = new_state;
    row.decision = crate::store::StoredDecision(Some(decision.kind()));
    row.decline_reason = match &decision {
        Decision::Decline { reason } => Some(reason.clone()),
        Decision::Accept => None,
    };
    row.decided_at = Some(ms(decided_at));
    row.decided_by = d.decided_by.clone();
    row.updated_at = ms(now);
    tx.referral_update(&row).await?;

    let ordering = ordering_key(&row);
    tell_referrer(tx, ctx, &row, &decision, decided_at, &ordering, now).await?;
    if new_state == ReferralState::Accepted {
        // IPS fidelity: everyone on the waiting list is seen within the target.
        let due = decided_at + ctx.waiting_list_target;
        tx.timer_set(
            TimerKind::WaitingListTarget.as_str(),
            &row.id,
            ms(due),
            "{}",
        )
        .await?;
    }
    let event = match decision {
        Decision::Accept => EventType::ReferralAccepted,
        Decision::Decline { .. } => EventType::ReferralDeclined,
    };
    let mut body =
        json!({"referral_id": row.id, "case_id": row.case_id, "outcome": decision.outcome()});
    if let Some(r) = &row.decline_reason {
        body["decline_reason"] = json!(r);
    }
    queue_event(tx, event, &row.id, &ordering, body, now).await?;
    audit(
        tx,
        ctx,
        event.as_str(),
        "referral",
        &row.id,
        row.decline_reason.clone().map(|r| format!("reason={r}")),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![Signal::Decision {
            outcome: decision.outcome(),
        }],
    })
}

/// Queues the Task for the referrer and, for a referral that came as a BaRS
/// message, the BaRS `servicerequest-response`.
async fn tell_referrer(
    tx: &mut dyn Tx,
    ctx: &Context,
    row: &ReferralRow,
    decision: &Decision,
    decided_at: OffsetDateTime,
    ordering: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let nhs_number = match &row.case_id {
        Some(cid) => match tx.case_get(cid).await? {
            Some(c) => tx.patient_nhs_number(&c.patient_id).await?,
            None => None,
        },
        None => None,
    };
    let origin: Option<MessageOrigin> = row
        .origin
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok());
    let referral = referral_ref(row, origin.as_ref());
    let at = rfc3339(decided_at);
    let task = DecisionTask {
        identifier_system: &ctx.identifier_system,
        referral_id: &row.id,
        referral: &referral,
        nhs_number: nhs_number.as_deref(),
        outcome: decision.outcome(),
        decline_reason: row.decline_reason.as_deref(),
        decided_at: &at,
        service_ods: &ctx.service_ods,
        referrer_ods: row.source_ods.as_deref(),
    };
    // One Task per referral: a second decision is refused above, so the key
    // names the referral, not the outcome.
    let create = OutboxMessage::FhirCreate(FhirCreate {
        identifier_system: ctx.identifier_system.clone(),
        identifier_value: task.identifier_value(),
        resource: task.to_resource().into(),
    });
    queue(
        tx,
        format!("fhir:Task:{}", task.identifier_value()),
        ordering,
        &create,
        now,
    )
    .await?;

    let Some(o) = origin else { return Ok(()) };
    // The published BaRS examples answer a request by its Bundle.id.
    let (Some(request_id), Some(sr_id)) = (
        o.bundle_id.as_ref().or(o.message_header_id.as_ref()),
        &o.service_request_id,
    ) else {
        return Ok(());
    };
    let raw: serde_json::Value = serde_json::from_str(&row.raw).unwrap_or_default();
    let answer = BarsResponse {
        referral_id: &row.id,
        outcome: decision.outcome(),
        request_header_id: request_id,
        reply_to: o.source_endpoint.as_deref(),
        referrer_ods: o.sender_ods.as_deref().or(row.source_ods.as_deref()),
        service_request: &raw,
        service_request_id: sr_id,
        service_ods: &ctx.service_ods,
        service_name: &ctx.actor,
        service_endpoint: ctx.service_endpoint.as_deref(),
        at: &at,
    };
    let msg = OutboxMessage::Event(EventPublish {
        routing_key: bars_response::ROUTING_KEY.to_owned(),
        message_id: answer.message_id().to_string(),
        body: answer.to_bundle(),
        content_type: Some("application/fhir+json".into()),
    });
    queue(
        tx,
        format!("bars:servicerequest-response:{}", row.id),
        ordering,
        &msg,
        now,
    )
    .await
}

/// Everything known that names the referral to its sender, from its row.
pub(super) fn referral_ref_of(row: &ReferralRow) -> ReferralRef {
    let origin: Option<MessageOrigin> = row
        .origin
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok());
    referral_ref(row, origin.as_ref())
}

/// Everything known that names the referral to its sender.
fn referral_ref(row: &ReferralRow, origin: Option<&MessageOrigin>) -> ReferralRef {
    let identifier = row
        .business_identifier()
        .map(|(s, v)| (s.to_owned(), v.to_owned()));
    let local_reference = row
        .resource_ref
        .clone()
        .filter(|_| row.channel == "fhir-poll");
    let sender_id = origin
        .and_then(|o| o.service_request_id.clone())
        .or_else(|| {
            row.resource_ref
                .as_deref()
                .and_then(|r| r.strip_prefix("ServiceRequest/"))
                .map(str::to_owned)
        });
    ReferralRef {
        identifier,
        local_reference,
        sender_id,
        sender_endpoint: origin.and_then(|o| o.source_endpoint.clone()),
        sender_ods: origin
            .and_then(|o| o.sender_ods.clone())
            .or_else(|| row.source_ods.clone()),
    }
}
