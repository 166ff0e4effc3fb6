//! The outbox dispatcher: delivers outbox rows to their sinks.
//!
//! A pipeline, not rounds: rows are claimed with a lease while there is room
//! (`batch_size` rows waiting or in flight, `concurrency` of them talking to
//! sinks), each is delivered on a task of its own, and outcomes are
//! recorded in groups: at once when nothing else is in flight, otherwise
//! when a quarter of a batch has finished or the oldest outcome has waited
//! [`SETTLE_WAIT`], whichever comes first. (Recording each handful as it
//! came made a commit per few rows, and the store the write path's limit.)
//! The commit runs on a task of its own, one at a time, while this loop
//! goes on joining deliveries and claiming: awaited here, each commit and
//! each claim queued behind one stopped the loop for milliseconds, in which
//! the sinks ran out of claimed rows (the write path measured 0.52–0.58× a
//! plain HTTP client that way).
//! Why a pipeline: a round that settles only when its
//! slowest row finishes let a second dispatcher re-claim rows still in
//! flight once the lease ran out (a row may take minutes, with retries and
//! `Retry-After`); and a lease long enough for the worst case would stall
//! recovery after a crash. So the lease stays short and is renewed for every
//! row in flight, every third of a lease, until its outcome is recorded.
//!
//! Rows that share an ordering key (one case) are never in flight together:
//! the claim skips a row while an earlier row of its key is pending. Every
//! write is idempotent (see the module above), so a crash between the remote
//! write and the record of it delivers again harmlessly.

