//! An outreach episode in the record: the Flag clinicians see wherever they
//! open the record, and the employment specialist's Task.
//!
//! Flag and Task are UK Core draft profiles that add no mandatory elements to
//! base R4 (Flag: status, code, subject; Task: status, intent). No SNOMED
//! concept for "assertive outreach" exists, so the Flag's code carries text
//! plus any coding the deployment configures.

use crate::domain::systems::{NHS_NUMBER_SYSTEM, ODS_SYSTEM};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The Flag's business identifier value for an episode.
pub fn flag_identifier(episode_id: &str) -> String {
    format!("outreach-flag-{episode_id}")
}

/// The Task's business identifier value for an episode.
pub fn task_identifier(episode_id: &str) -> String {
    format!("outreach-task-{episode_id}")
}

/// A logical reference to an episode's Flag (the server's id is not known
/// when the reference is written; the identifier is).
pub fn flag_reference(identifier_system: &str, episode_id: &str) -> Value {
    json!({"type": "Flag", "identifier": {
        "system": identifier_system, "value": flag_identifier(episode_id)}})
}

/// The Flag's category and code, from `[outreach]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagCoding {
    pub category_system: String,
    pub category_code: String,
    pub category_display: String,
    pub code_text: String,
    /// `(system, code, display)`, when the deployment has a local code.
    pub code: Option<(String, String, String)>,
}

impl Default for FlagCoding {
    fn default() -> Self {
        FlagCoding {
            category_system: "http://terminology.hl7.org/CodeSystem/flag-category".into(),
            category_code: "contact".into(),
            category_display: "Contact".into(),
            code_text: "IPS assertive outreach: at risk of discharge for missed appointments"
                .into(),
            code: None,
        }
    }
}

/// Everything the two resources say.
pub struct EpisodeSpec<'a> {
    pub identifier_system: &'a str,
    pub episode_id: &'a str,
    pub nhs_number: &'a str,
    pub service_ods: &'a str,
    /// The discharge rule's name (no patient data).
    pub rule_name: &'a str,
    pub opened_at: &'a str,
    pub due_at: &'a str,
    pub coding: &'a FlagCoding,
}

impl EpisodeSpec<'_> {
    fn patient(&self) -> Value {
        json!({"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": self.nhs_number}})
    }

    fn service(&self) -> Value {
        json!({"type": "Organization", "identifier": {"system": ODS_SYSTEM, "value": self.service_ods}})
    }

    pub fn flag(&self) -> Value {
        let c = self.coding;
        let mut code = json!({"text": c.code_text});
        if let Some((system, value, display)) = &c.code {
            code["coding"] = json!([{"system": system, "code": value, "display": display}]);
        }
        json!({
            "resourceType": "Flag",
            "identifier": [{"system": self.identifier_system, "value": flag_identifier(self.episode_id)}],
            "status": "active",
            "category": [{
                "coding": [{"system": c.category_system, "code": c.category_code, "display": c.category_display}],
                "text": "IPS assertive outreach"
            }],
            "code": code,
            "subject": self.patient(),
            "period": {"start": self.opened_at},
            "author": self.service(),
        })
    }

    pub fn task(&self) -> Value {
        json!({
            "resourceType": "Task",
            "identifier": [{"system": self.identifier_system, "value": task_identifier(self.episode_id)}],
            "status": "requested",
            "intent": "order",
            "priority": "urgent",
            "code": {"text": "Assertive outreach before discharge"},
            "description": format!(
                "Contact the person before the discharge rule \"{}\" closes their care; record every outreach attempt.",
                self.rule_name
            ),
            "focus": flag_reference(self.identifier_system, self.episode_id),
            "for": self.patient(),
            "authoredOn": self.opened_at,
            "requester": self.service(),
            "owner": self.service(),
            "restriction": {"period": {"end": self.due_at}},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_and_task_carry_their_identifiers_and_required_elements() {
        let coding = FlagCoding::default();
        let spec = EpisodeSpec {
            identifier_system: "https://ips.example/Id/resource",
            episode_id: "1",
            nhs_number: "9000000009",
            service_ods: "X1Y2Z",
            rule_name: "2 consecutive DNAs",
            opened_at: "2026-11-30T10:00:00.000Z",
            due_at: "2026-12-02T10:00:00.000Z",
            coding: &coding,
        };
        let flag = spec.flag();
        assert_eq!(flag["status"], "active");
        assert_eq!(flag["category"][0]["coding"][0]["code"], "contact");
        assert_eq!(flag["subject"]["identifier"]["value"], "9000000009");
        assert_eq!(flag["identifier"][0]["value"], "outreach-flag-1");
        let task = spec.task();
        assert_eq!(task["intent"], "order");
        assert_eq!(task["focus"]["identifier"]["value"], "outreach-flag-1");
        assert_eq!(
            task["restriction"]["period"]["end"],
            "2026-12-02T10:00:00.000Z"
        );
        assert!(!task["description"].as_str().unwrap().contains("9000000009"));
        // Both parse as R4 resources.
        let _: fhir_sdk::r4b::resources::Flag = serde_json::from_value(flag).unwrap();
        let _: fhir_sdk::r4b::resources::Task = serde_json::from_value(task).unwrap();
    }
}
