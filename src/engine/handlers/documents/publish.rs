//! Publishing a version: a completed VP or IWSP, or a contact note.

use super::{invalid, load_draft, reject, templates};
use crate::config::BinaryMode;
use crate::domain::documents::{DocumentKind, ReviewStatus};
use crate::engine::command::{CompleteInput, NoteInput, TimerKind};
use crate::engine::events::EventType;
use crate::engine::handlers::decision::referral_ref_of;
use crate::engine::handlers::{
    HandlerError, Outcome, audit, nhs_number_of, open_case, queue, queue_event,
};
use crate::engine::outbox::{Amendment, FhirAmend, FhirCreate, FhirPut, OutboxMessage};
use crate::engine::outcome::{Applied, Signal};
use crate::engine::rejection::RejectCode;
use crate::engine::{Context, ms, rfc3339};
use crate::render::ReferralRef;
use crate::render::document_record::{
    self as record, Content, DocumentSpec, ReviewSpec, document_identifier, review_identifier,
};
use crate::render::documents::{DocumentView, SectionView, render};
use crate::store::{CaseRow, DocumentRow, DocumentStatus, StoredKind, StoredReview, Tx};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime};

/// `POST .../documents/{kind}/complete` or `ips.document-complete.v1`.
pub async fn complete(
    tx: &mut dyn Tx,
    ctx: &Context,
    c: &CompleteInput,
    now: OffsetDateTime,
) -> Outcome {
    let (Some(case_id), Some(kind)) = (c.case_id.as_deref(), c.kind) else {
        return Err(reject(
            RejectCode::InvalidEvent,
            "case_id and kind are required",
        ));
    };
    let case = open_case(tx, case_id).await?;
    complete_case(tx, ctx, &case, kind, c, now).await
}

/// Publishes the next version of `case`'s VP or IWSP from its draft. The
/// same draft completed again publishes nothing.
pub(super) async fn complete_case(
    tx: &mut dyn Tx,
    ctx: &Context,
    case: &CaseRow,
    kind: DocumentKind,
    c: &CompleteInput,
    now: OffsetDateTime,
) -> Outcome {
    let problems = c.validate();
    if !problems.is_empty() {
        return Err(invalid(&problems));
    }
    let Some(template) = templates(&ctx.documents)?.get(kind) else {
        return Err(reject(
            RejectCode::InvalidDocument,
            "a note is published when posted; only a vp or an iwsp is completed",
        ));
    };
    let Some(draft) = load_draft(tx, &case.id, kind).await? else {
        return Err(reject(
            RejectCode::IncompleteDocument,
            format!("there is no {kind} draft for this case; post its sections first"),
        ));
    };
    if let Err(p) = draft.check_complete(template) {
        return Err(reject(
            RejectCode::IncompleteDocument,
            crate::domain::documents::summary(&p),
        ));
    }
    let source_key = format!(
        "complete:{}:{kind}:{}",
        case.id,
        digest(&serde_json::to_string(&draft).unwrap_or_default())
    );
    if tx.document_by_source_key(&source_key).await?.is_some() {
        return Ok(Applied::Unchanged {
            kind: "document-complete",
        });
    }
    let sections: Vec<Section> = draft
        .ordered(template)
        .map(|(def, e)| Section {
            heading: def.heading.clone(),
            text: e.text.clone(),
            on: Some(e.session_date),
        })
        .collect();
    let sessions: Vec<Date> = draft.sessions.iter().copied().collect();
    let p = Publication {
        kind,
        source_key,
        author: &c.specialist,
        patient_name: c.patient_name.as_deref(),
        date_of_birth: c.date_of_birth,
        sections,
        sessions,
    };
    publish(tx, ctx, case, p, now).await
}

/// `POST /api/cases/{id}/notes` or `ips.note.v1`: published as posted.
pub async fn note(tx: &mut dyn Tx, ctx: &Context, n: &NoteInput, now: OffsetDateTime) -> Outcome {
    let Some(case_id) = n.case_id.as_deref() else {
        return Err(reject(RejectCode::InvalidEvent, "case_id is required"));
    };
    let problems = n.validate(ctx.documents.max_note_chars);
    if !problems.is_empty() {
        return Err(invalid(&problems));
    }
    let case = open_case(tx, case_id).await?;
    let source_key = match &n.note_id {
        Some(id) => format!("note:{}:{}", case.id, digest(id)),
        None => format!(
            "note:{}:{}",
            case.id,
            digest(&format!(
                "{}\u{1f}{}\u{1f}{}",
                n.contact_date, n.specialist, n.text
            ))
        ),
    };
    if tx.document_by_source_key(&source_key).await?.is_some() {
        return Ok(Applied::Unchanged { kind: "note" });
    }
    let p = Publication {
        kind: DocumentKind::Note,
        source_key,
        author: &n.specialist,
        patient_name: n.patient_name.as_deref(),
        date_of_birth: n.date_of_birth,
        sections: vec![Section {
            heading: "Contact note".into(),
            text: n.text.clone(),
            on: Some(n.contact_date),
        }],
        sessions: vec![n.contact_date],
    };
    publish(tx, ctx, &case, p, now).await
}

