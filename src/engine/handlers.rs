//! Per-command logic: read what is known, decide with the pure domain, write
//! state, outbox rows and audit rows in the caller's transaction.
//!
//! Contract: a handler that rejects a message does so before it writes
//! anything, so the engine can drop the message's inbox row and keep the
//! rest of the batch.

use super::apply::{Applied, Signal};
use super::{Context, from_ms, ms, rfc3339};
use crate::domain::referral::{
    self, Decision, DecisionEffect, DecisionError, Intake, KnownReferral, ReferralState,
};
use crate::domain::source::SourceKind;
use crate::fhir::resources::DecisionTask;
use crate::ingest::Rejection;
use crate::ingest::classify::{AppointmentInput, DecisionInput, DecisionOutcome, ReferralInput};
use crate::store::{AppointmentRow, AuditEntry, CaseRow, NewOutbox, ReferralRow, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug)]
pub enum HandlerError {
    Reject(Rejection),
    Store(StoreError),
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        HandlerError::Store(e)
    }
}

type Outcome = Result<Applied, HandlerError>;

/// Namespace for event ids derived from outbox dedupe keys.
const EVENT_NS: Uuid = Uuid::from_u128(0x6a1f_3c0e_9d2b_4e55_8f00_1b2c_3d4e_5f60);

/// Queues a domain event. Bodies carry ids and codes, never patient data.
async fn queue_event(
    tx: &mut dyn Tx,
    name: &str,
    subject: &str,
    ordering_key: &str,
    mut body: serde_json::Value,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let dedupe_key = format!("event:{name}:{subject}");
    let event_id = Uuid::new_v5(&EVENT_NS, dedupe_key.as_bytes());
    body["type"] = json!(name);
    body["event_id"] = json!(event_id.to_string());
    body["occurred_at"] = json!(rfc3339(now));
    let payload = json!({"routing_key": name, "message_id": event_id.to_string(), "body": body});
    tx.outbox_add(
        &NewOutbox {
            kind: "event",
            dedupe_key,
            ordering_key: ordering_key.to_owned(),
            payload: payload.to_string(),
        },
        ms(now),
    )
    .await?;
    Ok(())
}

async fn audit(
    tx: &mut dyn Tx,
    ctx: &Context,
    action: &str,
    resource_type: &str,
    id: &str,
    detail: Option<String>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.audit(
        &AuditEntry {
            actor: ctx.actor.clone(),
            action: action.into(),
            resource_type: resource_type.into(),
            resource_id: id.into(),
            detail,
        },
        ms(now),
    )
    .await
}

/// Finds or opens the patient's case. Returns `(case, is_multiple)`.
async fn case_for(
    tx: &mut dyn Tx,
    key: &crate::domain::PatientKey,
    nhs: &crate::domain::NhsNumber,
    now: OffsetDateTime,
) -> Result<(CaseRow, bool), StoreError> {
    let patient_id = tx
        .patient_upsert(
            &nhs.lookup_hash(key),
            nhs.expose(),
            &Uuid::new_v4().to_string(),
            ms(now),
        )
        .await?;
    if let Some(mut open) = tx.case_open_for(&patient_id).await? {
        open.referral_count = tx.case_count_referral(&open.id).await?;
        return Ok((open, true));
    }
    let c = CaseRow {
        id: Uuid::new_v4().to_string(),
        patient_id,
        status: "open".into(),
        opened_at: ms(now),
        closed_at: None,
        closed_reason: None,
        referral_count: 1,
    };
    tx.case_insert(&c).await?;
    Ok((c, false))
}

