//! Retention: the inbox and delivered outbox rows would otherwise grow without
//! bound. Pending and failed outbox rows are never purged: they are work.

use super::{Engine, ms};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Housekeeping {
    pub engine: Engine,
    pub inbox_retention: Duration,
    pub outbox_retention: Duration,
    pub interval: Duration,
}

impl Housekeeping {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let now = ms(self.engine.now());
            let inbox_before = now - self.inbox_retention.as_millis() as i64;
            let outbox_before = now - self.outbox_retention.as_millis() as i64;
            match self.engine.store.purge(inbox_before, outbox_before).await {
                Ok((0, 0)) => {}
                Ok((inbox, outbox)) => tracing::info!(inbox, outbox, "purged rows past retention"),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed; will try again"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
