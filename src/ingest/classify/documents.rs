//! Document inputs from FHIR: a `QuestionnaireResponse` for the VP or IWSP
//! Questionnaire (sections, and completion when it is completed), the review
//! `Task` the bridge wrote coming back completed, and a `Communication`
//! about a document the bridge published. Reasons name elements and
//! questionnaire URLs, never answers.

use super::elements::{nhs_field, parse_instant};
use super::*;
use crate::domain::documents::SectionInput;
use crate::engine::command::{CaseRef, CommentInput, CommentSource, CompleteInput, SectionsInput};
use crate::render::document_record::{
    REMINDER_PREFIX, document_id_from_identifier, document_id_from_review_identifier,
};

/// What document inputs need to be recognised.
#[derive(Debug, Clone, Default)]
pub struct DocumentRules {
    /// The VP and IWSP templates (`None`: document inputs are refused).
    pub templates: Option<crate::domain::documents::Templates>,
    /// The system of the business identifiers the bridge writes.
    pub identifier_system: String,
}

/// A reference's `display`, else its `identifier.value` (who wrote something).
fn display_or_identifier(reference: Option<&Value>) -> Option<String> {
    let r = reference?;
    str_at(r, "display")
        .or_else(|| r.get("identifier").and_then(|i| str_at(i, "value")))
        .map(str::to_owned)
}

fn missing(element: &str) -> Rejection {
    Rejection::new(
        RejectCode::MissingRequiredElement,
        format!("{element} is required"),
    )
}

/// `Type/id/_history/version`, else a hash of the content: a re-read of the
/// same version is the same comment.
fn version_key(res: &Value) -> String {
    let rt = str_at(res, "resourceType").unwrap_or("Resource");
    match (
        str_at(res, "id"),
        res.get("meta").and_then(|m| str_at(m, "versionId")),
    ) {
        (Some(id), Some(v)) => format!("{rt}/{id}/_history/{v}"),
        _ => format!("{rt}#{}", super::elements::content_hash(&[res])),
    }
}

pub(super) fn questionnaire_response(
    qr: Value,
    resolver: &Resolver,
    rules: &DocumentRules,
) -> Result<Command, Rejection> {
    let status = str_at(&qr, "status").ok_or_else(|| missing("QuestionnaireResponse.status"))?;
    let complete = match status {
        "completed" | "amended" => true,
        "in-progress" => false,
        other => {
            return Ok(Command::Ignore(format!(
                "QuestionnaireResponse with status {other} is not acted on"
            )));
        }
    };
    let canonical = str_at(&qr, "questionnaire")
        .ok_or_else(|| missing("QuestionnaireResponse.questionnaire"))?;
    let Some(templates) = &rules.templates else {
        return Err(Rejection::new(
            RejectCode::UnknownQuestionnaire,
            "no document questionnaires are configured",
        ));
    };
    let Some(template) = templates.for_canonical(canonical) else {
        return Err(Rejection::new(
            RejectCode::UnknownQuestionnaire,
            format!(
                "QuestionnaireResponse.questionnaire is not a questionnaire the bridge knows; known: {}, {}",
                templates.vp.url, templates.iwsp.url
            ),
        ));
    };
    let subject = qr.get("subject");
    let patient = subject.and_then(|r| resolver.resolve(&qr, r));
    let nhs = match nhs_field(patient, subject) {
        crate::domain::referral::NhsField::Valid(n) => n,
        crate::domain::referral::NhsField::Invalid(e) => {
            return Err(Rejection::new(
                RejectCode::InvalidElement,
                format!("QuestionnaireResponse.subject NHS number is invalid ({e})"),
            ));
        }
        crate::domain::referral::NhsField::Missing => {
            return Err(missing(
                "QuestionnaireResponse.subject with an NHS number identifier",
            ));
        }
    };
    let authored = parse_instant(str_at(&qr, "authored"))
        .ok_or_else(|| missing("QuestionnaireResponse.authored (the session date)"))?;
    let author = display_or_identifier(qr.get("author"))
        .ok_or_else(|| missing("QuestionnaireResponse.author (display or identifier)"))?;
    let mut sections = Vec::new();
    for (n, item) in qr
        .get("item")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let id = str_at(item, "linkId")
            .ok_or_else(|| missing(&format!("QuestionnaireResponse.item[{n}].linkId")))?;
        let text: Vec<&str> = item
            .get("answer")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| str_at(a, "valueString"))
            .collect();
        if !text.is_empty() {
            sections.push(SectionInput {
                id: id.to_owned(),
                text: text.join("\n\n"),
            });
        }
    }
    let patient_name = subject
        .and_then(|s| str_at(s, "display"))
        .map(str::to_owned);
    Ok(Command::DocumentSections(Box::new(SectionsInput {
        case: CaseRef::Patient(nhs),
        kind: template.kind,
        session_date: authored.date(),
        sections,
        specialist: author.clone(),
        complete: complete.then_some(CompleteInput {
            event_type: None,
            case_id: None,
            kind: Some(template.kind),
            specialist: author,
            patient_name,
            date_of_birth: None,
        }),
    })))
}

