//! The documents API: a VP or IWSP gathered section by section over
//! sessions and completed, contact notes, and a case's drafts, published
//! versions, reviews and comments read back.
//!
//! Bodies are the `ips.document-*.v1` / `ips.note.v1` events without
//! `case_id` and `kind`, which come from the path. Problems name fields and
//! section ids, never the text.

use super::AppState;
use super::error::ApiError;
use super::outreach::{body, created_or_repeat, decode, from_path_only, run, time};
use crate::domain::documents::{DocumentKind, Draft, Problem};
use crate::engine::command::{
    CaseRef, Command, CompleteInput, NoteInput, SectionsBody, SectionsInput,
};
use crate::store::{CommentRow, DeliveryRow, DocumentRow, DraftRow, OutboxRow};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

fn problems_error(code: &'static str, message: &str, problems: Vec<Problem>) -> ApiError {
    ApiError::unprocessable(
        code,
        message,
        problems.into_iter().map(|p| (p.field, p.message)).collect(),
    )
}

/// `vp` or `iwsp` from the path.
fn plan_kind(kind: &str) -> Result<DocumentKind, ApiError> {
    match kind.parse::<DocumentKind>() {
        Ok(k) if k.has_sections() => Ok(k),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown-document-kind",
            "documents with sections are vp (vocational profile) and iwsp (in-work support plan)",
        )),
    }
}

/// `POST /api/cases/{id}/documents/{kind}/sections`:
/// `{"session_date": "2026-11-02", "specialist": "...", "sections": [{"id": "work-goal", "text": "..."}]}`.
pub async fn add_sections(
    State(s): State<AppState>,
    Path((id, kind)): Path<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let kind = plan_kind(&kind)?;
    let v = body(b)?;
    from_path_only(&v, &["case_id", "kind"])?;
    let req: SectionsBody = decode(v)?;
    let settings = &s.engine.ctx.documents;
    // Checked here too (against an empty draft) so the answer lists every
    // problem, not the engine's one-line reason.
    if let Some(template) = settings.templates().and_then(|t| t.get(kind))
        && let Err(p) = Draft::default().apply(
            template,
            &req.sections,
            req.session_date,
            &req.specialist,
            settings.max_section_chars,
        )
    {
        return Err(problems_error(
            "invalid-document",
            "the sections have problems; see problems",
            p,
        ));
    }
    run(
        &s,
        Command::DocumentSections(Box::new(SectionsInput {
            case: CaseRef::Id(id.clone()),
            kind,
            session_date: req.session_date,
            sections: req.sections,
            specialist: req.specialist,
            complete: None,
        })),
    )
    .await?;
    documents_view(&s, &id).await.map(Json)
}

/// `POST /api/cases/{id}/documents/{kind}/complete`:
/// `{"specialist": "...", "patient_name"?: "...", "date_of_birth"?: "1990-01-31"}`.
/// 201 with the case's documents when a version was published; 200 when the
/// draft was already published as it is.
pub async fn complete(
    State(s): State<AppState>,
    Path((id, kind)): Path<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let kind = plan_kind(&kind)?;
    let v = body(b)?;
    from_path_only(&v, &["case_id", "kind"])?;
    let mut req: CompleteInput = decode(v)?;
    let p = req.validate();
    if !p.is_empty() {
        return Err(problems_error(
            "invalid-document",
            "the request has problems; see problems",
            p,
        ));
    }
    req.case_id = Some(id.clone());
    req.kind = Some(kind);
    let applied = run(&s, Command::DocumentComplete(Box::new(req))).await?;
    let status = created_or_repeat(&applied);
    Ok((status, Json(documents_view(&s, &id).await?)))
}

/// `POST /api/cases/{id}/notes`:
/// `{"contact_date": "2026-11-30", "text": "...", "specialist": "...", "note_id"?: "..."}`.
pub async fn add_note(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let v = body(b)?;
    from_path_only(&v, &["case_id", "kind"])?;
    let mut req: NoteInput = decode(v)?;
    let p = req.validate(s.engine.ctx.documents.max_note_chars);
    if !p.is_empty() {
        return Err(problems_error(
            "invalid-document",
            "the note has problems; see problems",
            p,
        ));
    }
    req.case_id = Some(id.clone());
    let applied = run(&s, Command::Note(Box::new(req))).await?;
    let status = created_or_repeat(&applied);
    Ok((status, Json(documents_view(&s, &id).await?)))
}

