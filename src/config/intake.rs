//! `[intake]` and `[limits]`: which referrals are IPS referrals, and how big
//! an inbound message may be.

use super::checks::positive;
use crate::domain::source::is_ods_code;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct IntakeSettings {
    pub snomed_codes: Vec<String>,
    pub performer_references: Vec<String>,
    pub bars_service_ids: Vec<String>,
    pub cmht_ods_codes: Vec<String>,
    pub cmht_type_codes: Vec<String>,
    pub decline_reasons: Vec<String>,
    pub waiting_list_max: u32,
    pub waiting_list_weeks: u32,
}

impl IntakeSettings {
    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        for c in &self.snomed_codes {
            if c.len() < 6 || c.len() > 18 || !c.bytes().all(|b| b.is_ascii_digit()) {
                bad(
                    "intake.snomed_codes",
                    format!("expected SNOMED CT concept ids (6-18 digits), got {c:?}"),
                );
            }
        }
        if self.snomed_codes.is_empty()
            && self.performer_references.is_empty()
            && self.bars_service_ids.is_empty()
        {
            bad("intake", "at least one of snomed_codes, performer_references or bars_service_ids is needed to recognise IPS referrals".into());
        }
        for c in &self.cmht_ods_codes {
            if !is_ods_code(c) {
                bad(
                    "intake.cmht_ods_codes",
                    format!("expected ODS codes (3-6 letters or digits), got {c:?}"),
                );
            }
        }
        if self.decline_reasons.is_empty() {
            bad(
                "intake.decline_reasons",
                "at least one decline reason is needed".into(),
            );
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LimitsSettings {
    pub max_message_bytes: usize,
    pub max_json_depth: usize,
    pub max_string_bytes: usize,
    pub max_bundle_entries: usize,
}

impl LimitsSettings {
    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        positive(
            "limits.max_message_bytes",
            self.max_message_bytes as u64,
            bad,
        );
        positive("limits.max_json_depth", self.max_json_depth as u64, bad);
        positive("limits.max_string_bytes", self.max_string_bytes as u64, bad);
        positive(
            "limits.max_bundle_entries",
            self.max_bundle_entries as u64,
            bad,
        );
        if self.max_json_depth > 120 {
            bad(
                "limits.max_json_depth",
                "must be at most 120 (serde_json's recursion limit is 128)".into(),
            );
        }
    }
}
