//! A published document on its way to the patient's GP practice over MESH.
//!
//! Routing is decided here, at publication, in the same transaction: the
//! route (`[routing]`), the practice (the referral's
//! `Patient.generalPractitioner`), its mailbox (`mesh.mailboxes`). The
//! ITK3 message is built now from the same rendered XHTML the FHIR route
//! writes, and queued whole as a `MeshSend` outbox row, so a send repeated
//! after a crash carries the same bytes under the same `mex-LocalID` and
//! ITK message id. A document that cannot be routed is recorded as such
//! and announced (`document.rejected`), never silently dropped.

use super::delivery::{announce_event, new_row};
use crate::domain::documents::DocumentKind;
use crate::domain::documents::delivery::{Announcement, DeliveryState, Route, route_for};
use crate::engine::command::TimerKind;
use crate::engine::handlers::{HandlerError, queue};
use crate::engine::outbox::{MeshSend, OutboxMessage};
use crate::engine::outcome::Signal;
use crate::engine::{Context, ms, rfc3339};
use crate::render::send_document::{self, Document, SendDocument};
use crate::store::{CaseRow, StoredDelivery, Tx};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a delivery's mailbox says when MESH routed by the patient's details.
const PATIENT_ROUTING: &str = "patient-routing";

/// Names the ITK message ids the bridge makes (UUID v5 of the document id).
const ITK_NS: Uuid = Uuid::from_u128(0x6d2b_1f0e_4c1a_4f3e_9a57_2b1d_8e0c_3a41);

/// Which way the case's document goes, and the patient's practice.
pub(super) async fn route(
    tx: &mut dyn Tx,
    ctx: &Context,
    case: &CaseRow,
    kind: DocumentKind,
) -> Result<(Route, Option<String>), HandlerError> {
    let practice = tx.practice_of(&case.id).await?;
    let r = &ctx.delivery.routing;
    Ok((
        route_for(&r.rules, r.default, kind, practice.as_deref()),
        practice,
    ))
}

/// Queues the send (or records why there is none); returns the signals.
pub(super) async fn send(
    tx: &mut dyn Tx,
    ctx: &Context,
    case: &CaseRow,
    practice: Option<&str>,
    doc: &Document<'_>,
    now: OffsetDateTime,
) -> Result<Vec<Signal>, HandlerError> {
    let d = &ctx.delivery;
    let local_id = format!("ips-doc-{}", doc.document_id);
    let itk_id = Uuid::new_v5(&ITK_NS, doc.document_id.as_bytes()).to_string();
    // The practice's mailbox, else MESH's routing by the patient's details.
    let to = match practice.and_then(|p| d.mailbox_for(p)) {
        Some(mb) => Some((mb.to_owned(), mb.to_owned())),
        None if d.patient_routing => {
            send_document::patient_address(doc.nhs_number, doc.date_of_birth, doc.patient_name)
                // Shown and stored as the method, not the address (it holds patient data).
                .map(|address| (address, PATIENT_ROUTING.to_owned()))
        }
        None => None,
    };
    let Some((mailbox, shown)) = to.filter(|_| d.mesh_enabled) else {
        let why = match (practice, d.mesh_enabled, d.patient_routing) {
            (_, false, _) => "MESH is not enabled here (mesh.enabled = false)".to_owned(),
            (_, _, true) => "MESH patient-based routing needs the patient's date of birth and name on the completion".to_owned(),
            (None, _, _) => "the patient's GP practice is not known (no referral named Patient.generalPractitioner)".to_owned(),
            (Some(p), _, _) => format!("no MESH mailbox is configured for practice {p} (mesh.mailboxes)"),
        };
        let mut row = new_row(local_id, itk_id, doc.document_id, &case.id, now);
        row.recipient_ods = practice.map(str::to_owned);
        row.state = StoredDelivery(DeliveryState::Unroutable);
        row.ack_code = Some("unroutable".into());
        row.ack_text = Some(why);
        tx.delivery_insert(&row).await?;
        announce_event(tx, &row, Announcement::Rejected, now).await?;
        return Ok(vec![Signal::Delivery {
            state: DeliveryState::Unroutable.as_str(),
        }]);
    };
    let created = rfc3339(now);
    let message = send_document::message(&SendDocument {
        message_id: &itk_id,
        document: doc,
        identifier_system: &ctx.identifier_system,
        service_name: &ctx.documents.service_name,
        service_ods: &ctx.service_ods,
        practice_ods: practice,
        from_mailbox: &d.mailbox,
        created: &created,
    });
    let (content, content_type, ext) = d.format.encode(&message);
    let send = OutboxMessage::MeshSend(MeshSend {
        local_id: local_id.clone(),
        to: mailbox,
        workflow_id: d.workflow_id.clone(),
        // Seen by MESH operators: the kind of document, nothing about the patient.
        subject: format!("{} from {}", doc.kind.title(), ctx.service_ods),
        filename: format!("{local_id}.{ext}"),
        content_type: Some(content_type.to_owned()),
        content,
    });
    // Its own ordering key: a MESH outage must not hold up the case's FHIR
    // writes and events, while two versions for one case still go in order.
    queue(
        tx,
        format!("mesh-send:{local_id}"),
        &format!("mesh:{}", case.id),
        &send,
        now,
    )
    .await?;
    let mut row = new_row(local_id.clone(), itk_id, doc.document_id, &case.id, now);
    row.recipient_ods = practice.map(str::to_owned);
    row.mailbox = Some(shown);
    tx.delivery_insert(&row).await?;
    tx.timer_set(
        TimerKind::DeliveryAckDue.as_str(),
        &local_id,
        ms(now + d.ack_within),
        "{}",
    )
    .await?;
    Ok(vec![Signal::Delivery {
        state: DeliveryState::Sent.as_str(),
    }])
}
