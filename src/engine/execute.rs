//! The one commit path: every command, from every source, is applied here.
//!
//! A batch is applied in one transaction: inbox dedupe, the handlers (state,
//! outbox, timers, audit), the poll cursor if any. Batching is what lets the
//! bridge keep up with the broker: one commit (one fsync) covers many
//! messages, and the consumer acknowledges them together after it.
//! Durability is not traded: nothing is acknowledged before the commit that
//! holds it. Metrics and the outbox wake-up happen only after the commit.

use super::command::{Command, Inbound, Source, TimerFired, TimerKind};
use super::handlers::{self, HandlerError};
use super::outcome::{Applied, record_metrics};
use super::rejection::{RejectCode, Rejection};
use super::{Engine, from_ms, ms};
use crate::store::pending::Prefetch;
use crate::store::{InboxEntry, StoreError, TimerRow, Tx};
use strum::IntoEnumIterator;

impl Engine {
    /// Applies `batch` in one transaction, with `cursor` (source, value)
    /// stored in the same transaction. On a store error nothing is applied
    /// and the caller retries the whole batch (dedupe makes that safe).
    pub async fn execute(
        &self,
        batch: &[Inbound],
        cursor: Option<(&str, &str)>,
    ) -> Result<Vec<Applied>, StoreError> {
        let mut tx = self.store.begin().await?;
        let results = self.apply_in(tx.as_mut(), batch).await?;
        if let Some((source, value)) = cursor {
            tx.cursor_set(source, value, ms(self.now())).await?;
        }
        tx.commit().await?;
        self.committed(batch, &results);
        Ok(results)
    }

    /// Applies one command (an API call): [`execute`](Self::execute) for a batch of one.
    pub async fn execute_one(&self, inbound: Inbound) -> Result<Applied, StoreError> {
        let mut results = self.execute(std::slice::from_ref(&inbound), None).await?;
        Ok(results.pop().unwrap_or(Applied::Duplicate))
    }

    /// A person's action, from the API or the pages: applied now, under a
    /// fresh message id (an action is answered once, never deduplicated).
    pub async fn execute_action(
        &self,
        command: super::command::Command,
    ) -> Result<Applied, StoreError> {
        self.execute_one(Inbound {
            source: super::command::Source::Api,
            message_id: uuid::Uuid::new_v4().to_string(),
            received_at: self.now(),
            command: Ok(command),
        })
        .await
    }

