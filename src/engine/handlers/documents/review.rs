//! The review of a published VP or IWSP: comments coming back (the review
//! Task completed, or a Communication about the document) and the bounded
//! chasing of an unanswered one from a durable timer.

use super::reject;
use crate::domain::documents::ReviewStatus;
use crate::engine::command::{CommentInput, TimerKind};
use crate::engine::events::EventType;
use crate::engine::handlers::{Outcome, audit, queue, queue_event};
use crate::engine::outbox::{Amendment, FhirAmend, OutboxMessage};
use crate::engine::outcome::{Applied, Signal};
use crate::engine::rejection::RejectCode;
use crate::engine::{Context, from_ms, ms, rfc3339};
use crate::render::document_record::{reminder_note, review_identifier};
use crate::store::{CommentRow, StoredReview, Tx};
use serde_json::json;
use time::OffsetDateTime;

/// A comment on a published document: stored on the case once, published as
/// `document.commented` once; the first one ends the review's chasing.
pub async fn comment(
    tx: &mut dyn Tx,
    ctx: &Context,
    c: &CommentInput,
    now: OffsetDateTime,
) -> Outcome {
    let Some(mut doc) = tx.document_get(&c.document_id).await? else {
        return Err(reject(
            RejectCode::UnknownDocument,
            "no document with the identifier the comment names",
        ));
    };
    let at = c.at.unwrap_or(now);
    let row = CommentRow {
        id: crate::engine::new_id(now),
        document_id: doc.id.clone(),
        case_id: doc.case_id.clone(),
        comment_key: c.comment_key.clone(),
        source: <&str>::from(c.source).to_owned(),
        author: c.author.clone(),
        text: c.text.clone(),
        commented_at: ms(at),
        received_at: ms(now),
    };
    if !tx.comment_insert(&row).await? {
        return Ok(Applied::Unchanged {
            kind: "document-comment",
        });
    }
    let mut signals = vec![Signal::DocumentComment {
        source: c.source.into(),
    }];
    if doc.review_status.0 == Some(ReviewStatus::Awaiting) {
        doc.review_status = StoredReview(Some(ReviewStatus::Commented));
        doc.reviewed_at = Some(ms(now));
        doc.updated_at = ms(now);
        tx.document_update(&doc).await?;
        tx.timer_cancel(TimerKind::ReviewChase.as_str(), &doc.id)
            .await?;
        let days = (at - from_ms(doc.created_at)).as_seconds_f64() / 86_400.0;
        signals.push(Signal::ReviewTurnaround {
            days: days.max(0.0),
        });
    }
    queue_event(
        tx,
        EventType::DocumentCommented,
        &row.id,
        &doc.case_id,
        json!({
            "document_id": doc.id,
            "case_id": doc.case_id,
            "kind": doc.kind,
            "version": doc.version,
            "comment_id": row.id,
            "source": c.source,
            "commented_at": rfc3339(at),
        }),
        now,
    )
    .await?;
    audit(
        tx,
        ctx,
        EventType::DocumentCommented.as_str(),
        "case",
        &doc.case_id,
        Some(format!(
            "document={} comment={} source={}",
            doc.id, row.id, row.source
        )),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: "document-comment",
        signals,
    })
}

/// The review-chase timer fell due: if the review is still awaited and
/// chases remain, add a reminder to the review Task, publish
/// `document.overdue`, and set the next chase. The count is stored, so a
/// restart neither repeats nor skips one.
pub async fn chase(
    tx: &mut dyn Tx,
    ctx: &Context,
    document_id: &str,
    now: OffsetDateTime,
) -> Outcome {
    const KIND: &str = "review-chase";
    let Some(mut doc) = tx.document_get(document_id).await? else {
        return Ok(Applied::Unchanged { kind: KIND });
    };
    let (Some(ReviewStatus::Awaiting), Some(due_ms)) = (doc.review_status.0, doc.review_due_at)
    else {
        return Ok(Applied::Unchanged { kind: KIND });
    };
    let policy = ctx.documents.review_policy();
    let due = from_ms(due_ms);
    let done = u32::try_from(doc.chases).unwrap_or(u32::MAX);
    if policy.next_chase(due, done).is_none() {
        return Ok(Applied::Unchanged { kind: KIND });
    }
    let n = done + 1;
    doc.chases = i64::from(n);
    doc.updated_at = ms(now);
    tx.document_update(&doc).await?;
    let text = reminder_note(n, policy.max_chases, due.date());
    let value = review_identifier(&doc.id);
    let msg = OutboxMessage::FhirAmend(FhirAmend {
        resource_type: "Task".into(),
        identifier_system: ctx.identifier_system.clone(),
        identifier_value: value.clone(),
        change: Amendment::TaskNote {
            text,
            at: rfc3339(now),
        },
    });
    queue(
        tx,
        format!("fhir-amend:Task:{value}:chase-{n}"),
        &doc.case_id,
        &msg,
        now,
    )
    .await?;
    queue_event(
        tx,
        EventType::DocumentOverdue,
        &format!("{}:chase-{n}", doc.id),
        &doc.case_id,
        json!({
            "document_id": doc.id,
            "case_id": doc.case_id,
            "kind": doc.kind,
            "version": doc.version,
            "chase": n,
            "of": policy.max_chases,
            "review_due_at": rfc3339(due),
        }),
        now,
    )
    .await?;
    if let Some(next) = policy.next_chase(due, n) {
        tx.timer_set(TimerKind::ReviewChase.as_str(), &doc.id, ms(next), "{}")
            .await?;
    }
    audit(
        tx,
        ctx,
        EventType::DocumentOverdue.as_str(),
        "case",
        &doc.case_id,
        Some(format!("document={} chase={n}", doc.id)),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![Signal::ReviewChased],
    })
}
