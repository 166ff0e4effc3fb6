//! The pure core: rules about NHS numbers, referrals and cases.
//!
//! Nothing in here performs I/O, spawns tasks or reads the clock: time is
//! always a parameter. That keeps every clinical rule testable with plain
//! unit and property tests, and lets the engine replay decisions exactly.

pub mod case;
pub mod documents;
pub mod employment;
pub mod nhs_number;
pub mod outreach;
pub mod patient_key;
pub mod referral;
pub mod reports;
pub mod source;
pub mod staff;
pub mod systems;

pub use nhs_number::{NhsNumber, NhsNumberError};
pub use patient_key::{PatientKey, PatientKeyError};