/// The document id a resource's business identifier in our system names.
fn our_document(identifiers: &[(String, String)], rules: &DocumentRules) -> Option<String> {
    identifiers
        .iter()
        .filter(|(s, _)| *s == rules.identifier_system)
        .find_map(|(_, v)| document_id_from_identifier(v).map(str::to_owned))
}

pub(super) fn task(task: Value, rules: &DocumentRules) -> Result<Command, Rejection> {
    let Some(document_id) = identifiers(&task)
        .into_iter()
        .filter(|(s, _)| *s == rules.identifier_system)
        .find_map(|(_, v)| document_id_from_review_identifier(&v).map(str::to_owned))
    else {
        return Ok(Command::Ignore(
            "a Task that is not a document review the bridge asked for".into(),
        ));
    };
    if str_at(&task, "status") != Some("completed") {
        return Ok(Command::Ignore("a review Task not completed yet".into()));
    }
    let mut parts: Vec<String> = task
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| str_at(o, "valueString").or_else(|| str_at(o, "valueMarkdown")))
        .map(str::to_owned)
        .collect();
    // The bridge's own reminders are notes too; they are not the comment.
    parts.extend(
        task.get("note")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| str_at(n, "text"))
            .filter(|t| !t.starts_with(REMINDER_PREFIX))
            .map(str::to_owned),
    );
    let text = if parts.is_empty() {
        "Review completed without a comment.".to_owned()
    } else {
        parts.join("\n\n")
    };
    let author = display_or_identifier(task.get("owner"));
    let at = parse_instant(str_at(&task, "lastModified"))
        .or_else(|| parse_instant(task.get("executionPeriod").and_then(|p| str_at(p, "end"))));
    Ok(Command::DocumentComment(Box::new(CommentInput {
        document_id,
        source: CommentSource::ReviewTask,
        comment_key: version_key(&task),
        author,
        text,
        at,
    })))
}

pub(super) fn communication(c: Value, rules: &DocumentRules) -> Result<Command, Rejection> {
    let about: Vec<(String, String)> = c
        .get("about")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let i = r.get("identifier")?;
            Some((
                str_at(i, "system")?.to_owned(),
                str_at(i, "value")?.to_owned(),
            ))
        })
        .collect();
    let Some(document_id) = our_document(&about, rules) else {
        return Ok(Command::Ignore(
            "a Communication not about a document the bridge published".into(),
        ));
    };
    let text: Vec<&str> = c
        .get("payload")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| str_at(p, "contentString"))
        .collect();
    if text.is_empty() {
        return Err(missing("Communication.payload.contentString (the comment)"));
    }
    let author = display_or_identifier(c.get("sender"));
    Ok(Command::DocumentComment(Box::new(CommentInput {
        document_id,
        source: CommentSource::Communication,
        comment_key: version_key(&c),
        author,
        text: text.join("\n\n"),
        at: parse_instant(str_at(&c, "sent")),
    })))
}