pub async fn referral(
    tx: &mut dyn Tx,
    ctx: &Context,
    input: &ReferralInput,
    channel: &str,
    now: OffsetDateTime,
) -> Outcome {
    const KIND: &str = "referral";
    let existing = tx.referral_by_key(&input.key).await?;
    let known = existing.as_ref().map(|r| KnownReferral {
        state: ReferralState::parse(&r.state).unwrap_or(ReferralState::Incomplete),
        content_hash: r.content_hash.clone(),
        source_updated_at: r.source_updated_at.map(from_ms),
        completed_at: r.completed_at.map(from_ms),
    });
    let v = &input.version;
    let fhir_status = input.raw["status"].as_str().unwrap_or("unknown").to_owned();
    match (referral::apply_version(known.as_ref(), v, now), existing) {
        (Intake::Unchanged, _) => Ok(Applied::Unchanged { kind: KIND }),
        (Intake::New(r), _) => {
            // Never match or merge on an invalid number: such a referral has no case until corrected.
            let case = match v.nhs.valid() {
                Some(n) => Some(case_for(tx, &ctx.patient_key, n, now).await?),
                None => None,
            };
            let row = ReferralRow {
                id: Uuid::new_v4().to_string(),
                referral_key: input.key.clone(),
                case_id: case.as_ref().map(|(c, _)| c.id.clone()),
                resource_ref: input.resource_ref.clone(),
                channel: channel.to_owned(),
                state: r.state.as_str().to_owned(),
                fhir_status,
                incomplete_reasons: json!(r.incomplete_reasons).to_string(),
                content_hash: v.content_hash.clone(),
                source_updated_at: v.source_updated_at.map(ms),
                authored_at: input.authored_at.map(ms),
                received_at: ms(now),
                completed_at: r.completed_at.map(ms),
                source_ods: v.source.ods_code.clone(),
                source_kind: v.source.kind.as_str().to_owned(),
                is_multiple: i64::from(case.as_ref().is_some_and(|(_, m)| *m)),
                decision: None,
                decline_reason: None,
                decided_at: None,
                decided_by: None,
                assistance_commenced_at: None,
                updated_at: ms(now),
                raw: input.raw.to_string(),
            };
            tx.referral_insert(&row).await?;
            let ordering = row.case_id.clone().unwrap_or_else(|| row.id.clone());
            queue_event(
                tx,
                "referral.received",
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
                signals: vec![Signal::ReferralReceived {
                    source_kind: v.source.kind_str(),
                    incomplete: !r.incomplete_reasons.is_empty(),
                }],
            })
        }
        (Intake::Updated(r), Some(mut row)) => {
            let before = row.state.clone();
            if row.case_id.is_none()
                && let Some(n) = v.nhs.valid()
            {
                let (case, multiple) = case_for(tx, &ctx.patient_key, n, now).await?;
                row.case_id = Some(case.id);
                row.is_multiple = i64::from(multiple);
            }
            row.state = r.state.as_str().to_owned();
            row.fhir_status = fhir_status;
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
            row.updated_at = ms(now);
            row.raw = input.raw.to_string();
            tx.referral_update(&row).await?;
            let ordering = row.case_id.clone().unwrap_or_else(|| row.id.clone());
            if r.withdrawn_now {
                queue_event(
                    tx,
                    "referral.withdrawn",
                    &row.id,
                    &ordering,
                    json!({"referral_id": row.id, "case_id": row.case_id, "state": row.state, "fhir_status": row.fhir_status}),
                    now,
                )
                .await?;
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
                signals: vec![],
            })
        }
        (Intake::Updated(_), None) => Err(HandlerError::Store(StoreError::Corrupt(
            "update without a stored referral".into(),
        ))),
    }
}

