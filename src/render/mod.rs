//! What the bridge writes to other systems, built from stored facts: FHIR
//! resources for the record, BaRS messages for the referrer.
//!
//! Pure functions of their inputs (no I/O, no clock), so each shape is unit
//! tested on its own and the engine only decides *when* to write. Every
//! created resource carries a business identifier in the configured system,
//! so that a conditional create makes it exactly once however often the
//! outbox delivers it.

pub mod bars_response;
pub mod communication;
pub mod decision_task;
pub mod document_record;
pub mod documents;
pub mod outreach;
mod referral_ref;
pub mod reports;
pub mod send_document;

pub use bars_response::BarsResponse;
pub use communication::{CodedText, OutreachCommunication};
pub use decision_task::DecisionTask;
pub use referral_ref::ReferralRef;
