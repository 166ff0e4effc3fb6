//! What the discharge rules need to know about one appointment.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How an appointment ended (or has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Attendance {
    /// Booked, pending, proposed, waitlisted: not yet happened.
    Pending,
    /// `fulfilled`, `arrived`, `checked-in`.
    Attended,
    /// `noshow`: did not attend.
    DidNotAttend,
    /// `cancelled`: neither attended nor missed.
    Cancelled,
    /// `entered-in-error`: as if it never existed.
    EnteredInError,
}

impl Attendance {
    /// From FHIR `Appointment.status`.
    pub fn from_fhir_status(status: &str) -> Attendance {
        match status {
            "fulfilled" | "arrived" | "checked-in" => Attendance::Attended,
            "noshow" => Attendance::DidNotAttend,
            "cancelled" => Attendance::Cancelled,
            "entered-in-error" => Attendance::EnteredInError,
            _ => Attendance::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Who cancelled, when the resource says (`cancelationReason` coding
/// `pat` / `prov` / ... of `http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason`,
/// or its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum CancelledBy {
    Patient,
    Provider,
    Other,
}

/// Which team's appointment it is: what a rule's `applies_to` matches on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceContext {
    /// `Appointment.serviceType[].coding[].code`.
    #[serde(default)]
    pub service_types: Vec<String>,
    /// `Appointment.specialty[].coding[].code`.
    #[serde(default)]
    pub specialties: Vec<String>,
    /// ODS codes of the organisations taking part (participant actors, or
    /// the referral's performer) when known.
    #[serde(default)]
    pub organisations: Vec<String>,
    /// Location identifiers / references of participant Locations.
    #[serde(default)]
    pub locations: Vec<String>,
}

/// One appointment as the rules see it. Keyed by `key` (the business
/// identity of the Appointment); a later version of the same key replaces an
/// earlier one (a DNA corrected to attended undoes the DNA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentFact {
    pub key: String,
    /// When the appointment was (to be) held; `None` when the source gave no start.
    pub start: Option<OffsetDateTime>,
    pub attendance: Attendance,
    pub cancelled_by: Option<CancelledBy>,
    pub service: ServiceContext,
}
