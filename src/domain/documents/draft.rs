//! A VP or IWSP being gathered over sessions.
//!
//! Each session adds or rewrites sections; the latest text of a section
//! wins and remembers the session it came from. Completion needs every
//! required section. A completed document can be revised: the draft stays,
//! further sections change it, and completing again publishes a new version
//! that replaces the last.

use super::{Problem, Template};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::Date;

/// One section as entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionEntry {
    pub text: String,
    pub session_date: Date,
    pub recorded_by: String,
}

/// A section as it arrives (API body, queue event or questionnaire item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionInput {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub sections: BTreeMap<String, SectionEntry>,
    /// Every session the draft was worked on.
    pub sessions: BTreeSet<Date>,
}

/// Characters allowed in section text besides printable ones.
fn bad_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// Checks one text against a limit: problems name the field and the rule only.
pub fn check_text(field: &str, text: &str, max_chars: usize, out: &mut Vec<Problem>) {
    if text.trim().is_empty() {
        out.push(Problem::new(field, "is empty"));
    }
    let n = text.chars().count();
    if n > max_chars {
        out.push(Problem::new(
            field,
            format!("is {n} characters; the limit is {max_chars}"),
        ));
    }
    if text.chars().any(bad_control) {
        out.push(Problem::new(field, "holds control characters"));
    }
}

impl Draft {
    /// Adds or rewrites `sections` gathered at `session`. All or nothing:
    /// any unknown section, empty or over-long text refuses the whole
    /// input, with every problem listed. Returns whether anything changed.
    pub fn apply(
        &mut self,
        template: &Template,
        sections: &[SectionInput],
        session: Date,
        by: &str,
        max_chars: usize,
    ) -> Result<bool, Vec<Problem>> {
        let mut problems = Vec::new();
        if sections.is_empty() {
            problems.push(Problem::new("sections", "no section given"));
        }
        let mut seen = BTreeSet::new();
        for (n, s) in sections.iter().enumerate() {
            let field = format!("sections[{n}]");
            let Some(def) = template.section(&s.id) else {
                problems.push(Problem::new(
                    field,
                    format!(
                        "unknown section id for the {}; known: {}",
                        template.kind.title().to_lowercase(),
                        template
                            .sections
                            .iter()
                            .map(|d| d.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                continue;
            };
            if !seen.insert(def.id.as_str()) {
                problems.push(Problem::new(field.clone(), "section given twice"));
            }
            let limit = def.max_chars.map_or(max_chars, |m| m.min(max_chars));
            check_text(
                &format!("{field} ({})", def.id),
                &s.text,
                limit,
                &mut problems,
            );
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut changed = false;
        for s in sections {
            let entry = SectionEntry {
                text: s.text.clone(),
                session_date: session,
                recorded_by: by.to_owned(),
            };
            if self.sections.get(&s.id).map(|e| &e.text) != Some(&s.text) {
                self.sections.insert(s.id.clone(), entry);
                changed = true;
            }
        }
        changed |= self.sessions.insert(session);
        Ok(changed)
    }

    /// Required sections with no text yet, in template order.
    pub fn missing_required<'t>(&self, template: &'t Template) -> Vec<&'t str> {
        template
            .sections
            .iter()
            .filter(|d| d.required && !self.sections.contains_key(&d.id))
            .map(|d| d.id.as_str())
            .collect()
    }

    /// Whether completing is allowed; the problems say which sections are missing.
    pub fn check_complete(&self, template: &Template) -> Result<(), Vec<Problem>> {
        let missing = self.missing_required(template);
        if missing.is_empty() {
            return Ok(());
        }
        Err(missing
            .into_iter()
            .map(|id| Problem::new(format!("sections.{id}"), "is required before completing"))
            .collect())
    }

    /// The sections in template order, with their headings.
    pub fn ordered<'a>(
        &'a self,
        template: &'a Template,
    ) -> impl Iterator<Item = (&'a super::SectionDef, &'a SectionEntry)> {
        template
            .sections
            .iter()
            .filter_map(|d| self.sections.get(&d.id).map(|e| (d, e)))
    }
}
