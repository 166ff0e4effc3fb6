//! Turning transport input into commands the engine can apply.
//!
//! `guard` checks the bytes (size, UTF-8, duplicate keys, depth); `fhir_view`
//! reads the few FHIR elements the bridge needs; `classify` decides what a
//! message is (a referral, an appointment, an ES event) or why it is rejected;
//! `bars` names resources of BaRS messages that carry only a `fullUrl`.
//! Everything here is synchronous and free of I/O, so a poison message costs
//! CPU only and never reaches the store.

pub mod bars;
pub mod classify;
pub mod fhir_view;
pub mod guard;
pub mod mesh;
pub mod summary;

pub use classify::classify;
pub use guard::Limits;

use crate::config::Settings;
use classify::IntakeRules;

/// How this deployment reads its input: the limits and the rules for what
/// is an IPS referral, from `[limits]` and `[intake]`.
#[derive(Debug, Clone)]
pub struct Reading {
    pub limits: Limits,
    pub rules: IntakeRules,
}

impl Reading {
    pub fn from_settings(s: &Settings) -> Self {
        Reading {
            limits: Limits {
                max_message_bytes: s.limits.max_message_bytes,
                max_json_depth: s.limits.max_json_depth,
                max_string_bytes: s.limits.max_string_bytes,
                max_bundle_entries: s.limits.max_bundle_entries,
            },
            rules: IntakeRules {
                snomed_codes: s.intake.snomed_codes.clone(),
                performer_references: s.intake.performer_references.clone(),
                bars_service_ids: s.intake.bars_service_ids.clone(),
                sources: crate::domain::source::SourceRules {
                    cmht_ods_codes: s.intake.cmht_ods_codes.clone(),
                    cmht_type_codes: s.intake.cmht_type_codes.clone(),
                },
                documents: classify::DocumentRules {
                    templates: s.documents.templates().cloned(),
                    identifier_system: s.service.identifier_system.clone(),
                },
            },
        }
    }
}