pub async fn appointment(
    tx: &mut dyn Tx,
    ctx: &Context,
    input: &AppointmentInput,
    now: OffsetDateTime,
) -> Outcome {
    const KIND: &str = "appointment";
    let existing = tx.appointment_by_key(&input.key).await?;
    if let Some(e) = &existing {
        let stale = matches!((e.source_updated_at, input.source_updated_at.map(ms)), (Some(held), Some(new)) if new < held);
        if e.content_hash == input.content_hash || stale {
            return Ok(Applied::Unchanged { kind: KIND });
        }
    }
    let case = match input.nhs.valid() {
        Some(n) => match tx.patient_by_hash(&n.lookup_hash(&ctx.patient_key)).await? {
            Some(pid) => tx.case_open_for(&pid).await?,
            None => None,
        },
        None => None,
    };
    let row = AppointmentRow {
        id: existing
            .as_ref()
            .map(|e| e.id.clone())
            .unwrap_or_else(|| Uuid::new_v4().to_string()),
        appointment_key: input.key.clone(),
        case_id: case.as_ref().map(|c| c.id.clone()),
        status: input.status.clone(),
        start_at: input.start.map(ms),
        content_hash: input.content_hash.clone(),
        source_updated_at: input.source_updated_at.map(ms),
        updated_at: ms(now),
        raw: input.raw.to_string(),
    };
    tx.appointment_upsert(&row).await?;
    let mut signals = vec![];
    if let (Some(case), true) = (&case, input.attended()) {
        let at = input.start.unwrap_or(now);
        for mut r in tx.referrals_for_case(&case.id).await? {
            let state = ReferralState::parse(&r.state).unwrap_or(ReferralState::Incomplete);
            if let Some(next) = referral::on_attended(state, r.assistance_commenced_at.map(from_ms))
            {
                r.state = next.as_str().to_owned();
                r.assistance_commenced_at = Some(ms(at));
                r.updated_at = ms(now);
                tx.referral_update(&r).await?;
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

/// A decision from the queue (`ips.referral-decision.v1`).
pub async fn decision_event(
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
    decide(
        tx,
        ctx,
        &d.referral_id,
        &decision,
        d.decided_by.as_deref(),
        now,
    )
    .await
}

/// Records a decision and queues the Task for the referrer and the event.
pub async fn decide(
    tx: &mut dyn Tx,
    ctx: &Context,
    referral_id: &str,
    decision: &Decision,
    decided_by: Option<&str>,
    now: OffsetDateTime,
) -> Outcome {
    const KIND: &str = "decision";
    let Some(mut row) = tx.referral_by_id(referral_id).await? else {
        return Err(HandlerError::Reject(Rejection::new(
            "unknown-referral",
            format!("no referral with id {referral_id:?}"),
        )));
    };
    let previous = match (row.decision.as_deref(), row.decline_reason.clone()) {
        (Some("accepted"), _) => Some(Decision::Accept),
        (Some("declined"), reason) => Some(Decision::Decline {
            reason: reason.unwrap_or_default(),
        }),
        _ => None,
    };
    let reasons: Vec<String> = serde_json::from_str(&row.incomplete_reasons).unwrap_or_default();
    let state = ReferralState::parse(&row.state).unwrap_or(ReferralState::Incomplete);
    let effect = referral::decide(
        state,
        previous.as_ref(),
        &reasons,
        decision,
        &ctx.decline_reasons,
        now,
    )
    .map_err(|e| {
        let code = match e {
            DecisionError::Incomplete(_) => "referral-incomplete",
            DecisionError::AlreadyDecided(_) => "already-decided",
            DecisionError::NotDecidable(_) => "not-decidable",
            DecisionError::UnknownDeclineReason(..) => "unknown-decline-reason",
        };
        HandlerError::Reject(Rejection::new(code, e.to_string()))
    })?;
    let (new_state, decided_at) = match effect {
        DecisionEffect::AlreadyRecorded => return Ok(Applied::Unchanged { kind: KIND }),
        DecisionEffect::Record { state, decided_at } => (state, decided_at),
    };
    row.state = new_state.as_str().to_owned();
    row.decision = Some(decision.outcome().to_owned());
    row.decline_reason = match decision {
        Decision::Decline { reason } => Some(reason.clone()),
        Decision::Accept => None,
    };
    row.decided_at = Some(ms(decided_at));
    row.decided_by = decided_by.map(str::to_owned);
    row.updated_at = ms(now);
    tx.referral_update(&row).await?;

    let nhs_number = match &row.case_id {
        Some(cid) => match tx.case_get(cid).await? {
            Some(c) => tx.patient_nhs_number(&c.patient_id).await?,
            None => None,
        },
        None => None,
    };
    let sr_identifier = row
        .referral_key
        .split_once('|')
        .filter(|(s, _)| s.contains(':'));
    let task = DecisionTask {
        identifier_system: &ctx.identifier_system,
        referral_id: &row.id,
        service_request_ref: row
            .resource_ref
            .as_deref()
            .filter(|_| row.channel == "fhir-poll"),
        service_request_identifier: sr_identifier,
        nhs_number: nhs_number.as_deref(),
        outcome: decision.outcome(),
        decline_reason: row.decline_reason.as_deref(),
        decided_at: &rfc3339(decided_at),
        service_ods: &ctx.service_ods,
        referrer_ods: row.source_ods.as_deref(),
    };
    let ordering = row.case_id.clone().unwrap_or_else(|| row.id.clone());
    let payload = json!({
        "op": "create",
        "identifier_system": ctx.identifier_system,
        "identifier_value": task.identifier_value(),
        "resource": task.to_resource(),
    });
    tx.outbox_add(
        &NewOutbox {
            kind: "fhir",
            dedupe_key: format!("fhir:Task:{}", task.identifier_value()),
            ordering_key: ordering.clone(),
            payload: payload.to_string(),
        },
        ms(now),
    )
    .await?;
    let event = format!("referral.{}", decision.outcome());
    let mut body =
        json!({"referral_id": row.id, "case_id": row.case_id, "outcome": decision.outcome()});
    if let Some(r) = &row.decline_reason {
        body["decline_reason"] = json!(r);
    }
    queue_event(tx, &event, &row.id, &ordering, body, now).await?;
    audit(
        tx,
        ctx,
        &event,
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

impl crate::domain::source::ReferralSource {
    fn kind_str(&self) -> &'static str {
        SourceKind::as_str(self.kind)
    }
}
