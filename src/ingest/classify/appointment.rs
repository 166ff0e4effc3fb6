//! An Appointment: booked, attended, missed or cancelled.

use super::elements::{content_hash, nhs_field, parse_code, parse_instant, require};
use super::service_request::InMessage;
use super::*;
use fhir_sdk::r4b::codes;

pub(super) fn appointment(
    appt: Value,
    resolver: &Resolver,
    bars: InMessage<'_, '_>,
) -> Result<AppointmentInput, Rejection> {
    const RT: &str = "Appointment";
    let status: codes::AppointmentStatus = parse_code(&appt, "status", RT)?;
    let participants = require(&appt, "participant", RT, " (R4 cardinality 1..*)")?;
    let patient_ref = participants
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("actor"))
        .find(|a| {
            str_at(a, "type") == Some("Patient")
                || str_at(a, "reference").and_then(reference_type) == Some("Patient")
                || resolver
                    .resolve(&appt, a)
                    .and_then(|r| str_at(r, "resourceType"))
                    == Some("Patient")
        });
    let patient = patient_ref.and_then(|r| resolver.resolve(&appt, r));
    let key = identifiers(&appt)
        .into_iter()
        .next()
        .map(|(s, v)| format!("{s}|{v}"))
        .or_else(|| match bars {
            Some((m, url)) => m.key(RT, &appt, url),
            None => str_at(&appt, "id").map(|id| format!("Appointment/{id}")),
        })
        .ok_or_else(|| {
            Rejection::new(
                RejectCode::MissingRequiredElement,
                "Appointment has neither identifier, id nor a urn:uuid fullUrl",
            )
        })?;
    Ok(AppointmentInput {
        key,
        status: status.as_ref().to_owned(),
        start: parse_instant(str_at(&appt, "start")),
        nhs: nhs_field(patient, patient_ref),
        source_updated_at: parse_instant(appt.get("meta").and_then(|m| str_at(m, "lastUpdated"))),
        content_hash: content_hash(&[&appt]),
        raw: appt,
    })
}
