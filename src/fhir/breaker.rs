//! A small circuit breaker per upstream.
//!
//! Hand-written: the crates on offer (`failsafe`, `circuitbreaker-rs`) bring
//! their own retry and clock abstractions that would fight `backon`; what is
//! needed here is a counter and a deadline.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::default()),
        }
    }

    /// `Err(remaining)` while open. After the cooldown one trial request is let through.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.open_until {
            Some(until) if now < until => Err(until - now),
            Some(_) => {
                // Half-open: allow this request; a failure re-opens at once.
                s.open_until = None;
                s.consecutive_failures = self.threshold.saturating_sub(1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn record(&self, ok: bool, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            *s = State::default();
        } else {
            s.consecutive_failures += 1;
            if s.consecutive_failures >= self.threshold {
                s.open_until = Some(now + self.cooldown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_half_opens_after_cooldown() {
        let b = Breaker::new(2, Duration::from_secs(10));
        let t = Instant::now();
        b.record(false, t);
        assert!(b.check(t).is_ok());
        b.record(false, t);
        assert!(b.check(t + Duration::from_secs(1)).is_err());
        assert!(
            b.check(t + Duration::from_secs(11)).is_ok(),
            "half-open trial"
        );
        b.record(false, t + Duration::from_secs(11));
        assert!(
            b.check(t + Duration::from_secs(12)).is_err(),
            "trial failure re-opens"
        );
        b.record(true, t + Duration::from_secs(30));
        assert!(b.check(t + Duration::from_secs(30)).is_ok());
    }
}
