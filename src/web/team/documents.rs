//! Documents: drafts in progress, documents awaiting the GP's or care
//! coordinator's comment (overdue ones marked), and comments received; and
//! a published document opened as the record holds it.

use super::caseload::short_id;
use super::{day, store_failed};
use crate::domain::documents::ReviewStatus;
use crate::engine::from_ms;
use crate::render::document_record::binary_id;
use crate::web::WebApp;
use crate::web::page::{Chrome, Section, html};
use crate::web::{MessagePage, Staff, Web};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

pub struct Line {
    pub id: String,
    pub case_id: String,
    pub short: String,
    pub title: String,
    pub version: i64,
    pub when: String,
    pub due: String,
    pub overdue: bool,
}

pub struct DraftLine {
    pub case_id: String,
    pub short: String,
    pub kind: String,
    pub sections: usize,
    pub updated: String,
}

pub struct CommentLine {
    pub document_id: String,
    pub case_id: String,
    pub short: String,
    pub author: String,
    pub text: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "team/documents.html", config = "src/web/askama.toml")]
struct Page {
    chrome: Chrome,
    drafts: Vec<DraftLine>,
    awaiting: Vec<Line>,
    overdue: usize,
    comments: Vec<CommentLine>,
}

/// `GET /documents`.
pub async fn list(State(s): State<WebApp>, Web(web): Web, staff: Staff) -> Response {
    let rows = match s.engine.store.snapshot_rows().await {
        Ok(r) => r,
        Err(e) => return store_failed(&e),
    };
    let now = crate::engine::ms(s.engine.now());
    let drafts = rows
        .drafts
        .iter()
        .map(|d| DraftLine {
            case_id: d.case_id.clone(),
            short: short_id(&d.case_id),
            kind: d.kind.0.title().to_owned(),
            sections: serde_json::from_str::<crate::domain::documents::Draft>(&d.draft)
                .map(|x| x.sections.len())
                .unwrap_or(0),
            updated: day(from_ms(d.updated_at)),
        })
        .collect();
    let mut awaiting: Vec<Line> = rows
        .documents
        .iter()
        .filter(|d| d.review_status.0 == Some(ReviewStatus::Awaiting))
        .map(|d| Line {
            id: d.id.clone(),
            case_id: d.case_id.clone(),
            short: short_id(&d.case_id),
            title: d.title.clone(),
            version: d.version,
            when: day(from_ms(d.created_at)),
            due: d.review_due_at.map(|t| day(from_ms(t))).unwrap_or_default(),
            overdue: d.review_due_at.is_some_and(|t| t < now),
        })
        .collect();
    awaiting.sort_by_key(|l| !l.overdue);
    let comments = rows
        .comments
        .iter()
        .rev()
        .take(50)
        .map(|c| CommentLine {
            document_id: c.document_id.clone(),
            case_id: c.case_id.clone(),
            short: short_id(&c.case_id),
            author: c.author.clone().unwrap_or_else(|| "Not named".to_owned()),
            text: c.text.clone(),
            when: day(from_ms(c.commented_at)),
        })
        .collect();
    html(&Page {
        chrome: web.chrome(&staff, Section::Documents),
        overdue: awaiting.iter().filter(|l| l.overdue).count(),
        drafts,
        awaiting,
        comments,
    })
}

/// `GET /documents/{id}`: the XHTML the record holds (its Binary), served
/// under a policy that runs nothing and loads nothing, so even a document
/// with markup someone typed into it stays inert in the browser.
pub async fn open(
    State(s): State<WebApp>,
    Web(web): Web,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let not_here = |msg: &str| {
        MessagePage::new(
            web.chrome(&staff, Section::Documents),
            "Document not available",
            &[msg],
        )
        .link("/documents", "Back to documents")
        .respond(StatusCode::NOT_FOUND)
    };
    match s.engine.store.document_exists(&id).await {
        Ok(true) => {}
        Ok(false) => return not_here("There is no document with this address."),
        Err(e) => return store_failed(&e),
    }
    let found = s.fhir.read(&format!("Binary/{}", binary_id(&id))).await;
    let data = match found {
        Ok(Some(v)) => v
            .body
            .get("data")
            .and_then(|d| d.as_str())
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok()),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(document = %id, error = %e, "cannot read a document's Binary from the FHIR server");
            None
        }
    };
    // Sent over MESH alone: the copy the bridge kept.
    let data = match data {
        Some(d) => Some(d),
        None => match s.engine.store.document_content(&id).await {
            Ok(kept) => kept.map(String::into_bytes),
            Err(e) => return store_failed(&e),
        },
    };
    let Some(bytes) = data else {
        return not_here(
            "The record does not hold this document's content yet (it may still be on its way), or it is kept inline in the DocumentReference.",
        );
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xhtml+xml; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
            ),
        ],
        bytes,
    )
        .into_response()
}
