//! Sections of a VP or IWSP gathered in one session, added to its draft.

use super::{case_of, invalid, load_draft, reject, templates};
use crate::engine::command::SectionsInput;
use crate::engine::handlers::{Outcome, audit};
use crate::engine::outcome::Applied;
use crate::engine::rejection::RejectCode;
use crate::engine::{Context, ms};
use crate::store::{StoreError, Tx};
use time::OffsetDateTime;

const KIND: &str = "document-sections";

pub async fn sections(
    tx: &mut dyn Tx,
    ctx: &Context,
    input: &SectionsInput,
    now: OffsetDateTime,
) -> Outcome {
    let case = case_of(tx, ctx, &input.case).await?;
    let template = match templates(&ctx.documents)?.get(input.kind) {
        Some(t) => t,
        None => {
            return Err(reject(
                RejectCode::InvalidDocument,
                "a note has no sections; post it as a note",
            ));
        }
    };
    let mut draft = load_draft(tx, &case.id, input.kind)
        .await?
        .unwrap_or_default();
    let changed = draft
        .apply(
            template,
            &input.sections,
            input.session_date,
            &input.specialist,
            ctx.documents.max_section_chars,
        )
        .map_err(|p| invalid(&p))?;
    if changed {
        let json = serde_json::to_string(&draft)
            .map_err(|e| StoreError::Corrupt(format!("draft not serialisable: {e}")))?;
        tx.draft_put(&case.id, input.kind, &json, ms(now)).await?;
        audit(
            tx,
            ctx,
            "document.draft-updated",
            "case",
            &case.id,
            Some(format!(
                "kind={} sections={} session={}",
                input.kind,
                input.sections.len(),
                input.session_date
            )),
            now,
        )
        .await?;
    }
    if let Some(c) = &input.complete {
        return super::publish::complete_case(tx, ctx, &case, input.kind, c, now).await;
    }
    Ok(if changed {
        Applied::Processed {
            kind: KIND,
            signals: vec![],
        }
    } else {
        Applied::Unchanged { kind: KIND }
    })
}
