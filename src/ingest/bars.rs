//! Identity of resources in BaRS message Bundles.
//!
//! The BaRS implementation guide's own examples send the ServiceRequest (or
//! Appointment) of a request with neither `identifier` nor `id`: the resource
//! is named only by its Bundle entry's `fullUrl` (`urn:uuid:X`). Later
//! messages about the same referral (an update, a delete, the receiver's
//! response and DNA feedback) carry the same UUID, as the `fullUrl` again or
//! as the resource's `id`. This module turns that into a key the engine can
//! match on, and describes the message a referral came in so that it can be
//! answered the BaRS way.

use super::fhir_view::{ODS_SYSTEM, identifier_value, normalise_system, str_at};
use super::fhir_view::{Resolver, array_at};
use serde_json::Value;

/// The BaRS message a referral came in, as the referrer knows it: what a
/// `servicerequest-response` needs to point back at. Carried only; stored by
/// nobody yet.
pub use crate::engine::command::MessageOrigin as BarsOrigin;

impl BarsOrigin {
    pub fn of(
        bundle: &Value,
        header: &Value,
        header_full_url: Option<&str>,
        resolver: &Resolver,
        service_request_id: Option<String>,
    ) -> BarsOrigin {
        BarsOrigin {
            message_header_id: logical_id(header, header_full_url),
            bundle_id: str_at(bundle, "id").map(str::to_owned),
            source_endpoint: header
                .get("source")
                .and_then(|s| str_at(s, "endpoint"))
                .map(str::to_owned),
            sender_ods: header
                .get("sender")
                .and_then(|s| party_ods(header, s, resolver)),
            service_request_id,
        }
    }
}

/// A BaRS message Bundle being classified, with the requester scope worked
/// out once.
pub struct BarsMessage<'a> {
    pub bundle: &'a Value,
    pub entries: &'a [Value],
    pub header: &'a Value,
    /// See [`requester_scope`].
    pub scope: Option<String>,
}

impl<'a> BarsMessage<'a> {
    pub fn new(
        bundle: &'a Value,
        entries: &'a [Value],
        header: &'a Value,
        event_code: &str,
        resolver: &Resolver,
    ) -> BarsMessage<'a> {
        BarsMessage {
            bundle,
            entries,
            header,
            scope: requester_scope(header, event_code, resolver),
        }
    }

    /// The `fullUrl` of the entry holding exactly this resource (by address,
    /// so two equal resources in different entries are told apart).
    pub fn full_url_of(&self, resource: &Value) -> Option<&'a str> {
        self.entries
            .iter()
            .find(|e| e.get("resource").is_some_and(|r| std::ptr::eq(r, resource)))
            .and_then(|e| str_at(e, "fullUrl"))
    }

    /// The scoped key of a resource without a business identifier.
    pub fn key(
        &self,
        resource_type: &str,
        resource: &Value,
        full_url: Option<&str>,
    ) -> Option<String> {
        logical_id(resource, full_url)
            .map(|id| scoped_key(resource_type, &id, self.scope.as_deref()))
    }

    pub fn origin(&self, resolver: &Resolver, service_request_id: Option<String>) -> BarsOrigin {
        BarsOrigin::of(
            self.bundle,
            self.header,
            self.full_url_of(self.header),
            resolver,
            service_request_id,
        )
    }
}

/// The UUID of a `urn:uuid:` fullUrl.
pub fn full_url_uuid(full_url: Option<&str>) -> Option<&str> {
    let u = full_url?.trim();
    let uuid = u
        .strip_prefix("urn:uuid:")
        .or_else(|| u.strip_prefix("URN:UUID:"))?;
    (!uuid.is_empty()).then_some(uuid)
}

/// The id the sender gave a resource: its `id`, else its `fullUrl` UUID.
/// Where the published examples carry both (REFRESP01, VALREQ02) they are
/// the same UUID, so an `id`-only and a `fullUrl`-only copy of one referral
/// get one logical id.
pub fn logical_id(resource: &Value, full_url: Option<&str>) -> Option<String> {
    str_at(resource, "id")
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .or_else(|| full_url_uuid(full_url))
        .map(str::to_owned)
}

/// The party that minted the ids in a BaRS message: the *requester*.
///
/// Why the requester, and why not simply `source.endpoint`: in the published
/// examples a referral request (REFREQ01), its update (SERVREQ01) and delete
/// (SERVREQ02) and the booking requests all come from
/// `dos-service-id|2222222222` to `dos-service-id|111111111`, while the
/// receiver's response with the DNA feedback (REFRESP01) comes the other way,
/// from `…|111111111` to `…|2222222222`, carrying the requester's UUID as the
/// ServiceRequest id. Scoping by `source.endpoint` would split that referral
/// in two; scoping by the requester (the source of a `*-request`, the
/// destination of a `*-response`) makes all four meet, and keeps two
/// requesters' ids apart. The same holds for the ODS codes, used when there
/// is no endpoint: the request's sender and the response's destination
/// receiver are both RND in those examples.
///
/// Returns the normalised scope (`system|value` with the system's spelling
/// normalised), or `None` when the header names neither.
pub fn requester_scope(header: &Value, event_code: &str, resolver: &Resolver) -> Option<String> {
    let is_response = event_code.ends_with("-response");
    let endpoint = if is_response {
        array_at(header, "destination")
            .iter()
            .find_map(|d| str_at(d, "endpoint"))
    } else {
        header.get("source").and_then(|s| str_at(s, "endpoint"))
    };
    if let Some(ep) = endpoint.map(str::trim).filter(|e| !e.is_empty()) {
        return Some(match ep.split_once('|') {
            Some((sys, val)) => format!("{}|{}", normalise_system(sys), val.trim()),
            None => ep.to_owned(),
        });
    }
    let party = if is_response {
        array_at(header, "destination")
            .iter()
            .find_map(|d| d.get("receiver"))
    } else {
        header.get("sender")
    };
    party
        .and_then(|p| party_ods(header, p, resolver))
        .map(|ods| format!("{ODS_SYSTEM}|{ods}"))
}

