//! The `Flag` that tells everyone who opens the record that a case is at
//! risk of discharge for missed appointments (DESIGN §4.2).
//!
//! One Flag per outreach episode: its business identifier names the
//! episode, so a resent create makes it once and the later update (inactive
//! when the risk is resolved) finds it.

use crate::domain::systems::{NHS_NUMBER_SYSTEM, ODS_SYSTEM};
use serde_json::{Value, json};

/// Prefix of the Flag's identifier value: `outreach-flag-{episode}`.
pub const FLAG_ID_PREFIX: &str = "outreach-flag-";

/// A coding from config (Flag category, Flag code). The category defaults
/// to `contact` of `http://terminology.hl7.org/CodeSystem/flag-category`;
/// no SNOMED concept for "assertive outreach" exists, so the code is text
/// plus whatever coding a site configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagCoding {
    pub system: String,
    pub code: String,
    pub display: String,
}

impl FlagCoding {
    fn to_json(&self) -> Value {
        json!({"system": self.system, "code": self.code, "display": self.display})
    }
}

/// What goes on an outreach Flag. Instants are RFC 3339 strings, as the
/// engine formats them.
#[derive(Debug, Clone)]
pub struct FlagSpec<'a> {
    /// `service.identifier_system`.
    pub identifier_system: &'a str,
    pub episode_id: &'a str,
    pub category: &'a FlagCoding,
    pub code_text: &'a str,
    pub code: Option<&'a FlagCoding>,
    /// Flag.subject is 1..1: the engine writes a Flag only for a case with one.
    pub nhs_number: &'a str,
    pub started_at: &'a str,
    /// `Some`: the Flag is written inactive, ended then.
    pub ended_at: Option<&'a str>,
    /// ODS code of the IPS service: the author.
    pub service_ods: &'a str,
}

impl FlagSpec<'_> {
    pub fn identifier_value(&self) -> String {
        flag_identifier_value(self.episode_id)
    }

    /// A logical reference to this Flag, for a Task's `focus` or a
    /// Communication's `about`.
    pub fn reference(&self) -> Value {
        flag_reference(self.identifier_system, self.episode_id)
    }
}

pub fn flag_identifier_value(episode_id: &str) -> String {
    format!("{FLAG_ID_PREFIX}{episode_id}")
}

/// `{"type": "Flag", "identifier": {...}}`: resolves whatever id the server
/// gave the Flag, and can be written before the Flag's create is delivered.
pub fn flag_reference(identifier_system: &str, episode_id: &str) -> Value {
    json!({"type": "Flag", "identifier": {
        "system": identifier_system, "value": flag_identifier_value(episode_id)}})
}

/// The Flag as `spec` describes it: active, or inactive with `period.end`
/// when `spec.ended_at` is given.
pub fn flag(spec: &FlagSpec<'_>) -> Value {
    let mut code = json!({"text": spec.code_text});
    if let Some(c) = spec.code {
        code["coding"] = json!([c.to_json()]);
    }
    let mut period = json!({"start": spec.started_at});
    if let Some(end) = spec.ended_at {
        period["end"] = json!(end);
    }
    json!({
        "resourceType": "Flag",
        "identifier": [{"system": spec.identifier_system, "value": spec.identifier_value()}],
        "status": if spec.ended_at.is_some() { "inactive" } else { "active" },
        "category": [{"coding": [spec.category.to_json()], "text": spec.category.display}],
        "code": code,
        "subject": {"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": spec.nhs_number}},
        "period": period,
        "author": {"type": "Organization", "identifier": {"system": ODS_SYSTEM, "value": spec.service_ods}}
    })
}

/// The active Flag (ignores `spec.ended_at`).
pub fn flag_active(spec: &FlagSpec<'_>) -> Value {
    flag(&FlagSpec {
        ended_at: None,
        ..spec.clone()
    })
}

