//! RabbitMQ adapter (lapin): topology, the inbound consumer, the publisher.

pub mod consumer;
pub mod dlq;
pub mod publisher;
pub mod sink;
pub mod topology;

pub use publisher::Publisher;

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the consumer currently holds a live broker connection (for `/readyz`).
#[derive(Default)]
pub struct BrokerHealth(AtomicBool);

impl BrokerHealth {
    pub fn set(&self, up: bool) {
        self.0.store(up, Ordering::Relaxed);
        metrics::gauge!("ips_broker_connected").set(if up { 1.0 } else { 0.0 });
    }
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Connection properties shared by the consumer and the publisher.
pub fn connection_properties(name: &str) -> lapin::ConnectionProperties {
    lapin::ConnectionProperties::default().with_connection_name(name.into())
}
