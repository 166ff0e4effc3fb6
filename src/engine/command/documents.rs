//! Document commands: sections of a VP or IWSP gathered in a session, its
//! completion, a contact note, and a comment coming back on a published
//! document. The same inputs arrive on the queue (`ips.document-*.v1`,
//! `ips.note.v1`), through the API, and from FHIR (a `QuestionnaireResponse`,
//! a review `Task` completed, a `Communication` about a document).

use crate::domain::NhsNumber;
use crate::domain::documents::{DocumentKind, Problem, SectionInput};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

pub const DOCUMENT_SECTIONS_EVENT: &str = "ips.document-sections.v1";
pub const DOCUMENT_COMPLETE_EVENT: &str = "ips.document-complete.v1";
pub const NOTE_EVENT: &str = "ips.note.v1";

/// The longest id or name accepted, in characters.
const MAX_ID_CHARS: usize = 256;

/// Which case a document input is for: named by the bridge's id (API, ES
/// events) or found by the patient's NHS number (a QuestionnaireResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseRef {
    Id(String),
    Patient(NhsNumber),
}

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// Sections of a VP or IWSP gathered in one session.
#[derive(Debug, Clone, Deserialize)]
pub struct SectionsBody {
    #[serde(rename = "type", default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub case_id: Option<String>,
    #[serde(default)]
    pub kind: Option<DocumentKind>,
    #[serde(with = "iso_date")]
    pub session_date: Date,
    pub sections: Vec<SectionInput>,
    pub specialist: String,
}

/// Sections to add to a draft, and whether to complete it afterwards.
#[derive(Debug, Clone)]
pub struct SectionsInput {
    pub case: CaseRef,
    pub kind: DocumentKind,
    pub session_date: Date,
    pub sections: Vec<SectionInput>,
    pub specialist: String,
    /// A `QuestionnaireResponse` marked completed completes the draft too.
    pub complete: Option<CompleteInput>,
}

/// Completing a VP or IWSP: publish its next version.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CompleteInput {
    #[serde(rename = "type", default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub case_id: Option<String>,
    #[serde(default)]
    pub kind: Option<DocumentKind>,
    pub specialist: String,
    /// As the specialist's system knows it: the bridge keeps no names.
    #[serde(default)]
    pub patient_name: Option<String>,
    #[serde(default, with = "iso_date::option")]
    pub date_of_birth: Option<Date>,
}

/// A contact note, published as it is posted.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NoteInput {
    #[serde(rename = "type", default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub case_id: Option<String>,
    /// The sender's id for the note: a resend is the same note.
    #[serde(default)]
    pub note_id: Option<String>,
    #[serde(with = "iso_date")]
    pub contact_date: Date,
    pub text: String,
    pub specialist: String,
    #[serde(default)]
    pub patient_name: Option<String>,
    #[serde(default, with = "iso_date::option")]
    pub date_of_birth: Option<Date>,
}

/// Where a comment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumIter)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum CommentSource {
    /// The review Task completed with `output` or a `note`.
    ReviewTask,
    /// A `Communication` about the DocumentReference.
    Communication,
}

/// A comment on a published document.
#[derive(Debug, Clone)]
pub struct CommentInput {
    /// The bridge's document id (the business identifier it gave the
    /// DocumentReference and the review Task).
    pub document_id: String,
    pub source: CommentSource,
    /// The resource it came in and its version: a re-read adds nothing.
    pub comment_key: String,
    pub author: Option<String>,
    pub text: String,
    /// When the comment was made, if the resource says; else when it arrived.
    pub at: Option<OffsetDateTime>,
}

fn check_id(field: &str, v: &str, out: &mut Vec<Problem>) {
    out.extend(
        super::single_line_problems(v, MAX_ID_CHARS)
            .into_iter()
            .map(|m| Problem::new(field, m)),
    );
}

/// Checks the names and ids every document input carries.
pub fn check_people(specialist: &str, patient_name: Option<&str>, out: &mut Vec<Problem>) {
    check_id("specialist", specialist, out);
    if let Some(n) = patient_name {
        check_id("patient_name", n, out);
    }
}

impl CompleteInput {
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        check_people(&self.specialist, self.patient_name.as_deref(), &mut out);
        out
    }
}

impl NoteInput {
    pub fn validate(&self, max_chars: usize) -> Vec<Problem> {
        let mut out = Vec::new();
        check_people(&self.specialist, self.patient_name.as_deref(), &mut out);
        if let Some(id) = &self.note_id {
            check_id("note_id", id, &mut out);
        }
        crate::domain::documents::check_text("text", &self.text, max_chars, &mut out);
        out
    }
}
