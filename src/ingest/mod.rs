//! Turning transport input into commands the engine can apply.
//!
//! `guard` checks the bytes (size, UTF-8, duplicate keys, depth); `fhir_view`
//! reads the few FHIR elements the bridge needs; `classify` decides what a
//! message is (a referral, an appointment, an ES event) or why it is rejected;
//! `bars` names resources of BaRS messages that carry only a `fullUrl`.
//! Everything here is synchronous and free of I/O, so a poison message costs
//! CPU only and never reaches the store.

pub mod bars;
pub mod classify;
pub mod fhir_view;
pub mod guard;
pub mod reject;

pub use classify::{Command, classify};
pub use guard::Limits;
pub use reject::Rejection;
