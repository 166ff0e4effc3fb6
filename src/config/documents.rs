//! `[documents]`: how the VP, IWSP and notes are written to the record and
//! how their review by the GP or care coordinator is chased.
//!
//! The Questionnaires (the documents' sections) are read while the settings
//! load, like the discharge rules: a broken definition must stop `run` and
//! be listed by `check-config`, not surface at a specialist's first save.

use super::Problem;
use super::checks::{check_url, positive_durations};
use crate::domain::documents::{DocumentKind, ReviewPolicy, Template, Templates};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The Questionnaires shipped in `config/questionnaires/`, built in so the
/// embedded defaults work without the source tree.
const BUILT_IN: [(DocumentKind, &str, &str); 2] = [
    (
        DocumentKind::Vp,
        "vocational-profile.json",
        include_str!("../../config/questionnaires/vocational-profile.json"),
    ),
    (
        DocumentKind::Iwsp,
        "in-work-support-plan.json",
        include_str!("../../config/questionnaires/in-work-support-plan.json"),
    ),
];

/// How a document's content reaches the FHIR server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BinaryMode {
    /// `PUT Binary/{id}` with an id the bridge chose (update-as-create):
    /// repeatable after a crash, so there is never a second Binary. The
    /// DocumentReference's attachment points at it by `url`.
    Put,
    /// The content inline in the DocumentReference's `attachment.data`, for
    /// servers that refuse client-assigned ids.
    Inline,
}

/// A coding as configured: all three parts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CodingSetting {
    pub system: String,
    pub code: String,
    pub display: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DocumentSettings {
    /// A directory holding `vocational-profile.json` and
    /// `in-work-support-plan.json`; empty = the built-in ones.
    pub questionnaires_dir: PathBuf,
    /// The IPS service as the documents name it (author organisation).
    pub service_name: String,
    pub binary: BinaryMode,
    /// Longest section text, and longest note, in characters.
    pub max_section_chars: usize,
    pub max_note_chars: usize,
    pub vp_type: CodingSetting,
    pub iwsp_type: CodingSetting,
    pub note_type: CodingSetting,
    pub plan_category: CodingSetting,
    pub note_category: CodingSetting,
    /// From publication to the review Task's due date.
    #[serde(with = "humantime_serde")]
    pub review_due: Duration,
    /// Between chases of an overdue review.
    #[serde(with = "humantime_serde")]
    pub chase_every: Duration,
    /// Chases of an unanswered review at most (0 = never chase).
    pub max_chases: u32,
    #[serde(skip)]
    templates: Option<Templates>,
}

impl DocumentSettings {
    /// The VP and IWSP templates; present once the settings loaded.
    pub fn templates(&self) -> Option<&Templates> {
        self.templates.as_ref()
    }

    pub fn review_policy(&self) -> ReviewPolicy {
        ReviewPolicy {
            due_after: self.review_due,
            chase_every: self.chase_every,
            max_chases: self.max_chases,
        }
    }

    pub fn type_coding(&self, kind: DocumentKind) -> &CodingSetting {
        match kind {
            DocumentKind::Vp => &self.vp_type,
            DocumentKind::Iwsp => &self.iwsp_type,
            DocumentKind::Note => &self.note_type,
        }
    }

    pub fn category_coding(&self, kind: DocumentKind) -> &CodingSetting {
        if kind.is_reviewed() {
            &self.plan_category
        } else {
            &self.note_category
        }
    }

    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        if self.service_name.trim().is_empty() {
            bad("documents.service_name", "must not be empty".into());
        }
        for (key, n) in [
            ("documents.max_section_chars", self.max_section_chars),
            ("documents.max_note_chars", self.max_note_chars),
        ] {
            if !(1..=1_000_000).contains(&n) {
                bad(key, "must be between 1 and 1000000".into());
            }
        }
        for (key, c) in [
            ("documents.vp_type", &self.vp_type),
            ("documents.iwsp_type", &self.iwsp_type),
            ("documents.note_type", &self.note_type),
            ("documents.plan_category", &self.plan_category),
            ("documents.note_category", &self.note_category),
        ] {
            check_url(
                &format!("{key}.system"),
                &c.system,
                &["http", "https", "urn"],
                bad,
            );
            if c.code.trim().is_empty() || c.display.trim().is_empty() {
                bad(key, "needs a code and a display".into());
            }
        }
        positive_durations(
            &[
                ("documents.review_due", self.review_due),
                ("documents.chase_every", self.chase_every),
            ],
            bad,
        );
    }

    /// Reads and checks the two Questionnaires; every problem names its file.
    pub(super) fn load_templates(&mut self, problems: &mut Vec<Problem>) {
        let key = "documents.questionnaires_dir";
        let mut read = Vec::new();
        for (kind, file, built_in) in BUILT_IN {
            let (name, text) = if self.questionnaires_dir.as_os_str().is_empty() {
                (format!("built-in {file}"), built_in.to_owned())
            } else {
                let path = self.questionnaires_dir.join(file);
                match std::fs::read_to_string(&path) {
                    Ok(t) => (path.display().to_string(), t),
                    Err(e) => {
                        problems.push(Problem {
                            key: key.into(),
                            message: format!("cannot read {}: {e}", path.display()),
                        });
                        continue;
                    }
                }
            };
            let parsed = serde_json::from_str(&text)
                .map_err(|e| vec![format!("not JSON ({e})")])
                .and_then(|v| Template::from_questionnaire(kind, &v).map_err(|e| e.problems));
            match parsed {
                Ok(t) => read.push(t),
                Err(list) => problems.extend(list.into_iter().map(|m| Problem {
                    key: key.into(),
                    message: format!("{name}: {m}"),
                })),
            }
        }
        let mut read = read.into_iter();
        if let (Some(vp), Some(iwsp)) = (read.next(), read.next()) {
            self.templates = Some(Templates { vp, iwsp });
        }
    }
}
