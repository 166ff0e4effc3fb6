//! Read-modify-write of a resource the bridge wrote earlier, found by its
//! business identifier.
//!
//! Why a kind of its own: a handler that resolves an outreach episode does
//! not know the server's id or version of the Flag it created (the create
//! may not even have been delivered when the resolve is queued; rows of one
//! case are delivered in order, so by the time this row runs it has). The
//! sink finds the resource by identifier, applies the [`Amendment`] and
//! writes it back with `If-Match` on the version it read. A 412 means
//! someone changed it meanwhile: the sink re-reads and applies the same
//! amendment to the new version. That is safe because an amendment only
//! sets the few elements it owns (a status and an end date) and is
//! idempotent, so re-deciding on the newer version gives the same answer.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `GET Type?identifier=system|value`, amend, `PUT` with `If-Match`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FhirAmend {
    pub resource_type: String,
    pub identifier_system: String,
    pub identifier_value: String,
    pub change: Amendment,
}

/// What to change. Each sets only elements the bridge owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Amendment {
    /// `Flag.status = inactive`, `Flag.period.end`.
    FlagInactive { ended_at: String },
    /// `Task.status = completed`, `Task.executionPeriod.end`, `Task.lastModified`.
    TaskCompleted { at: String },
    /// `DocumentReference.status = superseded` (a newer version replaced it).
    DocumentSuperseded,
    /// A `Task.note` added once (a note with the same text is not added
    /// again), `Task.lastModified`. Leaves a Task someone completed alone.
    TaskNote { text: String, at: String },
}

impl Amendment {
    /// Applies the change to `resource` (as the server returned it).
    /// Returns `false` when it already holds (nothing to write).
    pub fn apply(&self, resource: &mut Value) -> bool {
        let Some(obj) = resource.as_object_mut() else {
            return false;
        };
        match self {
            Amendment::FlagInactive { ended_at } => {
                if obj.get("status").and_then(Value::as_str) == Some("inactive") {
                    return false;
                }
                obj.insert("status".into(), json!("inactive"));
                let period = obj.entry("period").or_insert_with(|| json!({}));
                if let Some(p) = period.as_object_mut() {
                    p.insert("end".into(), json!(ended_at));
                }
                true
            }
            Amendment::TaskCompleted { at } => {
                if obj.get("status").and_then(Value::as_str) == Some("completed") {
                    return false;
                }
                obj.insert("status".into(), json!("completed"));
                obj.insert("lastModified".into(), json!(at));
                let period = obj.entry("executionPeriod").or_insert_with(|| json!({}));
                if let Some(p) = period.as_object_mut() {
                    p.insert("end".into(), json!(at));
                }
                true
            }
            Amendment::DocumentSuperseded => {
                if obj.get("status").and_then(Value::as_str) == Some("superseded") {
                    return false;
                }
                obj.insert("status".into(), json!("superseded"));
                true
            }
            Amendment::TaskNote { text, at } => {
                let status = obj.get("status").and_then(Value::as_str);
                if matches!(
                    status,
                    Some("completed" | "cancelled" | "rejected" | "failed")
                ) {
                    return false;
                }
                let notes = obj.entry("note").or_insert_with(|| json!([]));
                let Some(list) = notes.as_array_mut() else {
                    return false;
                };
                if list
                    .iter()
                    .any(|n| n.get("text").and_then(Value::as_str) == Some(text))
                {
                    return false;
                }
                list.push(json!({"time": at, "text": text}));
                obj.insert("lastModified".into(), json!(at));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_amendment_sets_only_its_elements_and_is_idempotent() {
        let mut flag = json!({"resourceType": "Flag", "id": "7", "status": "active",
            "period": {"start": "2026-11-01T00:00:00Z"}, "code": {"text": "x"}});
        let a = Amendment::FlagInactive {
            ended_at: "2026-11-30T10:00:00Z".into(),
        };
        assert!(a.apply(&mut flag));
        assert_eq!(flag["status"], "inactive");
        assert_eq!(flag["period"]["start"], "2026-11-01T00:00:00Z");
        assert_eq!(flag["period"]["end"], "2026-11-30T10:00:00Z");
        assert_eq!(flag["code"]["text"], "x");
        assert!(!a.apply(&mut flag), "a second application changes nothing");

        let mut task = json!({"resourceType": "Task", "status": "requested", "intent": "order"});
        let t = Amendment::TaskCompleted {
            at: "2026-11-30T10:00:00Z".into(),
        };
        assert!(t.apply(&mut task));
        assert_eq!(task["status"], "completed");
        assert_eq!(task["executionPeriod"]["end"], "2026-11-30T10:00:00Z");
        assert!(!t.apply(&mut task));

        let mut doc =
            json!({"resourceType": "DocumentReference", "status": "current", "docStatus": "final"});
        assert!(Amendment::DocumentSuperseded.apply(&mut doc));
        assert_eq!(
            (doc["status"].as_str(), doc["docStatus"].as_str()),
            (Some("superseded"), Some("final"))
        );
        assert!(!Amendment::DocumentSuperseded.apply(&mut doc));

        let mut review =
            json!({"resourceType": "Task", "status": "requested", "note": [{"text": "from GP"}]});
        let chase = Amendment::TaskNote {
            text: "Reminder 1 of 2".into(),
            at: "2026-11-30T10:00:00Z".into(),
        };
        assert!(chase.apply(&mut review));
        assert!(
            !chase.apply(&mut review),
            "the same reminder is not added twice"
        );
        assert_eq!(review["note"].as_array().map(Vec::len), Some(2));
        let mut done = json!({"resourceType": "Task", "status": "completed"});
        assert!(!chase.apply(&mut done), "a completed review is not chased");
    }
}
