//! Every input the engine applies is a [`Command`]: a parsed message from the
//! queue or the FHIR poller, a call to the HTTP API, a durable timer firing.
//!
//! Why one type: all of them go through the same commit path
//! ([`Engine::execute`](super::Engine::execute)), so dedupe, the transaction
//! boundary, audit, outbox and metrics are written once. Sources build
//! commands; only the engine applies them. The types here are plain data, so
//! the parsers (`ingest`) depend on the engine and never the reverse.

mod documents;
mod employment;

pub use documents::*;
pub use employment::*;

use super::rejection::Rejection;
use crate::domain::outreach::{
    AppointmentFact, AttemptMethod, AttemptOutcome, Attendance, CancelledBy, ServiceContext,
};
use crate::domain::referral::{NhsField, ReferralVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strum::{EnumIter, EnumString, IntoStaticStr};
use time::OffsetDateTime;

/// Where a command came from: the inbox dedupe namespace and a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "kebab-case")]
pub enum Source {
    /// The inbound RabbitMQ queue.
    Amqp,
    /// ServiceRequests and Appointments read from the FHIR server.
    FhirPoll,
    /// The HTTP API (a person's action).
    Api,
    /// A durable timer that fell due.
    Timer,
    /// The outbox dispatcher handing a write conflict back to its handler.
    Outbox,
    /// The bridge's MESH inbox (acknowledgements, reports).
    Mesh,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Transport messages can arrive twice and are deduplicated in the inbox.
    /// The others cannot: an API call is answered once, a timer is deleted in
    /// the transaction that fires it, a conflict is handed back with the
    /// outbox row that raised it.
    pub fn deduplicates(self) -> bool {
        matches!(self, Source::Amqp | Source::FhirPoll | Source::Mesh)
    }
}

/// One input from any source, classified (or rejected with a reason).
#[derive(Debug)]
pub struct Inbound {
    pub source: Source,
    /// The dedupe key within `source` (ignored where it does not deduplicate).
    pub message_id: String,
    pub received_at: OffsetDateTime,
    pub command: Result<Command, Rejection>,
}

/// Something the engine can apply.
#[derive(Debug, Clone)]
pub enum Command {
    Referral(Box<ReferralInput>),
    Appointment(Box<AppointmentInput>),
    Decision(DecisionInput),
    /// A clinical team finished its episode of care with the patient.
    EpisodeFinished(Box<EpisodeFinishedInput>),
    /// A person closes a case, with a reason (never the bridge on DNAs).
    CloseCase(CloseCaseInput),
    /// A clinician or the specialist decides outreach is no longer needed.
    ResolveOutreach(ResolveOutreachInput),
    /// `ips.outreach-attempt.v1` or the API: a specialist tried to reach someone.
    OutreachAttempt(Box<OutreachAttemptInput>),
    /// Sections of a VP or IWSP from a session (and maybe its completion).
    DocumentSections(Box<SectionsInput>),
    /// A VP or IWSP completed: publish its next version.
    DocumentComplete(Box<CompleteInput>),
    /// A contact note to publish.
    Note(Box<NoteInput>),
    /// A comment on a published document came back.
    DocumentComment(Box<CommentInput>),
    /// A person started a job (`ips.job-start.v1`, the API, the pages).
    JobStart(Box<JobStartInput>),
    /// A job ended.
    JobEnd(Box<JobEndInput>),
    /// A person's employment status was recorded (MHSDS MHS004).
    EmploymentStatus(Box<EmploymentStatusInput>),
    /// A case was given to a specialist.
    Assign(AssignInput),
    /// An ITK3 acknowledgement or a MESH report about a document sent over MESH.
    DeliveryAck(Box<AckInput>),
    TimerFired(TimerFired),
    /// The FHIR server refused an update queued by a handler because the
    /// resource changed meanwhile (412): the handler decides again.
    WriteConflict(Box<WriteConflict>),
    /// Well-formed but not for this service (not an IPS referral, an event
    /// the bridge does not act on). Recorded and acknowledged.
    Ignore(String),
}

impl Command {
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Referral(_) => "referral",
            Command::Appointment(_) => "appointment",
            Command::Decision(_) => "decision",
            Command::EpisodeFinished(_) => "episode-of-care",
            Command::CloseCase(_) => "case-close",
            Command::ResolveOutreach(_) => "outreach-resolve",
            Command::OutreachAttempt(_) => "outreach-attempt",
            Command::DocumentSections(_) => "document-sections",
            Command::DocumentComplete(_) => "document-complete",
            Command::Note(_) => "note",
            Command::DocumentComment(_) => "document-comment",
            Command::JobStart(_) => "job-start",
            Command::JobEnd(_) => "job-end",
            Command::EmploymentStatus(_) => "employment-status",
            Command::Assign(_) => "case-assign",
            Command::DeliveryAck(_) => "delivery-ack",
            Command::TimerFired(_) => "timer",
            Command::WriteConflict(_) => "write-conflict",
            Command::Ignore(_) => "ignored",
        }
    }
}

