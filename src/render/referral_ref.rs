//! How a resource the bridge writes points back at the referral it is about.
//!
//! A referrer must be able to tell which of its referrals a Task answers,
//! whatever shape the referral arrived in: with a business identifier, as a
//! ServiceRequest on the FHIR server the bridge polls, or inside a BaRS
//! message where the only name it had was its `fullUrl` UUID.

use crate::domain::systems::ODS_SYSTEM;
use serde_json::{Map, Value, json};

/// FHIR's identifier system for a URI such as `urn:uuid:…` (RFC 3986).
pub const URI_SYSTEM: &str = "urn:ietf:rfc:3986";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralRef {
    /// The referral's business identifier (`system`, `value`).
    pub identifier: Option<(String, String)>,
    /// `ServiceRequest/{id}` on the FHIR server the bridge reads.
    pub local_reference: Option<String>,
    /// The id the sender gave the ServiceRequest (its `id` or `fullUrl` UUID).
    pub sender_id: Option<String>,
    /// The sender's `MessageHeader.source.endpoint`.
    pub sender_endpoint: Option<String>,
    /// The sender's ODS code.
    pub sender_ods: Option<String>,
}

impl ReferralRef {
    /// Whether there is anything to identify the referral by.
    pub fn is_identifying(&self) -> bool {
        self.identifier.is_some() || self.local_reference.is_some() || self.sender_id.is_some()
    }

    /// A FHIR `Reference` to the ServiceRequest. In order of preference: its
    /// business identifier; else the id its sender gave it, as a URI
    /// identifier when it is a UUID, else scoped by the sender's endpoint,
    /// with the sender as `assigner`; plus a literal reference where one
    /// resolves (the polled server's `ServiceRequest/{id}`, or the absolute
    /// URL under the sender's FHIR endpoint).
    pub fn to_reference(&self) -> Value {
        let mut focus = Map::new();
        focus.insert("type".into(), json!("ServiceRequest"));
        if let Some(r) = &self.local_reference {
            focus.insert("reference".into(), json!(r));
        } else if let (Some(id), Some(ep)) = (&self.sender_id, &self.sender_endpoint)
            && ep.starts_with("http")
        {
            let url = format!("{}/ServiceRequest/{id}", ep.trim_end_matches('/'));
            focus.insert("reference".into(), json!(url));
        }
        let identifier = match (&self.identifier, &self.sender_id) {
            (Some((system, value)), _) => Some(json!({"system": system, "value": value})),
            (None, Some(id)) => {
                let mut ident = if uuid::Uuid::parse_str(id).is_ok() {
                    json!({"system": URI_SYSTEM, "value": format!("urn:uuid:{id}")})
                } else {
                    let system = self
                        .sender_endpoint
                        .clone()
                        .unwrap_or_else(|| URI_SYSTEM.to_owned());
                    json!({"system": system, "value": id})
                };
                if let Some(ods) = &self.sender_ods {
                    ident["assigner"] = json!({"identifier": {"system": ODS_SYSTEM, "value": ods}});
                }
                Some(ident)
            }
            (None, None) => None,
        };
        if let Some(i) = identifier {
            focus.insert("identifier".into(), i);
        }
        Value::Object(focus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fullurl_only_referral_is_named_by_its_uuid_and_sender() {
        let r = ReferralRef {
            sender_id: Some("1d8a7a6e-3c1a-4f2e-9a55-7d0b5c1b2a10".into()),
            sender_endpoint: Some("https://sender.example.nhs.uk/fhir/R4".into()),
            sender_ods: Some("A12345".into()),
            ..Default::default()
        };
        let f = r.to_reference();
        assert_eq!(f["identifier"]["system"], URI_SYSTEM);
        assert_eq!(
            f["identifier"]["value"],
            "urn:uuid:1d8a7a6e-3c1a-4f2e-9a55-7d0b5c1b2a10"
        );
        assert_eq!(f["identifier"]["assigner"]["identifier"]["value"], "A12345");
        assert_eq!(
            f["reference"],
            "https://sender.example.nhs.uk/fhir/R4/ServiceRequest/1d8a7a6e-3c1a-4f2e-9a55-7d0b5c1b2a10"
        );
    }

    #[test]
    fn two_referrals_without_identifiers_get_different_focus() {
        let a = ReferralRef {
            sender_id: Some("sr-1".into()),
            ..Default::default()
        };
        let b = ReferralRef {
            sender_id: Some("sr-2".into()),
            ..Default::default()
        };
        assert_ne!(a.to_reference(), b.to_reference());
        assert!(a.is_identifying());
        assert!(!ReferralRef::default().is_identifying());
    }

    #[test]
    fn a_business_identifier_wins() {
        let r = ReferralRef {
            identifier: Some(("https://trust.example/referrals".into(), "R-1".into())),
            sender_id: Some("x".into()),
            local_reference: Some("ServiceRequest/abc".into()),
            ..Default::default()
        };
        let f = r.to_reference();
        assert_eq!(f["identifier"]["value"], "R-1");
        assert_eq!(f["reference"], "ServiceRequest/abc");
    }
}
