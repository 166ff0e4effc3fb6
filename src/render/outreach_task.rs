//! The `Task` asking the employment specialist to reach someone before a
//! discharge rule would close their case (DESIGN §4.2).
//!
//! It names the rule, never the patient's circumstances: the Task is read in
//! work lists where free text about the person does not belong.

use super::outreach_flag::flag_reference;
use crate::domain::systems::{NHS_NUMBER_SYSTEM, ODS_SYSTEM};
use serde_json::{Value, json};

/// Prefix of the Task's identifier value: `outreach-task-{episode}`.
pub const TASK_ID_PREFIX: &str = "outreach-task-";

pub const OUTREACH_TASK_CODE_TEXT: &str = "Assertive outreach before discharge";

/// What goes on an outreach Task. Instants are RFC 3339 strings.
#[derive(Debug, Clone)]
pub struct OutreachTaskSpec<'a> {
    /// `service.identifier_system` (also the Flag's, which the Task focuses on).
    pub identifier_system: &'a str,
    pub episode_id: &'a str,
    /// The discharge rule's configured name.
    pub rule_name: &'a str,
    pub nhs_number: Option<&'a str>,
    /// When the rule would fire: the outreach is due before then.
    pub due_before: &'a str,
    pub authored_on: &'a str,
    pub service_ods: &'a str,
    /// A named specialist (`system`, `value`), else the service owns it.
    pub owner_practitioner: Option<(&'a str, &'a str)>,
}

impl OutreachTaskSpec<'_> {
    pub fn identifier_value(&self) -> String {
        format!("{TASK_ID_PREFIX}{}", self.episode_id)
    }
}

pub fn outreach_task(spec: &OutreachTaskSpec<'_>) -> Value {
    let service = json!({"type": "Organization", "identifier": {"system": ODS_SYSTEM, "value": spec.service_ods}});
    let owner = match spec.owner_practitioner {
        Some((system, value)) => {
            json!({"type": "Practitioner", "identifier": {"system": system, "value": value}})
        }
        None => service.clone(),
    };
    let mut task = json!({
        "resourceType": "Task",
        "identifier": [{"system": spec.identifier_system, "value": spec.identifier_value()}],
        "status": "requested",
        "intent": "order",
        "priority": "urgent",
        "code": {"text": OUTREACH_TASK_CODE_TEXT},
        "description": format!(
            "Contact the person before the discharge rule \"{}\" would close their IPS case; record each attempt.",
            spec.rule_name
        ),
        "focus": flag_reference(spec.identifier_system, spec.episode_id),
        "authoredOn": spec.authored_on,
        "lastModified": spec.authored_on,
        "requester": service,
        "owner": owner,
        "restriction": {"period": {"end": spec.due_before}}
    });
    if let Some(n) = spec.nhs_number {
        task["for"] =
            json!({"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": n}});
    }
    task
}

/// The Task as the server returned it, completed at `at`: status,
/// `executionPeriod.end` and `lastModified` change, everything else is kept
/// for the `If-Match` update. A Task already finished (completed, or
/// another way: cancelled, failed, rejected, entered-in-error) is returned
/// unchanged, so a retried update keeps the first completion time.
pub fn task_completed(current: &Value, at: &str) -> Value {
    let mut t = current.clone();
    if matches!(
        t["status"].as_str(),
        Some("completed" | "cancelled" | "failed" | "entered-in-error" | "rejected")
    ) {
        return t;
    }
    t["status"] = json!("completed");
    t["lastModified"] = json!(at);
    match t.get_mut("executionPeriod").and_then(Value::as_object_mut) {
        Some(p) => {
            p.insert("end".into(), json!(at));
        }
        None => t["executionPeriod"] = json!({"end": at}),
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> OutreachTaskSpec<'static> {
        OutreachTaskSpec {
            identifier_system: "https://ips.example/Id/resource",
            episode_id: "ep-1",
            rule_name: "two-dnas",
            nhs_number: Some("9000000009"),
            due_before: "2026-11-27T09:00:00Z",
            authored_on: "2026-11-20T09:00:00Z",
            service_ods: "RX4",
            owner_practitioner: None,
        }
    }

    #[test]
    fn requested_task_focused_on_the_flag() {
        let t = outreach_task(&spec());
        assert_eq!(t["status"], "requested");
        assert_eq!(t["intent"], "order");
        assert_eq!(t["priority"], "urgent");
        assert_eq!(t["identifier"][0]["value"], "outreach-task-ep-1");
        assert_eq!(t["focus"]["type"], "Flag");
        assert_eq!(t["focus"]["identifier"]["value"], "outreach-flag-ep-1");
        assert_eq!(t["restriction"]["period"]["end"], "2026-11-27T09:00:00Z");
        assert_eq!(t["owner"]["identifier"]["value"], "RX4");
        assert_eq!(t["for"]["identifier"]["value"], "9000000009");
        assert!(t["description"].as_str().unwrap().contains("two-dnas"));
        assert!(!t["description"].as_str().unwrap().contains("9000000009"));
        assert_eq!(t, outreach_task(&spec()), "stable for the same inputs");
        let parsed: fhir_sdk::r4b::resources::Resource = serde_json::from_value(t).unwrap();
        assert!(matches!(
            parsed,
            fhir_sdk::r4b::resources::Resource::Task(_)
        ));

        let t = outreach_task(&OutreachTaskSpec {
            owner_practitioner: Some(("https://fhir.nhs.uk/Id/sds-user-id", "555")),
            nhs_number: None,
            ..spec()
        });
        assert_eq!(t["owner"]["type"], "Practitioner");
        assert!(t.get("for").is_none());
    }

    #[test]
    fn completion_keeps_what_the_server_holds() {
        let mut current = outreach_task(&spec());
        current["id"] = json!("t-9");
        current["meta"] = json!({"versionId": "2"});
        current["executionPeriod"] = json!({"start": "2026-11-21T08:00:00Z"});
        let t = task_completed(&current, "2026-11-22T10:00:00Z");
        let mut expected = current.clone();
        expected["status"] = json!("completed");
        expected["lastModified"] = json!("2026-11-22T10:00:00Z");
        expected["executionPeriod"]["end"] = json!("2026-11-22T10:00:00Z");
        assert_eq!(t, expected);
        assert_eq!(
            task_completed(&t, "2026-12-01T00:00:00Z"),
            t,
            "retry keeps the time"
        );
        serde_json::from_value::<fhir_sdk::r4b::resources::Resource>(t).unwrap();

        current["status"] = json!("cancelled");
        assert_eq!(task_completed(&current, "2026-11-22T10:00:00Z"), current);
    }
}