/// One version of a referral (a ServiceRequest) as it arrived.
#[derive(Debug, Clone)]
pub struct ReferralInput {
    /// Stable identity across channels: the first business identifier, else
    /// the id the sender gave it (see `ingest::classify` for the scoping).
    pub key: String,
    /// `ServiceRequest/{id}` as the sender knows it, when it has one.
    pub resource_ref: Option<String>,
    pub authored_at: Option<OffsetDateTime>,
    pub version: ReferralVersion,
    /// The BaRS message it came in, so the answer can go back the BaRS way.
    pub origin: Option<MessageOrigin>,
    /// `ServiceRequest.status` as sent (`unknown` when absent).
    pub fhir_status: String,
    /// The ServiceRequest as received, serialised once by the classifier
    /// (which runs ahead of the store): kept for pass-through.
    pub raw: String,
    /// BaRS DNA feedback only: the `noshow` Appointment the message carries,
    /// keyed as the booking message keyed it, so the missed appointment
    /// counts towards the discharge rules once, whichever message told us.
    /// `None` for every other referral message.
    pub feedback_appointment: Option<Box<AppointmentInput>>,
}

/// The BaRS message a referral arrived in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageOrigin {
    /// The request's MessageHeader `id`, else its entry's `fullUrl` UUID.
    pub message_header_id: Option<String>,
    /// The request's `Bundle.id`. The published DNA feedback example
    /// (REFRESP01) answers REFREQ01 with `MessageHeader.response.identifier`
    /// equal to this, not to a MessageHeader id (REFREQ01's MessageHeader has
    /// none), so a reply names it.
    #[serde(default)]
    pub bundle_id: Option<String>,
    /// `MessageHeader.source.endpoint`: where answers go.
    pub source_endpoint: Option<String>,
    /// The sender's ODS code, when known.
    pub sender_ods: Option<String>,
    /// The id the sender gave the ServiceRequest (its `id`, else the `fullUrl` UUID).
    pub service_request_id: Option<String>,
}

/// One version of an Appointment as it arrived.
#[derive(Debug, Clone)]
pub struct AppointmentInput {
    pub key: String,
    /// `Appointment.status` as sent (an R4 code, checked by the parser).
    pub status: String,
    /// What the status means for the discharge rules.
    pub attendance: Attendance,
    /// Who cancelled, for a cancelled appointment whose
    /// `cancelationReason` says (see `ingest::classify` for the mapping).
    pub cancelled_by: Option<CancelledBy>,
    /// Which team's appointment it is: what a rule's `applies_to` matches.
    pub service: ServiceContext,
    pub start: Option<OffsetDateTime>,
    pub nhs: NhsField,
    pub source_updated_at: Option<OffsetDateTime>,
    pub content_hash: String,
    /// The Appointment as received, serialised once by the classifier.
    pub raw: String,
}

impl AppointmentInput {
    pub fn attended(&self) -> bool {
        self.attendance == Attendance::Attended
    }

    /// The appointment as the outreach rules see it (no patient data).
    pub fn fact(&self) -> AppointmentFact {
        AppointmentFact {
            key: self.key.clone(),
            start: self.start,
            attendance: self.attendance,
            cancelled_by: self.cancelled_by,
            service: self.service.clone(),
        }
    }
}

/// `ips.referral-decision.v1`, or the same from the API: an employment
/// specialist's decision on a referral.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    #[serde(rename = "type", default)]
    pub event_type: Option<String>,
    pub referral_id: String,
    pub outcome: DecisionOutcome,
    #[serde(default)]
    pub decline_reason: Option<String>,
    #[serde(default)]
    pub decided_by: Option<String>,
}

pub use crate::domain::referral::DecisionOutcome;

/// A finished `EpisodeOfCare`.
#[derive(Debug, Clone)]
pub struct EpisodeFinishedInput {
    /// Its business identifier, else `EpisodeOfCare/{id}`.
    pub key: String,
    pub nhs: NhsField,
    pub ended_at: Option<OffsetDateTime>,
}

/// `POST /api/cases/{id}/close`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CloseCaseInput {
    #[serde(default)]
    pub case_id: String,
    /// Why: a person's reason, required (IPS fidelity item 25).
    pub reason: String,
    pub closed_by: String,
}

/// `POST /api/cases/{id}/outreach/resolve`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResolveOutreachInput {
    #[serde(default)]
    pub case_id: String,
    pub decided_by: String,
    #[serde(default)]
    pub reason: Option<String>,
}

pub const DECISION_EVENT: &str = "ips.referral-decision.v1";

pub const OUTREACH_ATTEMPT_EVENT: &str = "ips.outreach-attempt.v1";

/// `ips.outreach-attempt.v1`, or the same from the API: an employment
/// specialist's attempt to reach someone at risk of discharge (DESIGN §4.2).
///
/// The note is free text about the patient: it is stored and written to the
/// record as plain text (never interpreted as markup; whoever displays it
/// escapes it), and it never appears in a log, an event or a rejection.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutreachAttemptInput {
    #[serde(rename = "type", default)]
    pub event_type: Option<String>,
    pub case_id: String,
    /// The sender's own id for the attempt: a resend with the same id is the
    /// same attempt (idempotency), whichever channel it came by.
    #[serde(default)]
    pub attempt_id: Option<String>,
    pub method: AttemptMethod,
    pub outcome: AttemptOutcome,
    #[serde(with = "time::serde::rfc3339")]
    pub attempted_at: OffsetDateTime,
    #[serde(default)]
    pub note: Option<String>,
    /// Who made the attempt (a name or a staff identifier).
    pub specialist: String,
}

