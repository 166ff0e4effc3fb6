//! FHIR adapter: the HTTP client (auth, retries, circuit breaker, conditional
//! writes), the ServiceRequest poller, and the sink that does the outbox's FHIR writes.

pub mod auth;
pub mod breaker;
pub mod client;
pub mod error;
pub mod poller;
mod reply;
mod search;
pub mod sink;

pub use client::{FhirClient, Written};
pub use error::FhirError;
