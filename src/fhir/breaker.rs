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

    /// `Err(remaining)` while open. After the cooldown one trial request is
    /// let through; granting it re-opens the breaker for another cooldown, so
    /// the requests that arrive while the trial is out wait too. A success
    /// closes it, a failure keeps it open.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.open_until {
            Some(until) if now < until => Err(until - now),
            Some(_) => {
                s.open_until = Some(now + self.cooldown);
                s.consecutive_failures = self.threshold.saturating_sub(1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The outcome of a request that passed [`check`](Self::check).
    /// `retry_after` is the server's own `Retry-After` on a 429 or 503: the
    /// server has said when to come back, so the breaker opens until then
    /// for every caller, however few failures came before. Returns whether
    /// the breaker is open now.
    pub fn record(&self, ok: bool, retry_after: Option<Duration>, now: Instant) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            *s = State::default();
            return false;
        }
        s.consecutive_failures += 1;
        let mut until = s.open_until;
        if s.consecutive_failures >= self.threshold {
            until = until.max(Some(now + self.cooldown));
        }
        if let Some(wait) = retry_after {
            until = until.max(Some(now + wait));
        }
        s.open_until = until;
        until.is_some_and(|u| now < u)
    }

    /// How long the breaker stays open, if it is (for `/readyz` and metrics).
    pub fn open_for(&self, now: Instant) -> Option<Duration> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.open_until.and_then(|u| u.checked_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_half_opens_after_cooldown() {
        let b = Breaker::new(2, Duration::from_secs(10));
        let t = Instant::now();
        b.record(false, None, t);
        assert!(b.check(t).is_ok());
        b.record(false, None, t);
        assert!(b.check(t + Duration::from_secs(1)).is_err());
        assert!(
            b.check(t + Duration::from_secs(11)).is_ok(),
            "half-open trial"
        );
        b.record(false, None, t + Duration::from_secs(11));
        assert!(
            b.check(t + Duration::from_secs(12)).is_err(),
            "trial failure re-opens"
        );
        b.record(true, None, t + Duration::from_secs(30));
        assert!(b.check(t + Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn one_trial_at_a_time_while_half_open() {
        let b = Breaker::new(1, Duration::from_secs(10));
        let t = Instant::now();
        b.record(false, None, t);
        let later = t + Duration::from_secs(10);
        assert!(b.check(later).is_ok(), "the trial");
        assert!(
            b.check(later).is_err(),
            "a second caller waits for the trial"
        );
        b.record(true, None, later + Duration::from_secs(1));
        assert!(
            b.check(later + Duration::from_secs(1)).is_ok(),
            "closed again"
        );
    }

    #[test]
    fn retry_after_opens_the_breaker_at_once_for_that_long() {
        let b = Breaker::new(5, Duration::from_secs(10));
        let t = Instant::now();
        b.record(false, Some(Duration::from_secs(60)), t);
        assert_eq!(b.open_for(t), Some(Duration::from_secs(60)));
        assert!(b.check(t + Duration::from_secs(59)).is_err());
        assert!(b.check(t + Duration::from_secs(60)).is_ok());
        // A shorter Retry-After never shortens a longer opening.
        b.record(
            false,
            Some(Duration::from_secs(1)),
            t + Duration::from_secs(60),
        );
        assert!(b.open_for(t + Duration::from_secs(61)).is_some());
    }
}
