//! `[team]`: the IPS team the pages and reports describe.

use serde::{Deserialize, Serialize};

/// Where the service works: the fidelity caseload limit differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CareSetting {
    /// Secondary mental health care: at most 20 active clients per specialist.
    Secondary,
    /// Primary care: at most 25.
    Primary,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSettings {
    pub care_setting: CareSetting,
    /// Specialists on the roster before they first sign in, as
    /// `"staff-id=Display name"` (the staff id is their sign-in subject).
    #[serde(default)]
    pub specialists: Vec<String>,
}

impl Default for TeamSettings {
    fn default() -> Self {
        TeamSettings {
            care_setting: CareSetting::Secondary,
            specialists: Vec::new(),
        }
    }
}

impl TeamSettings {
    /// The IPS fidelity caseload limit for the setting.
    pub fn caseload_limit(&self) -> u32 {
        match self.care_setting {
            CareSetting::Secondary => 20,
            CareSetting::Primary => 25,
        }
    }

    /// The configured specialists as `(id, name)`.
    pub fn roster(&self) -> Vec<(String, String)> {
        self.specialists
            .iter()
            .filter_map(|s| {
                let (id, name) = s.split_once('=')?;
                Some((id.trim().to_owned(), name.trim().to_owned()))
            })
            .collect()
    }

    pub(super) fn check(&self, bad: &mut impl FnMut(&str, String)) {
        for (i, s) in self.specialists.iter().enumerate() {
            match s.split_once('=') {
                Some((id, name)) if !id.trim().is_empty() && !name.trim().is_empty() => {}
                _ => bad(
                    "team.specialists",
                    format!("entry {} must be \"staff-id=Display name\"", i + 1),
                ),
            }
        }
    }
}