fn digest(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

struct Section {
    heading: String,
    text: String,
    on: Option<Date>,
}

struct Publication<'a> {
    kind: DocumentKind,
    source_key: String,
    author: &'a str,
    patient_name: Option<&'a str>,
    date_of_birth: Option<Date>,
    sections: Vec<Section>,
    sessions: Vec<Date>,
}

/// The referral the document is about (the case's latest) as the sender knows it.
async fn referral_of(
    tx: &mut dyn Tx,
    case_id: &str,
) -> Result<Option<(ReferralRef, Option<String>)>, HandlerError> {
    let latest = tx
        .referrals_for_case(case_id)
        .await?
        .into_iter()
        .max_by_key(|r| r.received_at);
    Ok(latest.map(|r| (referral_ref_of(&r), r.source_ods.clone())))
}

async fn publish(
    tx: &mut dyn Tx,
    ctx: &Context,
    case: &CaseRow,
    p: Publication<'_>,
    now: OffsetDateTime,
) -> Outcome {
    let settings = &ctx.documents;
    let nhs = nhs_number_of(tx, case).await?;
    let previous = match p.kind.is_reviewed() {
        true => tx.document_latest(&case.id, p.kind).await?,
        false => None,
    };
    let version = previous.as_ref().map_or(1, |d| d.version + 1);
    let id = crate::engine::new_id(now);
    let status_line = p
        .kind
        .is_reviewed()
        .then_some("Sent to the GP or care coordinator for review and comment");
    let view = DocumentView {
        title: p.kind.title(),
        patient_name: p.patient_name,
        nhs_number: &nhs,
        date_of_birth: p.date_of_birth,
        author_name: p.author,
        author_role: "Employment specialist",
        service_name: &settings.service_name,
        organisation_ods: Some(&ctx.service_ods),
        created: now,
        session_dates: &p.sessions,
        version: u32::try_from(version).unwrap_or(u32::MAX),
        status_line,
        sections: p
            .sections
            .iter()
            .map(|s| SectionView {
                heading: &s.heading,
                text: &s.text,
                recorded_on: s.on,
            })
            .collect(),
    };
    let rendered = render(&view).map_err(|e| {
        reject(
            RejectCode::InvalidDocument,
            format!("the document could not be rendered: {e}"),
        )
    })?;
    let bytes = rendered.xhtml.as_bytes();
    let (size, sha1) = record::size_and_hash(bytes);
    let created = rfc3339(now);
    let policy = settings.review_policy();
    let due = p.kind.is_reviewed().then(|| policy.due_at(now));
    let row = DocumentRow {
        id: id.clone(),
        case_id: case.id.clone(),
        kind: StoredKind(p.kind),
        version,
        source_key: p.source_key.clone(),
        title: rendered.title.clone(),
        author: p.author.to_owned(),
        status: DocumentStatus::Current,
        replaces_id: previous.as_ref().map(|d| d.id.clone()),
        content_sha1: sha1.clone(),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        created_at: ms(now),
        review_status: StoredReview(p.kind.is_reviewed().then_some(ReviewStatus::Awaiting)),
        review_due_at: due.map(ms),
        chases: 0,
        reviewed_at: None,
        updated_at: ms(now),
    };
    tx.document_insert(&row).await?;
    let referral = referral_of(tx, &case.id).await?;
    let ordering = case.id.as_str();
    let system = ctx.identifier_system.as_str();
    let (route, practice) = super::mesh::route(tx, ctx, case, p.kind).await?;
    let fhir = route.writes_fhir();
    // 1 and 2 go to the FHIR server only when the route writes there.
    if !fhir {
        // No FHIR server holds it: keep what the practice was sent, for the team's pages.
        tx.content_insert(&id, &rendered.xhtml, ms(now)).await?;
    } else {
        // 1. The content, where the server takes a Binary with our id.
        let content = match settings.binary {
            BinaryMode::Put => {
                let binary = OutboxMessage::FhirPut(FhirPut {
                    resource: record::binary(&id, bytes),
                });
                queue(
                    tx,
                    format!("fhir-put:Binary:{}", record::binary_id(&id)),
                    ordering,
                    &binary,
                    now,
                )
                .await?;
                Content::Binary
            }
            BinaryMode::Inline => Content::Inline(bytes),
        };
        // 2. The DocumentReference.
        let type_coding = settings.type_coding(p.kind);
        let category = settings.category_coding(p.kind);
        let spec = DocumentSpec {
            identifier_system: system,
            document_id: &id,
            nhs_number: &nhs,
            title: &rendered.title,
            type_coding: (&type_coding.system, &type_coding.code, &type_coding.display),
            category: (&category.system, &category.code, &category.display),
            author_name: p.author,
            service_name: &settings.service_name,
            service_ods: &ctx.service_ods,
            created: &created,
            size,
            sha1_base64: &sha1,
            replaces: previous.as_ref().map(|d| d.id.as_str()),
            referral: referral.as_ref().map(|(r, _)| r),
        };
        let doc_ref = OutboxMessage::FhirCreate(FhirCreate {
            identifier_system: system.to_owned(),
            identifier_value: document_identifier(&id),
            resource: spec.document_reference(content).into(),
        });
        queue(
            tx,
            format!("fhir-create:DocumentReference:{}", document_identifier(&id)),
            ordering,
            &doc_ref,
            now,
        )
        .await?;
    }
    // 3. The version it replaces is superseded, and its review no longer awaited.
    if let Some(mut prev) = previous.filter(|d| d.status == DocumentStatus::Current) {
        prev.status = DocumentStatus::Superseded;
        if prev.review_status.0 == Some(ReviewStatus::Awaiting) {
            prev.review_status = StoredReview(Some(ReviewStatus::Replaced));
        }
        prev.updated_at = ms(now);
        tx.document_update(&prev).await?;
        tx.timer_cancel(TimerKind::ReviewChase.as_str(), &prev.id)
            .await?;
        // Over MESH alone there is nothing on the FHIR server to mark: the
        // practice files the new version the message carries.
        if fhir {
            let amend = OutboxMessage::FhirAmend(FhirAmend {
                resource_type: "DocumentReference".into(),
                identifier_system: system.to_owned(),
                identifier_value: document_identifier(&prev.id),
                change: Amendment::DocumentSuperseded,
            });
            queue(
                tx,
                format!(
                    "fhir-amend:DocumentReference:{}:superseded",
                    document_identifier(&prev.id)
                ),
                ordering,
                &amend,
                now,
            )
            .await?;
        }
    }
    // 4. The review Task, and the first chase should nobody answer. Over
    // MESH alone there is no Task to chase on (GP Connect has no channel for
    // the GP's comment): the review is tracked here and on the team's pages.
    if let Some(due) = due.filter(|_| fhir) {
        let due_text = rfc3339(due);
        let review = ReviewSpec {
            identifier_system: system,
            document_id: &id,
            nhs_number: &nhs,
            title: p.kind.title(),
            service_name: &settings.service_name,
            service_ods: &ctx.service_ods,
            owner_ods: referral.as_ref().and_then(|(_, ods)| ods.as_deref()),
            authored: &created,
            due: &due_text,
        };
        let task = OutboxMessage::FhirCreate(FhirCreate {
            identifier_system: system.to_owned(),
            identifier_value: review_identifier(&id),
            resource: review.task().into(),
        });
        queue(
            tx,
            format!("fhir-create:Task:{}", review_identifier(&id)),
            ordering,
            &task,
            now,
        )
        .await?;
        if let Some(at) = policy.next_chase(due, 0) {
            tx.timer_set(TimerKind::ReviewChase.as_str(), &id, ms(at), "{}")
                .await?;
        }
    }
    // 5. The GP practice's copy, over MESH.
    let mut signals = vec![Signal::DocumentPublished {
        kind: p.kind.as_str(),
    }];
    if route.sends_mesh() {
        let outgoing = crate::render::send_document::Document {
            document_id: &id,
            replaces: row.replaces_id.as_deref(),
            kind: p.kind,
            title: &rendered.title,
            xhtml: &rendered.xhtml,
            nhs_number: &nhs,
            patient_name: p.patient_name,
            date_of_birth: p.date_of_birth,
            author_name: p.author,
        };
        signals
            .extend(super::mesh::send(tx, ctx, case, practice.as_deref(), &outgoing, now).await?);
    }
    // 6. The team hears of it.
    queue_event(
        tx,
        EventType::DocumentPublished,
        &id,
        ordering,
        json!({
            "document_id": id,
            "case_id": case.id,
            "kind": p.kind,
            "version": version,
            "replaces": row.replaces_id,
            "review_due_at": due.map(rfc3339),
            "route": route,
        }),
        now,
    )
    .await?;
    audit(
        tx,
        ctx,
        EventType::DocumentPublished.as_str(),
        "case",
        &case.id,
        Some(format!("document={id} kind={} version={version}", p.kind)),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: "document-publish",
        signals,
    })
}