use super::retry::Policies;
use super::{Delivered, OnConflict, OutboxMessage, SinkError, Sinks};
use crate::config::OutboxSettings;
use crate::engine::command::{Command, Inbound, Source, WriteConflict};
use crate::engine::{Engine, ms};
use crate::store::{OutboxRow, Settlement};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a known outcome may wait for others to share its commit. Short:
/// the next row of the same case is not claimed until this one is recorded.
const SETTLE_WAIT: Duration = Duration::from_millis(5);

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until_or_never(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub struct Dispatcher {
    engine: Engine,
    sinks: Sinks,
    settings: OutboxSettings,
    policies: Policies,
    /// At most `concurrency` deliveries talk to sinks at once; up to
    /// `batch_size` rows may be claimed and waiting for a turn.
    permits: Arc<Semaphore>,
}

/// What one delivery task hands back.
struct Finished {
    row: OutboxRow,
    outcome: Result<Delivered, SinkError>,
}

impl Dispatcher {
    pub fn new(engine: Engine, sinks: Sinks, settings: OutboxSettings) -> Self {
        let policies = Policies::new(&settings.retry);
        Dispatcher {
            engine,
            sinks,
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings,
            policies,
        }
    }

    /// Delivers until `shutdown`; deliveries in flight are finished and
    /// recorded first (bounded by their own timeouts).
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut in_flight: JoinSet<Finished> = JoinSet::new();
        // Which row each delivery task carries (for a task that panics).
        // Rows held, whose leases are renewed, are these, the finished ones
        // and those of the commit under way (see `held`).
        let mut tasks: HashMap<tokio::task::Id, i64> = HashMap::new();
        // Outcomes known but not yet recorded, and since when the oldest waits.
        let mut finished: Vec<Finished> = Vec::new();
        let mut oldest: Option<tokio::time::Instant> = None;
        // The commit under way, off this loop, and the rows it records. One
        // at a time (the store has one writer anyway); outcomes that finish
        // meanwhile make the next one's group.
        let mut settling: Option<tokio::task::JoinHandle<()>> = None;
        let mut settling_ids: Vec<i64> = Vec::new();
        let renew_every = (this.settings.lease / 3).max(Duration::from_millis(50));
        let mut renew = tokio::time::interval(renew_every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !shutdown.is_cancelled() {
                this.fill(&mut in_flight, &mut tasks).await;
            } else if in_flight.is_empty() && finished.is_empty() && settling.is_none() {
                return;
            }
            if settling.is_none()
                && !finished.is_empty()
                && (in_flight.is_empty()
                    || finished.len() >= this.settle_group()
                    || oldest.is_some_and(|t| t.elapsed() >= SETTLE_WAIT))
            {
                let batch = std::mem::take(&mut finished);
                settling_ids = batch.iter().map(|f| f.row.id).collect();
                oldest = None;
                settling = Some(tokio::spawn(this.clone().record(batch)));
            }
            let record_by = oldest
                .filter(|_| settling.is_none())
                .map(|t| t + SETTLE_WAIT);
            tokio::select! {
                Some(done) = in_flight.join_next_with_id() => {
                    take(done, &mut tasks, &mut finished);
                    while let Some(more) = in_flight.try_join_next_with_id() {
                        take(more, &mut tasks, &mut finished);
                    }
                    if !finished.is_empty() {
                        oldest.get_or_insert_with(tokio::time::Instant::now);
                    }
                }
                _ = async { settling.as_mut().expect("guarded").await }, if settling.is_some() => {
                    settling = None;
                    // Let the rows go whether or not the commit succeeded: a
                    // row whose outcome was not recorded is no longer renewed,
                    // so its lease runs out and it is delivered again (harmless).
                    settling_ids.clear();
                }
                _ = sleep_until_or_never(record_by) => {}
                _ = renew.tick(), if !idle(&tasks, &finished, &settling_ids) => {
                    let now = ms(this.engine.now());
                    let until = now + this.settings.lease.as_millis() as i64;
                    let held = held(&tasks, &finished, &settling_ids);
                    if let Err(e) = this.engine.store.outbox_extend(&held, until).await {
                        tracing::warn!(error = %e, rows = held.len(), "could not renew outbox leases; another worker may deliver these rows again (harmless)");
                    }
                }
                _ = tokio::time::sleep(this.settings.poll_interval), if idle(&tasks, &finished, &settling_ids) => {}
                _ = this.engine.outbox_wake.notified(), if !shutdown.is_cancelled() => {}
                _ = shutdown.cancelled(), if !shutdown.is_cancelled() => {}
            }
        }
    }

    /// Outcomes recorded in one commit once this many are known (while
    /// other rows are still in flight): a commit costs about the same for
    /// one row as for a hundred, so many small ones made the store, not
    /// the sink, the limit of the write path.
    fn settle_group(&self) -> usize {
        (self.settings.batch_size as usize / 4).max(1)
    }

    /// Claims due rows while there is room, and starts their deliveries.
    ///
    /// Room is counted in rows not yet delivered (waiting for a turn or in
    /// flight), not in rows held: finished rows wait for a commit that runs
    /// beside this loop, and counting them stalled the sinks while a commit
    /// ran (a claim or a commit takes milliseconds, in which the sinks
    /// finish a hundred rows). So up to `batch_size` rows wait for delivery,
    /// plus the outcomes of one settle group or two waiting to be recorded.
    async fn fill(
        &self,
        in_flight: &mut JoinSet<Finished>,
        tasks: &mut HashMap<tokio::task::Id, i64>,
    ) {
        // Claim in large batches (one statement for many rows), not a row at
        // a time as slots free up: once a quarter of a batch has room.
        let batch = self.settings.batch_size as usize;
        let room = batch.saturating_sub(in_flight.len());
        if room == 0 || (!in_flight.is_empty() && room < batch / 4) {
            return;
        }
        let limit = room as u32;
        let now = ms(self.engine.now());
        let lease_until = now + self.settings.lease.as_millis() as i64;
        let rows = match self
            .engine
            .store
            .outbox_claim(now, lease_until, limit)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "outbox claim failed; will try again");
                return;
            }
        };
        for row in rows {
            let row_id = row.id;
            let sinks = self.sinks.clone();
            let permits = self.permits.clone();
            let handle = in_flight.spawn(async move {
                // The semaphore is never closed, so acquiring cannot fail.
                let _turn = permits.acquire_owned().await.ok();
                let outcome = match OutboxMessage::decode(&row.kind, &row.payload) {
                    Ok(msg) => match sinks.for_message(&msg) {
                        Some(sink) => sink.deliver(&msg).await,
                        None => Err(SinkError::transient(
                            "MESH is not configured here (mesh.enabled = false); the message waits",
                        )),
                    },
                    Err(e) => Err(SinkError::permanent(e.to_string())),
                };
                Finished { row, outcome }
            });
            tasks.insert(handle.id(), row_id);
        }
    }

    /// Records how deliveries ended: one commit for all plain outcomes; a
    /// conflict to hand back goes through the engine (the handler decides
    /// again in the same transaction that settles the row).
    async fn record(self: Arc<Self>, finished: Vec<Finished>) {
        let mut settled = Vec::with_capacity(finished.len());
        for f in finished {
            match f.outcome {
                Ok(Delivered::Done { result }) => {
                    // In memory: lets a scrape (or a benchmark) follow
                    // delivery without a COUNT over the outbox.
                    metrics::counter!("ips_outbox_delivered_total", "kind" => kind_label(&f.row.kind))
                        .increment(1);
                    settled.push(Settlement::Done {
                        id: f.row.id,
                        at: ms(self.engine.now()),
                        result,
                    })
                }
                Ok(Delivered::Conflict {
                    current,
                    version,
                    reason,
                }) => {
                    if let Some(s) = self.conflict(&f.row, current, version, reason).await {
                        settled.push(s);
                    }
                }
                Err(e) => settled.push(self.failure(&f.row, e)),
            }
        }
        if let Err(e) = self.engine.store.outbox_settle(&settled).await {
            // The leases run out and the rows are delivered again: harmless.
            tracing::warn!(error = %e, rows = settled.len(), "could not record outbox outcomes; they will be delivered again");
        }
    }

    fn failure(&self, row: &OutboxRow, e: SinkError) -> Settlement {
        // The kind code picks the policy; the payload need not be decoded again.
        let kind = row.kind.parse().unwrap_or(super::OutboxKind::FhirCreate);
        let policy = self.policies.for_kind(kind);
        if e.permanent || policy.gives_up(row.attempts) {
            tracing::error!(error = %e, outbox_id = row.id, kind = %row.kind, attempts = row.attempts, "outbox row parked as failed");
            metrics::counter!("ips_outbox_parked_total", "kind" => kind_label(&row.kind))
                .increment(1);
            return Settlement::Failed {
                id: row.id,
                error: e.message,
            };
        }
        let delay = e.retry_after.unwrap_or_else(|| policy.delay(row.attempts));
        tracing::info!(error = %e, outbox_id = row.id, retry_in = ?delay, "outbox delivery failed; will retry");
        Settlement::Retry {
            id: row.id,
            next_attempt_at: ms(self.engine.now()) + delay.as_millis() as i64,
            error: e.message,
        }
    }

    /// A versioned update met a newer version. Parked, or handed back to the
    /// handler as a command; `None` when the engine settled the row itself.
    async fn conflict(
        &self,
        row: &OutboxRow,
        current: Option<serde_json::Value>,
        version: Option<String>,
        reason: String,
    ) -> Option<Settlement> {
        let update = match OutboxMessage::decode(&row.kind, &row.payload) {
            Ok(OutboxMessage::FhirUpdate(u)) if u.on_conflict == OnConflict::HandBack => u,
            _ => {
                metrics::counter!("ips_outbox_parked_total", "kind" => kind_label(&row.kind))
                    .increment(1);
                return Some(Settlement::Failed {
                    id: row.id,
                    error: reason,
                });
            }
        };
        let inbound = Inbound {
            source: Source::Outbox,
            message_id: format!("outbox-conflict-{}-{}", row.id, row.attempts),
            received_at: self.engine.now(),
            command: Ok(Command::WriteConflict(Box::new(WriteConflict {
                outbox_id: row.id,
                ordering_key: row.ordering_key.clone(),
                update,
                current,
                current_version: version,
            }))),
        };
        match self.engine.execute(&[inbound], None).await {
            Ok(_) => None,
            Err(e) => Some(self.failure(row, SinkError::transient(e.to_string()))),
        }
    }
}

