//! What came back about a document sent over MESH: ITK3 acknowledgements
//! and MESH non-delivery reports, and the deadline for them.
//!
//! The state machine is the domain's ([`Delivery`]); this records its
//! transitions, publishes the event each one announces (one per document and
//! kind: `document.delivered` cannot be published twice), and cancels the
//! deadline once nothing more is awaited.

use super::reject;
use crate::domain::documents::delivery::{Ack, Announcement, Delivery, DeliveryState, Transition};
use crate::engine::command::{AckInput, AckRef, TimerKind};
use crate::engine::events::EventType;
use crate::engine::handlers::{Outcome, audit, queue_event};
use crate::engine::outcome::{Applied, Signal};
use crate::engine::rejection::RejectCode;
use crate::engine::{Context, ms};
use crate::store::{DeliveryRow, StoreError, StoredDelivery, Tx};
use serde_json::json;
use time::OffsetDateTime;

const KIND: &str = "delivery";

/// An acknowledgement or report from the bridge's MESH inbox.
pub async fn ack(tx: &mut dyn Tx, ctx: &Context, a: &AckInput, now: OffsetDateTime) -> Outcome {
    let row = match &a.answers {
        AckRef::ItkMessage(id) => tx.delivery_by_itk_id(id).await?,
        AckRef::LocalId(id) => tx.delivery_by_local_id(id).await?,
    };
    let Some(mut row) = row else {
        return Err(reject(
            RejectCode::UnknownDocument,
            "the acknowledgement answers no message the bridge sent over MESH",
        ));
    };
    let Some(t) = machine(&row).apply(&a.ack) else {
        return Ok(Applied::Unchanged { kind: KIND });
    };
    record(tx, ctx, &mut row, &t, Some(&a.ack), now).await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![Signal::Delivery {
            state: t.to.as_str(),
        }],
    })
}

/// `mesh.ack_within` passed: still waiting for the business acknowledgement?
pub async fn ack_due(
    tx: &mut dyn Tx,
    ctx: &Context,
    local_id: &str,
    now: OffsetDateTime,
) -> Outcome {
    let Some(mut row) = tx.delivery_by_local_id(local_id).await? else {
        return Ok(Applied::Unchanged { kind: KIND });
    };
    let Some(t) = machine(&row).deadline_passed() else {
        return Ok(Applied::Unchanged { kind: KIND });
    };
    record(tx, ctx, &mut row, &t, None, now).await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![Signal::Delivery {
            state: t.to.as_str(),
        }],
    })
}

fn machine(row: &DeliveryRow) -> Delivery {
    Delivery {
        state: row.state.0,
        delivered_before: row.delivered_before,
    }
}

async fn record(
    tx: &mut dyn Tx,
    ctx: &Context,
    row: &mut DeliveryRow,
    t: &Transition,
    ack: Option<&Ack>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    row.state = StoredDelivery(t.to);
    if t.announce == Some(Announcement::Delivered) {
        row.delivered_before = true;
    }
    if let Some(a) = ack {
        row.ack_level = Some(a.level.to_string());
        row.ack_code = a.code.clone();
        row.ack_text = a.text.clone();
    }
    row.updated_at = ms(now);
    tx.delivery_update(row).await?;
    if t.settled {
        tx.timer_cancel(TimerKind::DeliveryAckDue.as_str(), &row.local_id)
            .await?;
    }
    if let Some(announce) = t.announce {
        announce_event(tx, row, announce, now).await?;
    }
    audit(
        tx,
        ctx,
        "document.delivery",
        "document",
        &row.document_id,
        Some(format!(
            "local_id={} state={} code={}",
            row.local_id,
            t.to,
            row.ack_code.as_deref().unwrap_or("-")
        )),
        now,
    )
    .await
}

/// Publishes what a transition announces. Ids and codes only: the ack's
/// text is a code's display, and the recipient is a practice's ODS code.
pub(super) async fn announce_event(
    tx: &mut dyn Tx,
    row: &DeliveryRow,
    announce: Announcement,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let event = match announce {
        Announcement::Delivered => EventType::DocumentDelivered,
        Announcement::Rejected => EventType::DocumentRejected,
        Announcement::Unacknowledged => EventType::DocumentUnacknowledged,
    };
    queue_event(
        tx,
        event,
        &row.document_id,
        &row.case_id,
        json!({
            "document_id": row.document_id,
            "case_id": row.case_id,
            "route": "mesh",
            "recipient_ods": row.recipient_ods,
            "state": row.state.0,
            "acknowledgement": row.ack_level,
            "code": row.ack_code,
            "text": row.ack_text,
            "mesh_local_id": row.local_id,
        }),
        now,
    )
    .await
}

/// A fresh delivery row (`sent`, no recipient yet) for a document about to go.
pub(super) fn new_row(
    local_id: String,
    itk_message_id: String,
    document_id: &str,
    case_id: &str,
    now: OffsetDateTime,
) -> DeliveryRow {
    DeliveryRow {
        local_id,
        document_id: document_id.to_owned(),
        case_id: case_id.to_owned(),
        itk_message_id,
        recipient_ods: None,
        mailbox: None,
        state: StoredDelivery(DeliveryState::Sent),
        delivered_before: false,
        ack_level: None,
        ack_code: None,
        ack_text: None,
        created_at: ms(now),
        updated_at: ms(now),
    }
}