    /// The specialists a case can be given to, `(staff id, name)`: the
    /// configured roster and everyone who signed in as a specialist.
    pub async fn roster(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            crate::store::roster(self.store.as_ref(), &self.ctx.team.roster())
                .await?
                .into_iter()
                .collect(),
        )
    }

    /// The snapshot the reports and pages read, with that roster.
    pub async fn team_snapshot(&self) -> Result<crate::domain::reports::Snapshot, StoreError> {
        crate::store::team_snapshot(self.store.as_ref(), &self.ctx.team.roster()).await
    }

    /// Fires the timers due now: claims them (`FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL, so replicas share the work), applies each as a
    /// `TimerFired` command and deletes it, all in one transaction. A crash
    /// before the commit leaves the timers to fire on the next try; after
    /// it, they are gone. Returns how many fired.
    pub async fn fire_due_timers(&self, limit: i64) -> Result<usize, StoreError> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        // Only kinds this version knows: a newer replica's timers wait for it.
        let kinds: Vec<&str> = TimerKind::iter().map(TimerKind::as_str).collect();
        let due = tx.timers_claim_due(ms(now), &kinds, limit).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let batch: Vec<Inbound> = due.iter().map(|t| timer_command(t, now)).collect();
        let results = self.apply_in(tx.as_mut(), &batch).await?;
        for t in &due {
            tx.timer_delete(t.id).await?;
        }
        tx.commit().await?;
        self.committed(&batch, &results);
        Ok(due.len())
    }

    async fn apply_in(
        &self,
        tx: &mut dyn Tx,
        batch: &[Inbound],
    ) -> Result<Vec<Applied>, StoreError> {
        let now = self.now();
        let now_ms = ms(now);
        // One statement records every deduplicated message in the inbox; one
        // prefetch loads what the handlers will read. The per-message loop
        // then mostly works in memory (see store::pending).
        let entries: Vec<InboxEntry> = batch
            .iter()
            .filter(|m| m.source.deduplicates())
            .filter_map(|m| {
                let cmd = m.command.as_ref().ok()?;
                Some(InboxEntry {
                    source: m.source.as_str(),
                    message_id: &m.message_id,
                    received_at: ms(m.received_at),
                    processed_at: now_ms,
                    kind: cmd.kind(),
                    outcome: "applied",
                })
            })
            .collect();
        let mut fresh = if entries.is_empty() {
            Vec::new().into_iter()
        } else {
            tx.inbox_record_many(&entries).await?.into_iter()
        };
        tx.prefetch(&self.prefetch_for(batch)).await?;
        let mut results = Vec::with_capacity(batch.len());
        for m in batch {
            let cmd = match &m.command {
                Err(r) => {
                    results.push(Applied::Rejected(r.clone()));
                    continue;
                }
                Ok(c) => c,
            };
            if m.source.deduplicates() && !fresh.next().unwrap_or(false) {
                results.push(Applied::Duplicate);
                continue;
            }
            match handlers::handle(tx, &self.ctx, cmd, m.source.as_str(), now).await {
                Ok(a) => results.push(a),
                Err(HandlerError::Reject(r)) => {
                    if m.source.deduplicates() {
                        tx.inbox_forget(m.source.as_str(), &m.message_id).await?;
                    }
                    results.push(Applied::Rejected(r));
                }
                Err(HandlerError::Store(e)) => return Err(e),
            }
        }
        Ok(results)
    }

    fn committed(&self, batch: &[Inbound], results: &[Applied]) {
        for (m, r) in batch.iter().zip(results) {
            record_metrics(m.source, r);
        }
        if results
            .iter()
            .any(|a| matches!(a, Applied::Processed { .. }))
        {
            self.outbox_wake.notify_one();
            self.timer_wake.notify_one();
        }
    }

    /// The keys a batch's commands will look up, for one bulk prefetch.
    fn prefetch_for(&self, batch: &[Inbound]) -> Prefetch {
        let mut want = Prefetch::default();
        for m in batch {
            match &m.command {
                Ok(Command::Referral(r)) => {
                    want.referral_keys.push(r.key.clone());
                    if let Some(n) = r.version.nhs.valid() {
                        want.nhs_hashes.push(self.ctx.lookup_hash(n));
                    }
                }
                Ok(Command::Appointment(a)) => {
                    want.appointment_keys.push(a.key.clone());
                    want.outreach = true;
                    if let Some(n) = a.nhs.valid() {
                        want.nhs_hashes.push(self.ctx.lookup_hash(n));
                    }
                }
                _ => {}
            }
        }
        want
    }
}

/// A claimed timer row as a command (its kind was checked by the claim).
fn timer_command(t: &TimerRow, now: time::OffsetDateTime) -> Inbound {
    let command = match t.kind.parse::<TimerKind>() {
        Ok(kind) => Ok(Command::TimerFired(TimerFired {
            id: t.id,
            kind,
            subject: t.subject.clone(),
            due_at: from_ms(t.due_at),
            payload: serde_json::from_str(&t.payload).unwrap_or_default(),
        })),
        Err(_) => Err(Rejection::new(
            RejectCode::InvalidCode,
            format!("timer kind {:?} is not known to this version", t.kind),
        )),
    };
    Inbound {
        source: Source::Timer,
        message_id: format!("timer-{}", t.id),
        received_at: now,
        command,
    }
}
