//! BaRS message Bundles: meaning from `eventCoding` and the focus's status.

use super::appointment::appointment;
use super::service_request::referral;
use super::*;
use crate::domain::referral::ClosureCause;
use crate::ingest::bars::BarsMessage;
use fhir_sdk::r4b::codes;
use std::str::FromStr;

pub(super) fn classify_bundle(
    bundle: Value,
    limits: &Limits,
    rules: &IntakeRules,
) -> Result<Command, Rejection> {
    let btype = str_at(&bundle, "type").unwrap_or("");
    if codes::BundleType::from_str(btype).is_err() {
        return Err(Rejection::new(
            RejectCode::InvalidBundle,
            "Bundle.type is not a FHIR bundle type",
        ));
    }
    if btype != "message" {
        return Err(Rejection::new(
            RejectCode::UnsupportedBundleType,
            format!(
                "Bundle.type {btype} is not consumed; send a BaRS message Bundle (type message)"
            ),
        ));
    }
    let entries = array_at(&bundle, "entry");
    if entries.len() > limits.max_bundle_entries {
        return Err(Rejection::new(
            RejectCode::TooManyEntries,
            format!(
                "Bundle has {} entries; the limit is {} (limits.max_bundle_entries)",
                entries.len(),
                limits.max_bundle_entries
            ),
        ));
    }
    let header = entries
        .first()
        .and_then(|e| e.get("resource"))
        .filter(|r| str_at(r, "resourceType") == Some("MessageHeader"))
        .ok_or_else(|| {
            Rejection::new(
                RejectCode::MissingMessageHeader,
                "a message Bundle must start with a MessageHeader entry",
            )
        })?;
    let mut resolver = Resolver::default();
    for (i, e) in entries.iter().enumerate() {
        let Some(res) = e.get("resource") else {
            return Err(Rejection::new(
                RejectCode::InvalidBundle,
                format!("Bundle.entry[{i}] has no resource"),
            ));
        };
        check_resource_type(res)
            .map_err(|r| Rejection::new(r.code, format!("Bundle.entry[{i}]: {}", r.reason)))?;
        resolver.add(str_at(e, "fullUrl"), res);
    }
    let event = codings(
        header
            .get("eventCoding")
            .map(|c| serde_json::json!({"coding":[c]}))
            .as_ref()
            .unwrap_or(&Value::Null),
    );
    let Some((_, event_code)) = event.first() else {
        return Err(Rejection::new(
            RejectCode::InvalidMessageHeader,
            "MessageHeader.eventCoding has no code",
        ));
    };
    let focus: Vec<&Value> = array_at(header, "focus")
        .iter()
        .filter_map(|f| resolver.resolve(header, f))
        .collect();
    let msg = BarsMessage::new(&bundle, entries, header, event_code, &resolver);
    let of_type = |t: &str| -> Option<&Value> {
        focus
            .iter()
            .find(|r| str_at(r, "resourceType") == Some(t))
            .copied()
            .or_else(|| {
                entries
                    .iter()
                    .filter_map(|e| e.get("resource"))
                    .find(|r| str_at(r, "resourceType") == Some(t))
            })
    };
    match event_code.as_str() {
        "servicerequest-request" | "servicerequest-response" => {
            let sr = of_type("ServiceRequest").ok_or_else(|| {
                Rejection::new(
                    RejectCode::MissingFocus,
                    format!("{event_code} message has no ServiceRequest"),
                )
            })?;
            // DNA feedback: the referrer closed the referral because of a no-show.
            let dna_appt = of_type("Appointment")
                .filter(|a| str_at(a, "status") == Some("noshow"))
                .filter(|_| event_code == "servicerequest-response");
            // The missed appointment is a fact for the discharge rules too,
            // keyed in the requester's scope like the booking that made it.
            // A malformed one refuses the message: dropping it would lose a
            // DNA from the count.
            let feedback = dna_appt
                .map(|a| {
                    appointment(a.clone(), &resolver, Some((&msg, msg.full_url_of(a))))
                        .map_err(|r| Rejection::new(r.code, format!("DNA feedback: {}", r.reason)))
                })
                .transpose()?;
            referral(
                sr.clone(),
                &resolver,
                Some(header),
                dna_appt.map(|_| ClosureCause::DidNotAttend),
                rules,
                Some((&msg, msg.full_url_of(sr))),
            )
            .map(|r| {
                wrap_referral(r.map(|r| ReferralInput {
                    feedback_appointment: feedback.map(Box::new),
                    ..r
                }))
            })
        }
        code if code.starts_with("booking-") => {
            let appt = of_type("Appointment").ok_or_else(|| {
                Rejection::new(
                    RejectCode::MissingFocus,
                    // `code` is any text starting "booking-": not echoed.
                    "a BaRS booking message has no Appointment",
                )
            })?;
            appointment(appt.clone(), &resolver, Some((&msg, msg.full_url_of(appt))))
                .map(|a| Command::Appointment(Box::new(a)))
        }
        other => Ok(Command::Ignore(format!(
            "BaRS event {other} is not acted on"
        ))),
    }
}
