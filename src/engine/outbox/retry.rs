//! When to try a failed delivery again, per kind of message.
//!
//! The attempt count lives on the outbox row (a retry may happen in another
//! process after a restart), so the delay for attempt `n` is computed from
//! `n` rather than by holding a running iterator: backon's exponential
//! builder, with jitter, stepped to the row's attempt.

use super::OutboxKind;
use crate::config::{OutboxRetrySettings, RetrySettings};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    builder: ExponentialBuilder,
    max_attempts: u32,
}

impl RetryPolicy {
    pub fn new(s: &RetrySettings) -> Self {
        RetryPolicy {
            builder: ExponentialBuilder::default()
                .with_min_delay(s.min_delay)
                .with_max_delay(s.max_delay)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
            max_attempts: s.max_attempts,
        }
    }

    /// Whether a row that has been tried `attempts` times should be parked.
    pub fn gives_up(&self, attempts: i64) -> bool {
        attempts >= i64::from(self.max_attempts)
    }

    /// The delay before attempt `attempts + 1`.
    pub fn delay(&self, attempts: i64) -> Duration {
        let step = attempts.clamp(1, 64) as usize - 1;
        self.builder
            .build()
            .nth(step)
            .unwrap_or(Duration::from_secs(1))
    }
}

/// One policy per kind of message, from `[outbox.retry.*]`.
#[derive(Debug, Clone)]
pub struct Policies {
    fhir: RetryPolicy,
    events: RetryPolicy,
    mesh: RetryPolicy,
}

impl Policies {
    pub fn new(s: &OutboxRetrySettings) -> Self {
        Policies {
            fhir: RetryPolicy::new(&s.fhir),
            events: RetryPolicy::new(&s.events),
            mesh: RetryPolicy::new(&s.mesh),
        }
    }

    pub fn for_kind(&self, kind: OutboxKind) -> &RetryPolicy {
        match kind {
            OutboxKind::Event => &self.events,
            OutboxKind::MeshSend => &self.mesh,
            _ => &self.fhir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(&RetrySettings {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_attempts: 5,
        })
    }

    #[test]
    fn delays_grow_and_stay_under_the_cap_with_jitter() {
        let p = policy();
        let first = p.delay(1);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        let later = p.delay(4);
        assert!(later >= Duration::from_millis(800), "{later:?}");
        for n in 1..60 {
            assert!(p.delay(n) <= Duration::from_secs(20), "attempt {n}");
        }
    }

    #[test]
    fn gives_up_at_max_attempts() {
        let p = policy();
        assert!(!p.gives_up(4));
        assert!(p.gives_up(5));
    }
}
