//! The durable timer runner.
//!
//! Deadlines (waiting-list targets today; discharge-rule deadlines and
//! review chasers next) are rows in the store, written in the transaction
//! that decided them. The runner sleeps until the next one is due, a commit
//! tells it a new one exists, or the poll interval passes (the clock may be
//! a test's, which moves without telling anyone), then fires what is due
//! through [`Engine::fire_due_timers`]: applied and deleted in one
//! transaction, so a restart neither loses nor repeats a deadline.

use super::{Engine, from_ms};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub struct TimerRunner {
    engine: Engine,
    /// Woken when a commit may have scheduled an earlier timer.
    wake: Arc<Notify>,
    /// The longest sleep between looks.
    poll_interval: Duration,
    batch: i64,
}

impl TimerRunner {
    pub fn new(engine: Engine, poll_interval: Duration) -> Self {
        TimerRunner {
            wake: engine.timer_wake.clone(),
            engine,
            poll_interval,
            batch: 100,
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let fired = match self.engine.fire_due_timers(self.batch).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "firing due timers failed; will try again");
                    0
                }
            };
            if fired > 0 {
                tracing::debug!(fired, "timers fired");
                metrics::counter!("ips_timers_fired_total").increment(fired as u64);
                continue;
            }
            let sleep = match self.engine.store.timer_next_due().await {
                Ok(Some(due)) => {
                    let until = from_ms(due) - self.engine.now();
                    Duration::try_from(until)
                        .unwrap_or(Duration::ZERO)
                        .min(self.poll_interval)
                }
                _ => self.poll_interval,
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