/// The key of a resource that has no business identifier: `Type/id`, and
/// inside a BaRS message `Type/id@scope`. The scope's `|` is written `%7C`
/// so that the key never looks like an identifier's `system|value` (the
/// decision handler reads keys of that shape as the ServiceRequest's
/// identifier).
pub fn scoped_key(resource_type: &str, id: &str, scope: Option<&str>) -> String {
    match scope {
        Some(s) => format!("{resource_type}/{id}@{}", s.replace('|', "%7C")),
        None => format!("{resource_type}/{id}"),
    }
}

fn party_ods(header: &Value, party: &Value, resolver: &Resolver) -> Option<String> {
    resolver
        .resolve(header, party)
        .and_then(|o| identifier_value(o, ODS_SYSTEM))
        .or_else(|| {
            identifier_value(
                &serde_json::json!({"identifier": party.get("identifier")?}),
                ODS_SYSTEM,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(event: &str, source: &str, dest: &str) -> Value {
        json!({"resourceType": "MessageHeader",
            "eventCoding": {"code": event},
            "source": {"endpoint": source},
            "destination": [{"endpoint": dest, "receiver": {"reference": "urn:uuid:req-org"}}],
            "sender": {"reference": "urn:uuid:snd-org"}})
    }

    #[test]
    fn full_url_uuid_only_for_urn_uuid() {
        assert_eq!(full_url_uuid(Some("urn:uuid:abc")), Some("abc"));
        assert_eq!(full_url_uuid(Some("urn:uuid:")), None);
        assert_eq!(full_url_uuid(Some("https://x/fhir/ServiceRequest/1")), None);
        assert_eq!(full_url_uuid(None), None);
    }

    #[test]
    fn id_wins_over_full_url_and_both_name_the_same_referral_in_the_examples() {
        let id_only = json!({"id": "236bb75d"});
        let url_only = json!({});
        assert_eq!(
            logical_id(&id_only, None),
            logical_id(&url_only, Some("urn:uuid:236bb75d"))
        );
        assert_eq!(
            logical_id(&json!({"id": " "}), Some("urn:uuid:u")).as_deref(),
            Some("u")
        );
        assert_eq!(logical_id(&url_only, None), None);
    }

    #[test]
    fn request_and_response_scope_to_the_requester() {
        let r = Resolver::default();
        let req = header(
            "servicerequest-request",
            "https://fhir.nhs.uk/Id/dos-service-id|2222222222",
            "https://fhir.nhs.uk/Id/dos-service-id|111111111",
        );
        let resp = header(
            "servicerequest-response",
            "http://fhir.nhs.uk/id/dos-service-id|111111111",
            "http://fhir.nhs.uk/id/dos-service-id|2222222222",
        );
        let a = requester_scope(&req, "servicerequest-request", &r);
        assert_eq!(
            a.as_deref(),
            Some("https://fhir.nhs.uk/Id/dos-service-id|2222222222")
        );
        assert_eq!(a, requester_scope(&resp, "servicerequest-response", &r));
        let other = header("servicerequest-request", "https://x|3", "https://x|1");
        assert_ne!(a, requester_scope(&other, "servicerequest-request", &r));
    }

    #[test]
    fn without_endpoints_the_requester_ods_scopes() {
        let (snd, rcv) = (
            json!({"resourceType": "Organization", "identifier": [{"system": "https://fhir.nhs.uk/id/ods-organization-code", "value": "RND"}]}),
            json!({"resourceType": "Organization", "identifier": [{"system": ODS_SYSTEM, "value": "RND"}]}),
        );
        let mut r = Resolver::default();
        r.add(Some("urn:uuid:snd-org"), &snd);
        r.add(Some("urn:uuid:req-org"), &rcv);
        let req = json!({"sender": {"reference": "urn:uuid:snd-org"}});
        let resp = json!({"destination": [{"receiver": {"reference": "urn:uuid:req-org"}}]});
        let a = requester_scope(&req, "servicerequest-request", &r);
        assert_eq!(a, Some(format!("{ODS_SYSTEM}|RND")));
        assert_eq!(a, requester_scope(&resp, "servicerequest-response", &r));
        assert_eq!(requester_scope(&json!({}), "booking-request", &r), None);
    }

    #[test]
    fn scoped_keys_never_look_like_identifiers() {
        let k = scoped_key(
            "ServiceRequest",
            "u1",
            Some("https://fhir.nhs.uk/Id/dos-service-id|2222222222"),
        );
        assert_eq!(
            k,
            "ServiceRequest/u1@https://fhir.nhs.uk/Id/dos-service-id%7C2222222222"
        );
        assert!(!k.contains('|'));
        assert_eq!(scoped_key("Appointment", "a", None), "Appointment/a");
    }
}