/// `GET /api/cases/{id}/documents`.
pub async fn list(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if s.engine.store.case_get(&id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no case with this id",
        ));
    }
    documents_view(&s, &id).await.map(Json)
}

fn draft_view(s: &AppState, d: &DraftRow) -> Value {
    let draft: Draft = serde_json::from_str(&d.draft).unwrap_or_default();
    let template = s
        .engine
        .ctx
        .documents
        .templates()
        .and_then(|t| t.get(d.kind.0));
    let sections: Vec<Value> = match template {
        Some(t) => draft
            .ordered(t)
            .map(|(def, e)| {
                json!({"id": def.id, "heading": def.heading, "text": e.text,
                       "session_date": e.session_date.to_string(), "recorded_by": e.recorded_by})
            })
            .collect(),
        None => vec![],
    };
    json!({
        "kind": d.kind,
        "sections": sections,
        "sessions": draft.sessions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "missing_required": template.map(|t| draft.missing_required(t)).unwrap_or_default(),
        "updated_at": time(Some(d.updated_at)),
    })
}

fn document_view(d: &DocumentRow, comments: &[CommentRow]) -> Value {
    json!({
        "id": d.id,
        "kind": d.kind,
        "version": d.version,
        "title": d.title,
        "author": d.author,
        "status": d.status,
        "replaces": d.replaces_id,
        "created_at": time(Some(d.created_at)),
        "size": d.size,
        "review": d.review_status.0.map(|r| json!({
            "status": r,
            "due_at": time(d.review_due_at),
            "chases": d.chases,
            "reviewed_at": time(d.reviewed_at),
        })),
        "comments": comments.iter().filter(|c| c.document_id == d.id).map(comment_view).collect::<Vec<_>>(),
    })
}

/// A document sent over MESH: where it went, what came back, and the send
/// itself as the outbox holds it (a parked send shows its reason here).
fn delivery_view(d: &DeliveryRow, send: Option<&OutboxRow>) -> Value {
    json!({
        "document_id": d.document_id,
        "route": "mesh",
        "recipient_ods": d.recipient_ods,
        "mailbox": d.mailbox,
        "state": d.state,
        "acknowledgement": d.ack_level,
        "code": d.ack_code,
        "text": d.ack_text,
        "mesh_local_id": d.local_id,
        "itk_message_id": d.itk_message_id,
        "sent_at": time(Some(d.created_at)),
        "updated_at": time(Some(d.updated_at)),
        "send": send.map(|o| json!({
            "status": o.status,
            "attempts": o.attempts,
            "error": o.last_error,
            "result": o.result,
        })),
    })
}

fn comment_view(c: &CommentRow) -> Value {
    json!({
        "id": c.id,
        "source": c.source,
        "author": c.author,
        "text": c.text,
        "commented_at": time(Some(c.commented_at)),
    })
}

/// Drafts, published versions (newest first) with their reviews and comments.
pub async fn documents_view(s: &AppState, case_id: &str) -> Result<Value, ApiError> {
    let store = &s.engine.store;
    let drafts = store.drafts_for_case(case_id).await?;
    let mut docs = store.documents_for_case(case_id).await?;
    docs.reverse();
    let comments = store.comments_for_case(case_id).await?;
    let mut deliveries = Vec::new();
    for d in store.deliveries_for_case(case_id).await? {
        let send = store
            .outbox_by_key(&format!("mesh-send:{}", d.local_id))
            .await?;
        deliveries.push(delivery_view(&d, send.as_ref()));
    }
    Ok(json!({
        "case_id": case_id,
        "drafts": drafts.iter().map(|d| draft_view(s, d)).collect::<Vec<_>>(),
        "documents": docs.iter().map(|d| document_view(d, &comments)).collect::<Vec<_>>(),
        "deliveries": deliveries,
    }))
}
