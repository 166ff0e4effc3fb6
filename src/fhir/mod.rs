//! FHIR adapter: the HTTP client (auth, retries, circuit breaker, conditional
//! writes), the ServiceRequest poller, and the resources the bridge writes.

pub mod auth;
pub mod breaker;
pub mod client;
pub mod error;
pub mod poller;
pub mod resources;

pub use client::{FhirClient, Written};
pub use error::FhirError;
