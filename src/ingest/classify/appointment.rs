//! An Appointment: booked, attended, missed or cancelled.

use super::elements::{content_hash, nhs_field, parse_code, parse_instant, require};
use super::service_request::InMessage;
use super::*;
use crate::domain::outreach::{Attendance, CancelledBy, ServiceContext};
use fhir_sdk::r4b::codes;

/// `Appointment.cancelationReason` code system (R4).
pub const CANCELLATION_REASON_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason";

pub(super) fn appointment(
    appt: Value,
    resolver: &Resolver,
    bars: InMessage<'_, '_>,
) -> Result<AppointmentInput, Rejection> {
    const RT: &str = "Appointment";
    let status: codes::AppointmentStatus = parse_code(&appt, "status", RT)?;
    let participants = require(&appt, "participant", RT, " (R4 cardinality 1..*)")?;
    let actors: Vec<&Value> = participants
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("actor"))
        .collect();
    let patient_ref = actors
        .iter()
        .copied()
        .find(|a| actor_type(&appt, a, resolver) == Some("Patient"));
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
    let start = parse_instant(str_at(&appt, "start"));
    if let (Some(start), Some(end)) = (start, parse_instant(str_at(&appt, "end")))
        && end < start
    {
        // An impossible slot is a sender's error, not a fact to plan outreach on.
        return Err(Rejection::new(
            RejectCode::InvalidElement,
            "Appointment.end is before Appointment.start",
        ));
    }
    let status = status.as_ref().to_owned();
    let attendance = Attendance::from_fhir_status(&status);
    Ok(AppointmentInput {
        key,
        cancelled_by: (attendance == Attendance::Cancelled)
            .then(|| appt.get("cancelationReason").and_then(cancelled_by))
            .flatten(),
        service: service_context(&appt, &actors, resolver),
        attendance,
        status,
        start,
        nhs: nhs_field(patient, patient_ref),
        source_updated_at: parse_instant(appt.get("meta").and_then(|m| str_at(m, "lastUpdated"))),
        content_hash: content_hash(&[&appt]),
        raw: appt.to_string(),
    })
}

/// The resource type a participant actor names: its `type`, its literal
/// reference, or the resource it resolves to in the message.
fn actor_type<'a>(appt: &'a Value, actor: &'a Value, resolver: &'a Resolver) -> Option<&'a str> {
    str_at(actor, "type")
        .or_else(|| str_at(actor, "reference").and_then(reference_type))
        .or_else(|| {
            resolver
                .resolve(appt, actor)
                .and_then(|r| str_at(r, "resourceType"))
        })
}

/// Who cancelled, from the R4 cancellation-reason codes: `pat*` is the
/// patient; `prov*`, `maint` (equipment maintenance) and `meds-inc`
/// (medication incomplete) are the provider's side; `other` / `oth-*`
/// (weather, room, error, ...) and any reason in another system or only as
/// text are Other. No reason at all is `None`: unknown, not Other.
fn cancelled_by(reason: &Value) -> Option<CancelledBy> {
    let coded = codings(reason)
        .into_iter()
        .filter(|(s, _)| s == CANCELLATION_REASON_SYSTEM)
        .map(|(_, c)| match c.as_str() {
            c if c.starts_with("pat") => CancelledBy::Patient,
            c if c.starts_with("prov") || c == "maint" || c.starts_with("meds") => {
                CancelledBy::Provider
            }
            _ => CancelledBy::Other,
        })
        .next();
    coded.or_else(|| {
        (has_content(reason, "coding") || has_content(reason, "text")).then_some(CancelledBy::Other)
    })
}

/// Which team's appointment: service type and specialty codes, the ODS
/// codes of participating Organizations, the identifiers (else references)
/// of participating Locations. Sorted and deduplicated so that two copies of
/// one appointment compare equal.
fn service_context(appt: &Value, actors: &[&Value], resolver: &Resolver) -> ServiceContext {
    let codes_of = |key: &str| -> Vec<String> {
        let mut v: Vec<String> = appt
            .get(key)
            .map(codings)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let mut organisations = Vec::new();
    let mut locations = Vec::new();
    for actor in actors {
        let resolved = resolver.resolve(appt, actor);
        match actor_type(appt, actor, resolver) {
            Some("Organization") => {
                let ods = resolved
                    .and_then(|o| identifier_value(o, ODS_SYSTEM))
                    .or_else(|| identifier_value(actor, ODS_SYSTEM));
                organisations.extend(ods);
            }
            Some("Location") => {
                let mut ids: Vec<String> = resolved
                    .map(identifiers)
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(|| identifiers(actor))
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect();
                if ids.is_empty() {
                    ids.extend(str_at(actor, "reference").and_then(relative_reference));
                }
                locations.extend(ids);
            }
            _ => {}
        }
    }
    for v in [&mut organisations, &mut locations] {
        v.sort();
        v.dedup();
    }
    ServiceContext {
        service_types: codes_of("serviceType"),
        specialties: codes_of("specialty"),
        organisations,
        locations,
    }
}