/// Rows claimed and not yet recorded: in flight, finished, or in the commit
/// under way.
fn held(
    tasks: &HashMap<tokio::task::Id, i64>,
    finished: &[Finished],
    settling: &[i64],
) -> Vec<i64> {
    tasks
        .values()
        .copied()
        .chain(finished.iter().map(|f| f.row.id))
        .chain(settling.iter().copied())
        .collect()
}

/// Holds no row (see [`held`]).
fn idle(tasks: &HashMap<tokio::task::Id, i64>, finished: &[Finished], settling: &[i64]) -> bool {
    tasks.is_empty() && finished.is_empty() && settling.is_empty()
}

/// Takes a delivery task's result. A task that panicked has no outcome to
/// record: its row is let go, so its lease runs out and it is delivered again.
fn take(
    joined: Result<(tokio::task::Id, Finished), tokio::task::JoinError>,
    tasks: &mut HashMap<tokio::task::Id, i64>,
    finished: &mut Vec<Finished>,
) {
    match joined {
        Ok((id, f)) => {
            tasks.remove(&id);
            finished.push(f);
        }
        Err(e) => {
            if let Some(row) = tasks.remove(&e.id()) {
                tracing::error!(
                    outbox_id = row,
                    "an outbox delivery task failed ({e}); the row will be delivered again when its lease runs out"
                );
            }
        }
    }
}

/// Metric labels are the known kind codes only, never a stored string as is.
fn kind_label(kind: &str) -> &'static str {
    kind.parse::<super::OutboxKind>()
        .map(super::OutboxKind::as_str)
        .unwrap_or("unknown")
}
