//! Per-command logic, one file per command family: read what is known,
//! decide with the pure domain, write state, outbox rows, timers and audit
//! rows in the caller's transaction.
//!
//! Contract: a handler that rejects a command does so before it writes
//! anything, so the engine can drop the message's inbox row and keep the
//! rest of the batch.

mod appointment;
mod conflict;
mod decision;
mod documents;
mod employment;
pub(crate) mod outreach;
mod referral;
mod timer;

use super::command::Command;
use super::events::EventType;
use super::outbox::{EventPublish, OutboxMessage};
use super::outcome::Applied;
use super::rejection::{RejectCode, Rejection};
use super::{Context, ms, rfc3339};
use crate::domain::NhsNumber;
use crate::domain::case::CaseStatus;
use crate::store::{AuditEntry, CaseRow, NewOutbox, StoreError, Tx};
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

pub type Outcome = Result<Applied, HandlerError>;

/// Applies one command in `tx`: the engine's only way into the handlers.
pub async fn handle(
    tx: &mut dyn Tx,
    ctx: &Context,
    cmd: &Command,
    channel: &'static str,
    now: OffsetDateTime,
) -> Outcome {
    match cmd {
        Command::Ignore(reason) => Ok(Applied::Ignored(reason.clone())),
        Command::Referral(r) => referral::handle(tx, ctx, r, channel, now).await,
        Command::Appointment(a) => appointment::handle(tx, ctx, a, now).await,
        Command::Decision(d) => decision::handle(tx, ctx, d, now).await,
        Command::EpisodeFinished(e) => {
            outreach::closure::on_episode_finished(tx, ctx, e, now).await
        }
        Command::CloseCase(c) => outreach::close::close(tx, ctx, c, now).await,
        Command::ResolveOutreach(r) => outreach::close::resolve(tx, ctx, r, now).await,
        Command::OutreachAttempt(a) => outreach::attempt::handle(tx, ctx, a, now).await,
        Command::DocumentSections(d) => documents::sections(tx, ctx, d, now).await,
        Command::DocumentComplete(c) => documents::complete(tx, ctx, c, now).await,
        Command::Note(n) => documents::note(tx, ctx, n, now).await,
        Command::DocumentComment(c) => documents::comment(tx, ctx, c, now).await,
        Command::JobStart(j) => employment::job_start(tx, ctx, j, now).await,
        Command::JobEnd(j) => employment::job_end(tx, ctx, j, now).await,
        Command::EmploymentStatus(e) => employment::employment_status(tx, ctx, e, now).await,
        Command::Assign(a) => employment::assign(tx, ctx, a, now).await,
        Command::DeliveryAck(a) => documents::ack(tx, ctx, a, now).await,
        Command::TimerFired(t) => timer::handle(tx, ctx, t, now).await,
        Command::WriteConflict(c) => conflict::handle(tx, ctx, c, now).await,
    }
}

/// The key of a person's record sent without an id of its own (an
/// attempt, a job, a status): `{case_id}:sha256:` over its parts, so the
/// same content sent twice, by any channel, is one record.
pub(super) fn content_key(case_id: &str, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    format!("{case_id}:sha256:{}", hex::encode(h.finalize()))
}

/// Namespace for event ids derived from outbox dedupe keys.
const EVENT_NS: Uuid = Uuid::from_u128(0x6a1f_3c0e_9d2b_4e55_8f00_1b2c_3d4e_5f60);

/// Queues an outbox message; a second message with the same dedupe key is dropped.
pub(super) async fn queue(
    tx: &mut dyn Tx,
    dedupe_key: String,
    ordering_key: &str,
    msg: &OutboxMessage,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.outbox_add(
        &NewOutbox {
            kind: msg.kind().as_str(),
            dedupe_key,
            ordering_key: ordering_key.to_owned(),
            payload: msg.to_payload(),
        },
        ms(now),
    )
    .await
}

/// Queues a domain event about `subject`. Bodies carry ids and codes, never
/// patient data. One event of a type per subject: the id is derived from both.
pub(super) async fn queue_event(
    tx: &mut dyn Tx,
    event: EventType,
    subject: &str,
    ordering_key: &str,
    mut body: serde_json::Value,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let name = event.as_str();
    let dedupe_key = format!("event:{name}:{subject}");
    let event_id = Uuid::new_v5(&EVENT_NS, dedupe_key.as_bytes());
    body["type"] = json!(name);
    body["event_id"] = json!(event_id.to_string());
    body["occurred_at"] = json!(rfc3339(now));
    let msg = OutboxMessage::Event(EventPublish {
        routing_key: name.to_owned(),
        message_id: event_id.to_string(),
        body,
        content_type: None,
    });
    queue(tx, dedupe_key, ordering_key, &msg, now).await
}

pub(super) async fn audit(
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

/// The open case of the patient with this NHS number, if the bridge has one
/// (never matched on an invalid number).
pub(super) async fn open_case_of(
    tx: &mut dyn Tx,
    ctx: &Context,
    nhs: &crate::domain::referral::NhsField,
) -> Result<Option<CaseRow>, StoreError> {
    match nhs.valid() {
        Some(n) => match tx.patient_by_hash(&ctx.lookup_hash(n)).await? {
            Some(pid) => tx.case_open_for(&pid).await,
            None => Ok(None),
        },
        None => Ok(None),
    }
}

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

/// The NHS number of a case's patient: a case always names a patient the
/// store holds, so a missing one is corruption, not bad input.
pub(super) async fn nhs_number_of(tx: &mut dyn Tx, case: &CaseRow) -> Result<String, StoreError> {
    tx.patient_nhs_number(&case.patient_id)
        .await?
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "case {} names a patient the store does not hold",
                case.id
            ))
        })
}

/// Finds or opens the patient's case. Returns `(case, is_multiple)`.
pub(super) async fn case_for(
    tx: &mut dyn Tx,
    ctx: &Context,
    nhs: &NhsNumber,
    now: OffsetDateTime,
) -> Result<(CaseRow, bool), StoreError> {
    let patient_id = tx
        .patient_upsert(
            &ctx.lookup_hash(nhs),
            nhs.expose(),
            &crate::engine::new_id(now),
            ms(now),
        )
        .await?;
    if let Some(mut open) = tx.case_open_for(&patient_id).await? {
        open.referral_count = tx.case_count_referral(&open.id).await?;
        return Ok((open, true));
    }
    let c = CaseRow {
        id: crate::engine::new_id(now),
        patient_id,
        status: crate::domain::case::CaseStatus::Open,
        opened_at: ms(now),
        closed_at: None,
        closed_reason: None,
        referral_count: 1,
    };
    tx.case_insert(&c).await?;
    Ok((c, false))
}