/// The Flag as the server returned it, made inactive with `period.end`:
/// everything else (id, meta, elements others added) is kept, because the
/// result is sent as an `If-Match` update of that version. A Flag the
/// server holds as `entered-in-error` stays so: it never was a real flag.
/// One already inactive with an end keeps its end (a retried update must
/// not move the date the risk was resolved).
pub fn flag_inactive(current: &Value, ended_at: &str) -> Value {
    let mut f = current.clone();
    let already_ended = f["status"] == "inactive" && f["period"].get("end").is_some();
    if f["status"] == "entered-in-error" || already_ended {
        return f;
    }
    f["status"] = json!("inactive");
    match f.get_mut("period").and_then(Value::as_object_mut) {
        Some(p) => {
            p.insert("end".into(), json!(ended_at));
        }
        None => f["period"] = json!({"end": ended_at}),
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn category() -> FlagCoding {
        FlagCoding {
            system: "http://terminology.hl7.org/CodeSystem/flag-category".into(),
            code: "contact".into(),
            display: "Subject Contact".into(),
        }
    }

    pub(crate) fn spec(cat: &FlagCoding) -> FlagSpec<'_> {
        FlagSpec {
            identifier_system: "https://ips.example/Id/resource",
            episode_id: "ep-1",
            category: cat,
            code_text: "Assertive outreach",
            code: None,
            nhs_number: "9000000009",
            started_at: "2026-11-20T09:00:00Z",
            ended_at: None,
            service_ods: "RX4",
        }
    }

    #[test]
    fn active_flag_has_the_required_r4_elements() {
        let cat = category();
        let f = flag_active(&spec(&cat));
        assert_eq!(f["status"], "active");
        assert_eq!(f["code"]["text"], "Assertive outreach");
        assert_eq!(f["subject"]["identifier"]["system"], NHS_NUMBER_SYSTEM);
        assert_eq!(f["author"]["identifier"]["value"], "RX4");
        assert_eq!(f["category"][0]["coding"][0]["code"], "contact");
        assert!(f["period"].get("end").is_none());
        assert_eq!(f["identifier"][0]["value"], "outreach-flag-ep-1");
        assert_eq!(f, flag_active(&spec(&cat)), "stable for the same inputs");
        let parsed: fhir_sdk::r4b::resources::Resource = serde_json::from_value(f).unwrap();
        assert!(matches!(
            parsed,
            fhir_sdk::r4b::resources::Resource::Flag(_)
        ));
    }

    #[test]
    fn code_coding_and_inactive_from_the_spec() {
        let cat = category();
        let code = FlagCoding {
            system: "https://site.example/codes".into(),
            code: "ao".into(),
            display: "Assertive outreach".into(),
        };
        let f = flag(&FlagSpec {
            code: Some(&code),
            ended_at: Some("2026-11-25T10:00:00Z"),
            ..spec(&cat)
        });
        assert_eq!(f["status"], "inactive");
        assert_eq!(f["period"]["end"], "2026-11-25T10:00:00Z");
        assert_eq!(f["code"]["coding"][0]["code"], "ao");
        serde_json::from_value::<fhir_sdk::r4b::resources::Resource>(f).unwrap();
    }

    #[test]
    fn inactive_update_keeps_what_the_server_holds() {
        let cat = category();
        let mut current = flag_active(&spec(&cat));
        current["id"] = json!("srv-7");
        current["meta"] = json!({"versionId": "3"});
        current["extension"] = json!([{"url": "https://other/ext", "valueString": "x"}]);
        let f = flag_inactive(&current, "2026-11-25T10:00:00Z");
        assert_eq!(f["status"], "inactive");
        assert_eq!(f["period"]["start"], "2026-11-20T09:00:00Z");
        assert_eq!(f["period"]["end"], "2026-11-25T10:00:00Z");
        let mut expected = current.clone();
        expected["status"] = json!("inactive");
        expected["period"]["end"] = json!("2026-11-25T10:00:00Z");
        assert_eq!(f, expected, "nothing else changes");

        assert_eq!(
            flag_inactive(&f, "2026-12-01T00:00:00Z"),
            f,
            "retry keeps the end"
        );
        current["status"] = json!("entered-in-error");
        assert_eq!(flag_inactive(&current, "2026-11-25T10:00:00Z"), current);
    }
}
