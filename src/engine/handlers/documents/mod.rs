//! IPS documents: drafts gathered over sessions, published versions (a
//! Binary and a DocumentReference, and for the VP and IWSP a review Task),
//! and the GP's or care coordinator's comments coming back.
//!
//! Every write a publication needs is queued in the transaction that
//! decided it, under the case's ordering key, so the outbox delivers them
//! in order: the Binary, then the DocumentReference that points at it, then
//! the older version marked superseded, then the review Task, then
//! `document.published`. Each is idempotent (a bridge-chosen Binary id,
//! conditional creates on business identifiers, `If-Match` amendments), so a
//! crash anywhere in that sequence ends, after recovery, with one of each.

mod delivery;
mod mesh;
mod publish;
mod review;
mod sections;

pub use delivery::{ack, ack_due};
pub use publish::{complete, note};
pub use review::{chase, comment};
pub use sections::sections;

use super::{HandlerError, open_case, open_case_of};
use crate::config::DocumentSettings;
use crate::domain::documents::{DocumentKind, Draft};
use crate::domain::documents::{Problem, Templates, summary};
use crate::domain::referral::NhsField;
use crate::engine::Context;
use crate::engine::command::CaseRef;
use crate::engine::rejection::{RejectCode, Rejection};
use crate::store::{CaseRow, StoreError, Tx};

pub(super) fn reject(code: RejectCode, reason: impl Into<String>) -> HandlerError {
    HandlerError::Reject(Rejection::new(code, reason))
}

pub(super) fn invalid(problems: &[Problem]) -> HandlerError {
    reject(RejectCode::InvalidDocument, summary(problems))
}

pub(super) fn templates(s: &DocumentSettings) -> Result<&Templates, HandlerError> {
    s.templates().ok_or_else(|| {
        reject(
            RejectCode::UnknownQuestionnaire,
            "the document questionnaires were not loaded",
        )
    })
}

/// The open case a document input is for.
pub(super) async fn case_of(
    tx: &mut dyn Tx,
    ctx: &Context,
    case: &CaseRef,
) -> Result<CaseRow, HandlerError> {
    match case {
        CaseRef::Id(id) => open_case(tx, id).await,
        CaseRef::Patient(nhs) => {
            let found = open_case_of(tx, ctx, &NhsField::Valid(nhs.clone())).await?;
            found.ok_or_else(|| {
                reject(
                    RejectCode::UnknownCase,
                    "no open case for the patient the document is about",
                )
            })
        }
    }
}

/// The stored draft of a case's document, if any.
pub(super) async fn load_draft(
    tx: &mut dyn Tx,
    case_id: &str,
    kind: DocumentKind,
) -> Result<Option<Draft>, StoreError> {
    match tx.draft_get(case_id, kind).await? {
        None => Ok(None),
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("stored {kind} draft does not parse: {e}"))),
    }
}
