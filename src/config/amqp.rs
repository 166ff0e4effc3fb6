//! `[amqp]`: the broker, its exchanges and queues, and how the consumer batches.

use super::checks::{positive, positive_durations, redact_url, serialize_url_redacted};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AmqpSettings {
    #[serde(serialize_with = "serialize_url_redacted")]
    pub url: String,
    pub url_file: String,
    pub inbound_exchange: String,
    pub inbound_bindings: Vec<String>,
    pub inbound_queue: String,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    pub events_exchange: String,
    pub prefetch: u16,
    pub delivery_limit: u32,
    pub single_active_consumer: bool,
    /// Declare exchanges, queues and bindings on every connect (the default).
    /// Off: the topology is the broker's (deploy/rabbitmq/definitions.json),
    /// the bridge only checks that each exchange and queue exists (passive
    /// declares, which need no `configure` permission) and says which is
    /// missing.
    pub declare_topology: bool,
    pub batch_size: usize,
    #[serde(with = "humantime_serde")]
    pub batch_wait: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_min_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
}

impl AmqpSettings {
    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        if !(self.url.starts_with("amqp://") || self.url.starts_with("amqps://"))
            || self.url.parse::<lapin::uri::AMQPUri>().is_err()
        {
            bad(
                "amqp.url",
                format!(
                    "expected an amqp:// or amqps:// URL, got {:?}",
                    redact_url(&self.url)
                ),
            );
        }
        for (k, v) in [
            ("amqp.inbound_exchange", &self.inbound_exchange),
            ("amqp.inbound_queue", &self.inbound_queue),
            ("amqp.dead_letter_exchange", &self.dead_letter_exchange),
            ("amqp.dead_letter_queue", &self.dead_letter_queue),
            ("amqp.events_exchange", &self.events_exchange),
        ] {
            if v.trim().is_empty() {
                bad(k, "must not be empty".into());
            }
        }
        positive("amqp.prefetch", self.prefetch as u64, bad);
        positive("amqp.batch_size", self.batch_size as u64, bad);
        positive("amqp.delivery_limit", self.delivery_limit as u64, bad);
        if self.batch_size > self.prefetch as usize {
            bad(
                "amqp.batch_size",
                format!(
                    "must not exceed amqp.prefetch ({}), or batches never fill",
                    self.prefetch
                ),
            );
        }
        positive_durations(
            &[
                ("amqp.batch_wait", self.batch_wait),
                ("amqp.reconnect_min_delay", self.reconnect_min_delay),
                ("amqp.reconnect_max_delay", self.reconnect_max_delay),
            ],
            bad,
        );
    }
}
