//! IPS documents for the single client chart: the vocational profile (VP),
//! the in-work support plan (IWSP) and the specialist's contact notes.
//!
//! A VP is gathered over two or three sessions, section by section; the
//! specialist then marks it complete and the bridge publishes a version of it
//! to the shared record and asks the GP or care coordinator to comment. This
//! module holds the rules about that, with no I/O: which sections a document
//! has (read from the shipped FHIR `Questionnaire`s, [`Template`]), how a
//! draft grows across sessions and when it may be completed ([`Draft`]), and
//! when an unanswered review is chased ([`ReviewPolicy`]).

pub mod delivery;
mod draft;
mod review;
mod template;
#[cfg(test)]
mod tests;

pub use draft::{Draft, SectionEntry, SectionInput, check_text};
pub use review::{ReviewPolicy, ReviewStatus};
pub use template::{SectionDef, Template, TemplateError, Templates};

use serde::{Deserialize, Serialize};

/// What kind of document: the two plans a GP is asked to comment on, and notes.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
    strum::Display,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum DocumentKind {
    /// Vocational profile: the person's work goals, history and support wanted.
    Vp,
    /// In-work support plan: what keeps the person well in the job they got.
    Iwsp,
    /// A contact note, one per contact.
    Note,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The title a reader sees.
    pub fn title(self) -> &'static str {
        match self {
            DocumentKind::Vp => "Vocational profile",
            DocumentKind::Iwsp => "In-work support plan",
            DocumentKind::Note => "Employment specialist contact note",
        }
    }

    /// Whether a published version goes to the GP or care coordinator for comment.
    pub fn is_reviewed(self) -> bool {
        matches!(self, DocumentKind::Vp | DocumentKind::Iwsp)
    }

    /// Whether it is assembled from sections over sessions (a plan), or
    /// published as it is posted (a note).
    pub fn has_sections(self) -> bool {
        self.is_reviewed()
    }
}

/// One problem with an input: the field (or section id) and what is wrong.
/// Messages name the rule broken and never repeat the value, so a list can
/// go into an API error, a dead-letter reason or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `field: message; field: message`.
pub fn summary(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}
