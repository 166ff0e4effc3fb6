//! `[outreach]`: the discharge rules file and how outreach flags and tasks
//! are coded.
//!
//! The rules file is read and validated while the settings load, not when the
//! engine first needs it: a mistake in a team's rule must stop `run` before
//! any case is assessed against a half-read rule set, and `check-config` must
//! list it beside every other problem.

use super::Problem;
use super::checks::{check_url, positive_durations};
use crate::domain::outreach::RuleSet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OutreachSettings {
    /// The discharge rules (`[[rule]]` tables). A relative path is resolved
    /// against the working directory, like every other path in the
    /// configuration (`store.patient_key_file`, `clock.file`, SQLite URLs).
    pub rules_file: PathBuf,
    /// `Flag.category` coding.
    pub flag_category_system: String,
    pub flag_category_code: String,
    pub flag_category_display: String,
    /// `Flag.code.text`: always present, since no SNOMED concept says
    /// "assertive outreach" (DESIGN §4.2).
    pub flag_code_text: String,
    /// An optional `Flag.code.coding`, for a local or future code: all three or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_code_system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_code_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_code_display: Option<String>,
    /// How long before a rule fires the specialist's Task is due.
    #[serde(with = "humantime_serde")]
    pub task_lead: Duration,
    /// The rules read from `rules_file` while loading; never in the file itself.
    #[serde(skip)]
    rules: RuleSet,
}

impl OutreachSettings {
    /// The validated discharge rules (empty only when the file holds none).
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// `(system, code, display)` of the configured `Flag.code.coding`, if any.
    pub fn flag_code_coding(&self) -> Option<(&str, &str, &str)> {
        match (
            set(&self.flag_code_system),
            set(&self.flag_code_code),
            set(&self.flag_code_display),
        ) {
            (Some(s), Some(c), Some(d)) => Some((s, c, d)),
            _ => None,
        }
    }

    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        check_url(
            "outreach.flag_category_system",
            &self.flag_category_system,
            &["http", "https", "urn"],
            bad,
        );
        for (key, v) in [
            ("outreach.flag_category_code", &self.flag_category_code),
            (
                "outreach.flag_category_display",
                &self.flag_category_display,
            ),
            ("outreach.flag_code_text", &self.flag_code_text),
        ] {
            if v.trim().is_empty() {
                bad(key, "must not be empty".into());
            }
        }
        let given = [
            set(&self.flag_code_system),
            set(&self.flag_code_code),
            set(&self.flag_code_display),
        ];
        let n = given.iter().filter(|g| g.is_some()).count();
        if n != 0 && n != 3 {
            bad(
                "outreach.flag_code_system",
                "give flag_code_system, flag_code_code and flag_code_display together, or none of them"
                    .into(),
            );
        }
        if let Some(system) = given[0] {
            check_url(
                "outreach.flag_code_system",
                system,
                &["http", "https", "urn"],
                bad,
            );
        }
        positive_durations(&[("outreach.task_lead", self.task_lead)], bad);
    }

    /// Reads and validates `rules_file`; each rule problem becomes a
    /// [`Problem`] on `outreach.rules_file` naming the rule.
    pub(super) fn load_rules(&mut self, problems: &mut Vec<Problem>) {
        let key = "outreach.rules_file";
        let text = match std::fs::read_to_string(&self.rules_file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    key: key.into(),
                    message: format!(
                        "cannot read {}: {e}{}",
                        self.rules_file.display(),
                        relative_hint(&self.rules_file)
                    ),
                });
                return;
            }
        };
        match RuleSet::from_toml(&text) {
            Ok(rules) => self.rules = rules,
            Err(e) => problems.extend(e.lines().map(|message| Problem {
                key: key.into(),
                message,
            })),
        }
    }
}

/// Says where a relative path was looked for, since the working directory
/// of a service is rarely the one the operator thinks of.
fn relative_hint(path: &Path) -> String {
    if path.is_absolute() {
        return String::new();
    }
    match std::env::current_dir() {
        Ok(dir) => format!(
            " (relative paths are resolved against the working directory, {}; give an absolute path)",
            dir.display()
        ),
        Err(_) => " (relative paths are resolved against the working directory)".into(),
    }
}

/// An optional key counts as given when it is present and not blank.
fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}
