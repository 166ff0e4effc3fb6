//! ips-bridge: joins NHS clinical systems and IPS employment services.
//!
//! See README.md for the architecture; each module's doc says what it owns.

pub mod amqp;
pub mod app;
pub mod config;
pub mod domain;
pub mod engine;
pub mod fhir;
pub mod http;
pub mod ingest;
pub mod mesh;
pub mod render;
pub mod store;
pub mod telemetry;
pub mod web;
