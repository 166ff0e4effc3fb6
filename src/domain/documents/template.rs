//! A document's sections, read from the FHIR `Questionnaire` the bridge
//! ships in `config/questionnaires/`.
//!
//! Why from the Questionnaire: the same definition serves the specialist's
//! forms (a `QuestionnaireResponse` names its items by `linkId`), the API's
//! section ids and the rendered document's headings, so they cannot drift.

use super::DocumentKind;
use serde_json::Value;

/// One section: its id (the item's `linkId`), plain-language heading (the
/// item's `text`), whether a document cannot be completed without it, and
/// the longest text it takes (the item's `maxLength`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionDef {
    pub id: String,
    pub heading: String,
    pub required: bool,
    pub max_chars: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub kind: DocumentKind,
    /// The Questionnaire's canonical `url`.
    pub url: String,
    pub version: Option<String>,
    pub sections: Vec<SectionDef>,
}

/// Everything wrong with one Questionnaire file, each problem named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct TemplateError {
    pub problems: Vec<String>,
}

fn text_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

impl Template {
    /// Reads a Questionnaire: every top-level item of type `text` or `string`
    /// is a section. Lists every problem found, not just the first.
    pub fn from_questionnaire(kind: DocumentKind, q: &Value) -> Result<Template, TemplateError> {
        let mut problems = Vec::new();
        if q.get("resourceType").and_then(Value::as_str) != Some("Questionnaire") {
            problems.push("resourceType must be Questionnaire".to_owned());
        }
        let url = text_at(q, "url").unwrap_or_default().to_owned();
        if url.is_empty() {
            problems.push("url is missing".to_owned());
        }
        let mut sections: Vec<SectionDef> = Vec::new();
        let items = q.get("item").and_then(Value::as_array);
        if items.is_none_or(|i| i.is_empty()) {
            problems.push("item is missing or empty: a document needs sections".to_owned());
        }
        for (n, item) in items.into_iter().flatten().enumerate() {
            let Some(id) = text_at(item, "linkId") else {
                problems.push(format!("item[{n}] has no linkId"));
                continue;
            };
            match item.get("type").and_then(Value::as_str) {
                Some("text" | "string") => {}
                other => problems.push(format!(
                    "item {id:?} has type {}: sections must be text or string",
                    other.unwrap_or("(none)")
                )),
            }
            let Some(heading) = text_at(item, "text") else {
                problems.push(format!("item {id:?} has no text (its heading)"));
                continue;
            };
            if sections.iter().any(|s| s.id == id) {
                problems.push(format!("item {id:?} appears twice"));
                continue;
            }
            let max_chars = match item.get("maxLength") {
                None => None,
                Some(v) => match v.as_u64().filter(|n| *n > 0) {
                    Some(n) => usize::try_from(n).ok(),
                    None => {
                        problems.push(format!("item {id:?} maxLength must be a positive integer"));
                        None
                    }
                },
            };
            sections.push(SectionDef {
                id: id.to_owned(),
                heading: heading.to_owned(),
                required: item.get("required").and_then(Value::as_bool) == Some(true),
                max_chars,
            });
        }
        if !problems.is_empty() {
            return Err(TemplateError { problems });
        }
        Ok(Template {
            kind,
            url,
            version: text_at(q, "version").map(str::to_owned),
            sections,
        })
    }

    pub fn section(&self, id: &str) -> Option<&SectionDef> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// Whether a `QuestionnaireResponse.questionnaire` canonical names this
    /// Questionnaire (`url`, or `url|version` with this version).
    pub fn answers_to(&self, canonical: &str) -> bool {
        match canonical.split_once('|') {
            None => canonical == self.url,
            Some((url, version)) => url == self.url && self.version.as_deref() == Some(version),
        }
    }
}

/// The templates of the documents that have sections (VP and IWSP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    pub vp: Template,
    pub iwsp: Template,
}

impl Templates {
    pub fn get(&self, kind: DocumentKind) -> Option<&Template> {
        match kind {
            DocumentKind::Vp => Some(&self.vp),
            DocumentKind::Iwsp => Some(&self.iwsp),
            DocumentKind::Note => None,
        }
    }

    /// The template a `QuestionnaireResponse` answers, if the bridge knows it.
    pub fn for_canonical(&self, canonical: &str) -> Option<&Template> {
        [&self.vp, &self.iwsp]
            .into_iter()
            .find(|t| t.answers_to(canonical))
    }
}
