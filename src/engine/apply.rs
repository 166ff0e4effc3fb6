//! Applying a batch of inbound messages in one transaction.
//!
//! Batching is what lets the bridge keep up with the broker: one commit (one
//! fsync) covers many messages, and the consumer acknowledges them together
//! after it. Durability is not traded: nothing is acknowledged before the
//! commit that holds it.

use super::handlers::{self, HandlerError};
use super::{Engine, ms};
use crate::ingest::{Command, Rejection};
use crate::store::pending::Prefetch;
use crate::store::{InboxEntry, StoreError};
use time::OffsetDateTime;

/// One message from any source, classified.
#[derive(Debug)]
pub struct Inbound {
    /// `amqp`, `fhir-poll`, ...: the dedupe namespace.
    pub source: &'static str,
    pub message_id: String,
    pub received_at: OffsetDateTime,
    pub command: Result<Command, Rejection>,
}

/// A fact to report once the transaction holding it has committed.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    ReferralReceived {
        source_kind: &'static str,
        incomplete: bool,
    },
    Decision {
        outcome: &'static str,
    },
    FirstContact {
        days: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Processed {
        kind: &'static str,
        signals: Vec<Signal>,
    },
    /// Applied, but it changed nothing (same version seen on another channel).
    Unchanged {
        kind: &'static str,
    },
    /// Seen before under the same message id.
    Duplicate,
    Ignored(String),
    Rejected(Rejection),
}

impl Applied {
    pub fn outcome(&self) -> &'static str {
        match self {
            Applied::Processed { .. } => "processed",
            Applied::Unchanged { .. } => "unchanged",
            Applied::Duplicate => "duplicate",
            Applied::Ignored(_) => "ignored",
            Applied::Rejected(_) => "dead-lettered",
        }
    }
}

impl Engine {
    /// Applies `batch` in one transaction, with `cursor` (source, value)
    /// stored in the same transaction. On a store error nothing is applied
    /// and the caller retries the whole batch (dedupe makes that safe).
    pub async fn apply_batch(
        &self,
        batch: &[Inbound],
        cursor: Option<(&str, &str)>,
    ) -> Result<Vec<Applied>, StoreError> {
        let now = self.now();
        let now_ms = ms(now);
        let mut tx = self.store.begin().await?;
        // One statement records every message in the inbox; one prefetch loads
        // what the handlers will read. The per-message loop then mostly works
        // in memory (see store::pending).
        let entries: Vec<InboxEntry> = batch
            .iter()
            .filter_map(|m| {
                let cmd = m.command.as_ref().ok()?;
                Some(InboxEntry {
                    source: m.source,
                    message_id: &m.message_id,
                    received_at: ms(m.received_at),
                    processed_at: now_ms,
                    kind: cmd.kind(),
                    outcome: "applied",
                })
            })
            .collect();
        let mut fresh = tx.inbox_record_many(&entries).await?.into_iter();
        tx.prefetch(&prefetch_for(batch, &self.ctx.patient_key))
            .await?;
        let mut results = Vec::with_capacity(batch.len());
        let mut queued_outbox = false;
        for m in batch {
            let cmd = match &m.command {
                Err(r) => {
                    results.push(Applied::Rejected(r.clone()));
                    continue;
                }
                Ok(c) => c,
            };
            if !fresh.next().unwrap_or(false) {
                results.push(Applied::Duplicate);
                continue;
            }
            let applied = match cmd {
                Command::Ignore(reason) => Ok(Applied::Ignored(reason.clone())),
                Command::Referral(r) => {
                    handlers::referral(tx.as_mut(), &self.ctx, r, m.source, now).await
                }
                Command::Appointment(a) => {
                    handlers::appointment(tx.as_mut(), &self.ctx, a, now).await
                }
                Command::Decision(d) => {
                    handlers::decision_event(tx.as_mut(), &self.ctx, d, now).await
                }
            };
            match applied {
                Ok(a) => {
                    queued_outbox |= matches!(a, Applied::Processed { .. });
                    results.push(a);
                }
                Err(HandlerError::Reject(r)) => {
                    tx.inbox_forget(m.source, &m.message_id).await?;
                    results.push(Applied::Rejected(r));
                }
                Err(HandlerError::Store(e)) => return Err(e),
            }
        }
        if let Some((source, value)) = cursor {
            tx.cursor_set(source, value, now_ms).await?;
        }
        tx.commit().await?;
        for (m, r) in batch.iter().zip(&results) {
            record_metrics(m.source, r);
        }
        if queued_outbox {
            self.outbox_wake.notify_one();
        }
        Ok(results)
    }
}

/// The keys a batch's commands will look up, for one bulk prefetch.
fn prefetch_for(batch: &[Inbound], key: &crate::domain::PatientKey) -> Prefetch {
    let mut want = Prefetch::default();
    for m in batch {
        match &m.command {
            Ok(Command::Referral(r)) => {
                want.referral_keys.push(r.key.clone());
                if let Some(n) = r.version.nhs.valid() {
                    want.nhs_hashes.push(n.lookup_hash(key));
                }
            }
            Ok(Command::Appointment(a)) => {
                want.appointment_keys.push(a.key.clone());
                if let Some(n) = a.nhs.valid() {
                    want.nhs_hashes.push(n.lookup_hash(key));
                }
            }
            _ => {}
        }
    }
    want
}

/// Counts outcomes and reports committed signals. Labels are codes only.
pub fn record_metrics(source: &'static str, r: &Applied) {
    metrics::counter!("ips_messages_total", "source" => source, "outcome" => r.outcome())
        .increment(1);
    match r {
        Applied::Rejected(rej) => {
            metrics::counter!("ips_dead_letters_total", "code" => rej.code).increment(1)
        }
        Applied::Processed { signals, .. } => report_signals(signals),
        _ => {}
    }
}

pub fn report_signals(signals: &[Signal]) {
    for s in signals {
        match s {
            Signal::ReferralReceived {
                source_kind,
                incomplete,
            } => {
                metrics::counter!("ips_referrals_received_total", "source" => *source_kind)
                    .increment(1);
                if *incomplete {
                    metrics::counter!("ips_referrals_incomplete_total").increment(1);
                }
            }
            Signal::Decision { outcome } => {
                metrics::counter!("ips_referral_decisions_total", "outcome" => *outcome)
                    .increment(1)
            }
            Signal::FirstContact { days } => {
                metrics::histogram!("ips_referral_days_to_first_contact").record(*days)
            }
        }
    }
}
