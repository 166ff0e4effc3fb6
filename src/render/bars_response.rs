//! The BaRS answer to a referral that arrived as a BaRS message: a
//! `servicerequest-response` message Bundle whose MessageHeader names the
//! request's MessageHeader in `response.identifier` and carries the
//! ServiceRequest with its new status.
//!
//! The bridge does not route messages itself: the Bundle is published to the
//! events exchange (routing key [`ROUTING_KEY`]) for the integration layer
//! (a BaRS proxy, Mirth, OpenHIM) to deliver to `destination.endpoint`.

use crate::domain::systems::{BARS_EVENT_SYSTEM, ODS_SYSTEM};
use serde_json::{Value, json};
use uuid::Uuid;

pub const ROUTING_KEY: &str = "bars.servicerequest-response";
pub const BARS_REASON_SYSTEM: &str = "https://fhir.nhs.uk/CodeSystem/message-reason-bars";
const NS: Uuid = Uuid::from_u128(0x0b5e_7a61_2c4d_4f0e_9a1b_8c2d_3e4f_5a6b);

pub struct BarsResponse<'a> {
    pub referral_id: &'a str,
    /// `accepted` or `declined`: with the referral id, names this answer.
    pub outcome: &'a str,
    /// The request's message id (its `Bundle.id`, as the published examples
    /// answer; else its MessageHeader id).
    pub request_header_id: &'a str,
    /// Where the request came from (`MessageHeader.source.endpoint`).
    pub reply_to: Option<&'a str>,
    pub referrer_ods: Option<&'a str>,
    /// The ServiceRequest as the referrer sent it.
    pub service_request: &'a Value,
    /// The id the sender gave the ServiceRequest (kept, so the answer meets the request).
    pub service_request_id: &'a str,
    pub service_ods: &'a str,
    pub service_name: &'a str,
    pub service_endpoint: Option<&'a str>,
    pub at: &'a str,
}

impl BarsResponse<'_> {
    /// The message id: the same for every delivery of the same answer.
    pub fn message_id(&self) -> Uuid {
        Uuid::new_v5(
            &NS,
            format!("{}:{}:header", self.referral_id, self.outcome).as_bytes(),
        )
    }

    /// `active` once accepted; `revoked` when declined (the BaRS guide's
    /// statuses for a referral the receiving service will not act on).
    fn request_status(&self) -> &'static str {
        if self.outcome == "accepted" {
            "active"
        } else {
            "revoked"
        }
    }

    pub fn to_bundle(&self) -> Value {
        let header_id = self.message_id().to_string();
        let bundle_id = Uuid::new_v5(
            &NS,
            format!("{}:{}:bundle", self.referral_id, self.outcome).as_bytes(),
        );
        let sr_url = format!("urn:uuid:{}", self.service_request_id);
        let mut sr = self.service_request.clone();
        sr["id"] = json!(self.service_request_id);
        sr["status"] = json!(self.request_status());
        let mut destination = json!({"endpoint": self.reply_to.unwrap_or("unknown")});
        if let Some(ods) = self.referrer_ods {
            destination["receiver"] = json!({"identifier": {"system": ODS_SYSTEM, "value": ods}});
        }
        let mut source = json!({"name": self.service_name});
        source["endpoint"] = json!(self.service_endpoint.unwrap_or("unknown"));
        json!({
            "resourceType": "Bundle",
            "id": bundle_id.to_string(),
            "meta": {"lastUpdated": self.at},
            "type": "message",
            "timestamp": self.at,
            "entry": [
                {
                    "fullUrl": format!("urn:uuid:{header_id}"),
                    "resource": {
                        "resourceType": "MessageHeader",
                        "id": header_id,
                        "eventCoding": {"system": BARS_EVENT_SYSTEM, "code": "servicerequest-response"},
                        "reason": {"coding": [{"system": BARS_REASON_SYSTEM, "code": "update"}]},
                        "destination": [destination],
                        "sender": {"identifier": {"system": ODS_SYSTEM, "value": self.service_ods}},
                        "source": source,
                        "response": {"identifier": self.request_header_id, "code": "ok"},
                        "focus": [{"reference": sr_url}]
                    }
                },
                {"fullUrl": sr_url, "resource": sr}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer<'a>(sr: &'a Value, outcome: &'a str) -> BarsResponse<'a> {
        BarsResponse {
            referral_id: "r1",
            outcome,
            request_header_id: "3b7c1a52-6a8b-4b3a-9d4a-0f1e2d3c4b5a",
            reply_to: Some("https://referrer.example/fhir"),
            referrer_ods: Some("A12345"),
            service_request: sr,
            service_request_id: "5f3c0c1e-1111-4a2b-8c3d-9e8f7a6b5c4d",
            service_ods: "RX1",
            service_name: "IPS",
            service_endpoint: None,
            at: "2026-11-30T10:00:00.000Z",
        }
    }

    #[test]
    fn answers_the_request_header_and_keeps_the_senders_id() {
        let sr = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order"});
        let b = answer(&sr, "declined").to_bundle();
        let header = &b["entry"][0]["resource"];
        assert_eq!(header["eventCoding"]["code"], "servicerequest-response");
        assert_eq!(
            header["response"]["identifier"],
            "3b7c1a52-6a8b-4b3a-9d4a-0f1e2d3c4b5a"
        );
        assert_eq!(header["focus"][0]["reference"], b["entry"][1]["fullUrl"]);
        assert_eq!(
            b["entry"][1]["resource"]["id"],
            "5f3c0c1e-1111-4a2b-8c3d-9e8f7a6b5c4d"
        );
        assert_eq!(b["entry"][1]["resource"]["status"], "revoked");
        assert_eq!(
            header["destination"][0]["receiver"]["identifier"]["value"],
            "A12345"
        );
    }

    #[test]
    fn the_same_answer_has_the_same_ids_and_a_different_one_does_not() {
        let sr = json!({"resourceType": "ServiceRequest"});
        let a = answer(&sr, "accepted");
        assert_eq!(a.to_bundle(), answer(&sr, "accepted").to_bundle());
        assert_ne!(a.message_id(), answer(&sr, "declined").message_id());
        assert_eq!(a.to_bundle()["entry"][1]["resource"]["status"], "active");
    }
}