/// The longest note accepted, in characters: a few paragraphs. Longer text
/// belongs in a document, and the limit keeps one message from filling a
/// Communication the record system may truncate.
pub const MAX_NOTE_CHARS: usize = 4000;
/// The longest id (`case_id`, `attempt_id`) accepted, in characters.
pub const MAX_ID_CHARS: usize = 128;
/// The longest `specialist` accepted, in characters.
pub const MAX_SPECIALIST_CHARS: usize = 256;

/// Every problem found in an input, as `(field, message)`. Messages name
/// the rule broken and never repeat the value, so the list can go into a
/// rejection reason, an API error body or a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.summary())]
pub struct InvalidInput {
    pub problems: Vec<(&'static str, String)>,
}

impl InvalidInput {
    /// The problems as `(field, message)` pairs for an API error body.
    pub fn into_fields(self) -> Vec<(String, String)> {
        self.problems
            .into_iter()
            .map(|(f, m)| (f.to_owned(), m))
            .collect()
    }

    /// `field: message; field: message`.
    pub fn summary(&self) -> String {
        self.problems
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What is wrong with an id or a name: empty, longer than `max` characters,
/// or holding a control character (they are single-line). Messages never
/// repeat the value.
pub(crate) fn single_line_problems(v: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    if v.trim().is_empty() {
        out.push("must not be empty".to_owned());
    }
    let n = v.chars().count();
    if n > max {
        out.push(format!("is {n} characters; the limit is {max}"));
    }
    if v.chars().any(char::is_control) {
        out.push("must not contain control characters".to_owned());
    }
    out
}

impl OutreachAttemptInput {
    /// Checks what serde cannot: lengths, emptiness and control characters.
    /// Markup in the note is allowed (it is stored as text, not rendered).
    /// Shared by the queue and the HTTP API so both refuse the same inputs.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let mut problems = Vec::new();
        let mut id = |field: &'static str, v: &str, max: usize| {
            problems.extend(single_line_problems(v, max).into_iter().map(|m| (field, m)));
        };
        id("case_id", &self.case_id, MAX_ID_CHARS);
        if let Some(a) = &self.attempt_id {
            id("attempt_id", a, MAX_ID_CHARS);
        }
        id("specialist", &self.specialist, MAX_SPECIALIST_CHARS);
        if let Some(note) = &self.note {
            let n = note.chars().count();
            if n > MAX_NOTE_CHARS {
                problems.push((
                    "note",
                    format!("is {n} characters; the limit is {MAX_NOTE_CHARS}"),
                ));
            }
            if note
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                problems.push((
                    "note",
                    "must not contain control characters other than newline, carriage return and tab"
                        .to_owned(),
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(InvalidInput { problems })
        }
    }
}

/// What kind of deadline a timer is. Stored as its code.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::EnumIter,
)]
#[strum(serialize_all = "kebab-case")]
pub enum TimerKind {
    /// An accepted referral has waited as long as the waiting-list target
    /// allows (IPS: everyone seen within 6 weeks) without assistance starting.
    WaitingListTarget,
    /// A date-based discharge rule's warning starts (or a DNA leaves a
    /// rule's window): assess the case again. Subject: the case id.
    OutreachCheck,
    /// A published VP or IWSP's review is due (or overdue again): chase it
    /// if no comment came. Subject: the document id.
    ReviewChase,
    /// A document sent over MESH should have been acknowledged by now.
    /// Subject: the delivery's local id.
    DeliveryAckDue,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What a message in the bridge's MESH inbox says about a sent document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckInput {
    pub answers: AckRef,
    pub ack: crate::domain::documents::delivery::Ack,
}

/// Which sent message an acknowledgement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckRef {
    /// The ITK3 message id (the sent MessageHeader's id) that an ITK
    /// acknowledgement's `response.identifier` quotes.
    ItkMessage(String),
    /// The `mex-LocalID` a MESH report carries back.
    LocalId(String),
}

/// A due timer, claimed in the transaction that applies it.
#[derive(Debug, Clone)]
pub struct TimerFired {
    pub id: i64,
    pub kind: TimerKind,
    pub subject: String,
    pub due_at: OffsetDateTime,
    pub payload: Value,
}

/// A 412 handed back by the outbox dispatcher.
#[derive(Debug, Clone)]
pub struct WriteConflict {
    /// The outbox row that met the conflict.
    pub outbox_id: i64,
    pub ordering_key: String,
    /// The update as it was queued.
    pub update: super::outbox::FhirUpdate,
    /// The resource as the server holds it now (`None`: it is gone).
    pub current: Option<Value>,
    /// Its current version.
    pub current_version: Option<String>,
}
