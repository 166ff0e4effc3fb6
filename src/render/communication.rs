//! The `Communication` recording one outreach attempt in the patient's
//! record (DESIGN §4.2: every attempt is documented).
//!
//! The specialist's note goes into `payload[0].contentString` as a JSON
//! string and nothing else: serde_json escapes quotes and control
//! characters, and markup stays text (the record system displays
//! `contentString` as plain text). It is never parsed or rewritten here.
//!
//! Codes are arguments rather than looked up from the attempt's method and
//! outcome, so this module depends on no mapping table: the caller passes
//! the UK Core `PreferredContactMethod` coding and the SNOMED outcome coding
//! where one exists.

use super::outreach::flag_reference;
use crate::domain::systems::{NHS_NUMBER_SYSTEM, SNOMED_SYSTEM};
use serde_json::{Value, json};

/// Prefix of the Communication's identifier value: `outreach-attempt-{id}`.
pub const COMMUNICATION_ID_PREFIX: &str = "outreach-attempt-";

/// UK Core `PreferredContactMethod` (1 letter, 2 visit, 3 telephone, 4 e-mail, 9 SMS).
pub const PREFERRED_CONTACT_METHOD_SYSTEM: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-PreferredContactMethod";

pub const OUTREACH_CATEGORY_TEXT: &str = "IPS outreach attempt";

/// A coded element with the text always shown: `coding` only when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodedText {
    /// `(code, display)` in the element's code system.
    pub coding: Option<(String, String)>,
    pub text: String,
}

/// What goes on the Communication. Instants are RFC 3339 strings.
#[derive(Debug, Clone)]
pub struct OutreachCommunication<'a> {
    pub identifier_system: &'a str,
    /// The stored attempt's id (stable across resends of the attempt).
    pub attempt_id: &'a str,
    pub nhs_number: Option<&'a str>,
    pub attempted_at: &'a str,
    /// The outreach episode whose Flag the attempt is about, when there is one.
    pub flag_episode_id: Option<&'a str>,
    /// The specialist: shown as `sender.display`.
    pub specialist: &'a str,
    /// An identifier for the specialist (`system`, `value`), when known.
    pub specialist_identifier: Option<(&'a str, &'a str)>,
    /// The method; coding in [`PREFERRED_CONTACT_METHOD_SYSTEM`].
    pub medium: CodedText,
    /// The outcome; coding in SNOMED CT.
    pub outcome: CodedText,
    /// Plain text, written as is.
    pub note: Option<&'a str>,
}

impl OutreachCommunication<'_> {
    pub fn identifier_value(&self) -> String {
        format!("{COMMUNICATION_ID_PREFIX}{}", self.attempt_id)
    }

    pub fn to_resource(&self) -> Value {
        let mut c = json!({
            "resourceType": "Communication",
            "identifier": [{"system": self.identifier_system, "value": self.identifier_value()}],
            "status": "completed",
            "category": [{"text": OUTREACH_CATEGORY_TEXT}],
            "medium": [coded(&self.medium, PREFERRED_CONTACT_METHOD_SYSTEM)],
            "sent": self.attempted_at,
            "reasonCode": [coded(&self.outcome, SNOMED_SYSTEM)],
        });
        let mut sender = json!({"type": "Practitioner", "display": self.specialist});
        if let Some((system, value)) = self.specialist_identifier {
            sender["identifier"] = json!({"system": system, "value": value});
        }
        c["sender"] = sender;
        if let Some(n) = self.nhs_number {
            c["subject"] =
                json!({"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": n}});
        }
        if let Some(ep) = self.flag_episode_id {
            c["about"] = json!([flag_reference(self.identifier_system, ep)]);
        }
        if let Some(note) = self.note {
            c["payload"] = json!([{"contentString": note}]);
        }
        c
    }
}

fn coded(c: &CodedText, system: &str) -> Value {
    let mut v = json!({"text": c.text});
    if let Some((code, display)) = &c.coding {
        v["coding"] = json!([{"system": system, "code": code, "display": display}]);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert(\"x\")</script> & 'quotes' \\ back\u{0007}bell\n\tline";

    fn spec(note: Option<&str>) -> OutreachCommunication<'_> {
        OutreachCommunication {
            identifier_system: "https://ips.example/Id/resource",
            attempt_id: "att-1",
            nhs_number: Some("9000000009"),
            attempted_at: "2026-11-20T09:15:00Z",
            flag_episode_id: Some("ep-1"),
            specialist: "ES-042",
            specialist_identifier: None,
            medium: CodedText {
                coding: Some(("3".into(), "Telephone".into())),
                text: "phone".into(),
            },
            outcome: CodedText {
                coding: Some(("185337004".into(), "No answer when rang".into())),
                text: "no-answer".into(),
            },
            note,
        }
    }

    #[test]
    fn completed_communication_about_the_flag() {
        let c = spec(Some("rang twice")).to_resource();
        assert_eq!(c["status"], "completed");
        assert_eq!(c["identifier"][0]["value"], "outreach-attempt-att-1");
        assert_eq!(c["category"][0]["text"], OUTREACH_CATEGORY_TEXT);
        assert_eq!(
            c["medium"][0]["coding"][0]["system"],
            PREFERRED_CONTACT_METHOD_SYSTEM
        );
        assert_eq!(c["medium"][0]["text"], "phone");
        assert_eq!(c["reasonCode"][0]["coding"][0]["code"], "185337004");
        assert_eq!(c["about"][0]["identifier"]["value"], "outreach-flag-ep-1");
        assert_eq!(c["sent"], "2026-11-20T09:15:00Z");
        assert_eq!(c["sender"]["display"], "ES-042");
        assert_eq!(c, spec(Some("rang twice")).to_resource(), "stable");
        let parsed: fhir_sdk::r4b::resources::Resource = serde_json::from_value(c).unwrap();
        assert!(matches!(
            parsed,
            fhir_sdk::r4b::resources::Resource::Communication(_)
        ));
    }

    #[test]
    fn uncoded_method_and_outcome_keep_their_text() {
        let mut s = spec(None);
        s.medium.coding = None;
        s.outcome.coding = None;
        s.flag_episode_id = None;
        let c = s.to_resource();
        assert_eq!(c["medium"][0], json!({"text": "phone"}));
        assert_eq!(c["reasonCode"][0], json!({"text": "no-answer"}));
        assert!(c.get("about").is_none() && c.get("payload").is_none());
    }

    #[test]
    fn a_hostile_note_round_trips_as_a_plain_string() {
        let c = spec(Some(HOSTILE)).to_resource();
        let wire = serde_json::to_string(&c).unwrap();
        assert!(!wire.contains('\u{0007}'), "control characters are escaped");
        let back: Value = serde_json::from_str(&wire).unwrap();
        assert_eq!(back["payload"][0]["contentString"], HOSTILE);
        assert_eq!(back, c);
    }
}
