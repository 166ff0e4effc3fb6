//! A published IPS document in the record: the `Binary` holding the
//! rendered XHTML, the `DocumentReference` that indexes it, and for the VP
//! and IWSP the review `Task` asking the GP or care coordinator to comment.
//!
//! Resources refer to each other by business identifier (logical
//! references), because the server's ids are not known when the outbox rows
//! are queued. The Binary is the exception: an R4 Binary has no identifier,
//! so the bridge chooses its id and writes it with `PUT` (update-as-create),
//! which a retry repeats harmlessly.

use super::ReferralRef;
use crate::domain::systems::{NHS_NUMBER_SYSTEM, ODS_SYSTEM};
use base64::Engine as _;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

/// The media type of the rendered document.
pub const XHTML: &str = "application/xhtml+xml";

/// The DocumentReference's business identifier value.
pub fn document_identifier(document_id: &str) -> String {
    format!("ips-document-{document_id}")
}

/// The review Task's business identifier value.
pub fn review_identifier(document_id: &str) -> String {
    format!("ips-document-review-{document_id}")
}

/// The document id a review Task identifier value names.
pub fn document_id_from_review_identifier(value: &str) -> Option<&str> {
    value
        .strip_prefix("ips-document-review-")
        .filter(|id| !id.is_empty())
}

/// The document id a DocumentReference or review Task identifier value names.
pub fn document_id_from_identifier(value: &str) -> Option<&str> {
    document_id_from_review_identifier(value).or_else(|| {
        value
            .strip_prefix("ips-document-")
            .filter(|id| !id.is_empty())
    })
}

/// The note the bridge adds to an unanswered review Task, chase `n` of `max`.
pub fn reminder_note(n: u32, max: u32, due: time::Date) -> String {
    format!(
        "{REMINDER_PREFIX}{n} of {max}: this review was due on {due}. Please add your comments to this task."
    )
}

/// How every reminder note starts: a reader of the Task's notes tells the
/// bridge's reminders from the reviewer's comment by it.
pub const REMINDER_PREFIX: &str = "Reminder ";

/// The Binary's id: at most 64 characters of `[A-Za-z0-9.-]` (a UUID fits).
pub fn binary_id(document_id: &str) -> String {
    format!("ips-doc-{document_id}")
}

/// `(size, SHA-1 as base64)` of the content, as `Attachment.size` and `.hash` want them.
pub fn size_and_hash(content: &[u8]) -> (usize, String) {
    let digest = Sha1::digest(content);
    (
        content.len(),
        base64::engine::general_purpose::STANDARD.encode(digest),
    )
}

fn coding(c: &(&str, &str, &str)) -> Value {
    json!({"system": c.0, "code": c.1, "display": c.2})
}

fn logical(rt: &str, system: &str, value: String) -> Value {
    json!({"type": rt, "identifier": {"system": system, "value": value}})
}

fn organisation(ods: &str, display: Option<&str>) -> Value {
    let mut v = json!({"type": "Organization", "identifier": {"system": ODS_SYSTEM, "value": ods}});
    if let Some(d) = display {
        v["display"] = json!(d);
    }
    v
}

/// Where the content goes.
pub enum Content<'a> {
    /// In a Binary the bridge writes first (`PUT Binary/{id}`).
    Binary,
    /// Inline in the attachment.
    Inline(&'a [u8]),
}

/// Everything the DocumentReference says.
pub struct DocumentSpec<'a> {
    pub identifier_system: &'a str,
    pub document_id: &'a str,
    pub nhs_number: &'a str,
    pub title: &'a str,
    /// `(system, code, display)`.
    pub type_coding: (&'a str, &'a str, &'a str),
    pub category: (&'a str, &'a str, &'a str),
    pub author_name: &'a str,
    pub service_name: &'a str,
    pub service_ods: &'a str,
    pub created: &'a str,
    pub size: usize,
    pub sha1_base64: &'a str,
    /// The version this one replaces.
    pub replaces: Option<&'a str>,
    pub referral: Option<&'a ReferralRef>,
}

/// The Binary holding `content`, with its bridge-chosen id.
pub fn binary(document_id: &str, content: &[u8]) -> Value {
    json!({
        "resourceType": "Binary",
        "id": binary_id(document_id),
        "contentType": XHTML,
        "data": base64::engine::general_purpose::STANDARD.encode(content),
    })
}

impl DocumentSpec<'_> {
    pub fn document_reference(&self, content: Content<'_>) -> Value {
        let mut attachment = json!({
            "contentType": XHTML,
            "language": "en-GB",
            "size": self.size,
            "hash": self.sha1_base64,
            "title": self.title,
            "creation": self.created,
        });
        match content {
            Content::Binary => {
                attachment["url"] = json!(format!("Binary/{}", binary_id(self.document_id)));
            }
            Content::Inline(bytes) => {
                attachment["data"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
            }
        }
        let mut doc = json!({
            "resourceType": "DocumentReference",
            "identifier": [{"system": self.identifier_system, "value": document_identifier(self.document_id)}],
            "status": "current",
            "docStatus": "final",
            "type": {"coding": [coding(&self.type_coding)], "text": self.title},
            "category": [{"coding": [coding(&self.category)]}],
            "subject": {"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": self.nhs_number}},
            "date": self.created,
            "author": [
                {"display": self.author_name},
                organisation(self.service_ods, Some(self.service_name)),
            ],
            "custodian": organisation(self.service_ods, Some(self.service_name)),
            "description": self.title,
            "content": [{"attachment": attachment}],
        });
        if let Some(prev) = self.replaces {
            doc["relatesTo"] = json!([{
                "code": "replaces",
                "target": logical("DocumentReference", self.identifier_system, document_identifier(prev)),
            }]);
        }
        if let Some(r) = self.referral.filter(|r| r.is_identifying()) {
            doc["context"] = json!({"related": [r.to_reference()]});
        }
        doc
    }
}

