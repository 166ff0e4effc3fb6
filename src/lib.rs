//! ips-bridge: joins NHS clinical systems and IPS employment services.
//!
//! See README.md for the architecture; each module's doc says what it owns.

pub mod config;
pub mod domain;
pub mod ingest;
pub mod store;
pub mod telemetry;