/// The review Task: the GP or care coordinator is asked to comment.
pub struct ReviewSpec<'a> {
    pub identifier_system: &'a str,
    pub document_id: &'a str,
    pub nhs_number: &'a str,
    pub title: &'a str,
    pub service_name: &'a str,
    pub service_ods: &'a str,
    /// The referrer's or GP practice's ODS code, when known.
    pub owner_ods: Option<&'a str>,
    pub authored: &'a str,
    pub due: &'a str,
}

impl ReviewSpec<'_> {
    pub fn task(&self) -> Value {
        let mut task = json!({
            "resourceType": "Task",
            "identifier": [{"system": self.identifier_system, "value": review_identifier(self.document_id)}],
            "status": "requested",
            "intent": "order",
            "priority": "routine",
            "code": {"text": "Review and comment"},
            "description": format!(
                "Please read the {} from the IPS employment service and add your comments \
                 (complete this task with a note, or reply about the document).",
                self.title.to_lowercase()
            ),
            "focus": logical("DocumentReference", self.identifier_system, document_identifier(self.document_id)),
            "for": {"type": "Patient", "identifier": {"system": NHS_NUMBER_SYSTEM, "value": self.nhs_number}},
            "authoredOn": self.authored,
            "lastModified": self.authored,
            "requester": organisation(self.service_ods, Some(self.service_name)),
            "restriction": {"period": {"end": self.due}},
        });
        if let Some(ods) = self.owner_ods {
            task["owner"] = organisation(ods, None);
        }
        task
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_round_trip_and_hashes_are_sha1_base64() {
        assert_eq!(
            document_id_from_identifier(&document_identifier("d1")),
            Some("d1")
        );
        assert_eq!(
            document_id_from_identifier(&review_identifier("d1")),
            Some("d1")
        );
        assert_eq!(document_id_from_identifier("outreach-flag-1"), None);
        assert_eq!(
            document_id_from_review_identifier(&document_identifier("d1")),
            None
        );
        assert!(
            reminder_note(1, 2, time::macros::date!(2026 - 11 - 16)).starts_with(REMINDER_PREFIX)
        );
        // SHA-1 of "abc" is a9993e36...; as base64 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=.
        assert_eq!(
            size_and_hash(b"abc"),
            (3, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=".to_owned())
        );
        assert!(binary_id(&uuid::Uuid::nil().to_string()).len() <= 64);
    }

    #[test]
    fn a_revision_replaces_the_previous_version_and_inline_content_is_embedded() {
        let spec = DocumentSpec {
            identifier_system: "https://x/Id",
            document_id: "d2",
            nhs_number: "9912003888",
            title: "Vocational profile",
            type_coding: ("s", "c", "d"),
            category: ("http://snomed.info/sct", "734163000", "Care plan"),
            author_name: "A Specialist",
            service_name: "IPS",
            service_ods: "RX4",
            created: "2026-11-30T10:00:00Z",
            size: 3,
            sha1_base64: "h",
            replaces: Some("d1"),
            referral: None,
        };
        let doc = spec.document_reference(Content::Binary);
        assert_eq!(doc["relatesTo"][0]["code"], "replaces");
        assert_eq!(
            doc["relatesTo"][0]["target"]["identifier"]["value"],
            "ips-document-d1"
        );
        assert_eq!(doc["content"][0]["attachment"]["url"], "Binary/ips-doc-d2");
        assert_eq!(doc["custodian"]["identifier"]["value"], "RX4");
        assert!(
            doc.get("context").is_none(),
            "no referral known, no empty context"
        );
        let inline = spec.document_reference(Content::Inline(b"abc"));
        assert_eq!(inline["content"][0]["attachment"]["data"], "YWJj");
        assert!(inline["content"][0]["attachment"].get("url").is_none());
    }
}
