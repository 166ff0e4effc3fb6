//! What applying a command came to, and the metrics reported once it is committed.

use super::command::Source;
use super::rejection::Rejection;

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
    OutreachFlagged {
        rule: String,
    },
    OutreachResolved {
        resolution: &'static str,
    },
    ClosureByRule {
        cause: &'static str,
    },
    OutreachAttempt {
        method: &'static str,
        outcome: &'static str,
    },
    DocumentPublished {
        kind: &'static str,
    },
    DocumentComment {
        source: &'static str,
    },
    /// From publication to the first comment.
    ReviewTurnaround {
        days: f64,
    },
    ReviewChased,
    /// A MESH delivery changed state (acknowledged, rejected, overdue, unroutable).
    Delivery {
        state: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Processed {
        kind: &'static str,
        signals: Vec<Signal>,
    },
    /// Applied, but it changed nothing (same version seen on another channel,
    /// the same decision repeated, a deadline that no longer applies).
    Unchanged {
        kind: &'static str,
    },
    /// Seen before under the same message id.
    Duplicate,
    Ignored(String),
    Rejected(Rejection),
}

/// Every `outcome` label of `ips_messages_total` (the consumer adds `requeued`).
pub const OUTCOMES: &[&str] = &[
    "processed",
    "unchanged",
    "duplicate",
    "ignored",
    "dead-lettered",
    "requeued",
];

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

/// Counts outcomes and reports committed signals. Labels are codes only.
pub fn record_metrics(source: Source, r: &Applied) {
    metrics::counter!("ips_messages_total", "source" => source.as_str(), "outcome" => r.outcome())
        .increment(1);
    match r {
        Applied::Rejected(rej) if source.deduplicates() => {
            metrics::counter!("ips_dead_letters_total", "code" => rej.code.as_str()).increment(1)
        }
        Applied::Processed { signals, .. } => report_signals(signals),
        _ => {}
    }
}

fn report_signals(signals: &[Signal]) {
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
            Signal::OutreachFlagged { rule } => {
                metrics::counter!("ips_outreach_flags_raised_total", "rule" => rule.clone())
                    .increment(1)
            }
            Signal::OutreachResolved { resolution } => {
                metrics::counter!("ips_outreach_flags_resolved_total", "resolution" => *resolution)
                    .increment(1);
                // A flag resolved by reaching the person is a closure prevented.
                if matches!(*resolution, "attended" | "contacted") {
                    metrics::counter!("ips_outreach_closures_total", "result" => "prevented")
                        .increment(1);
                }
            }
            Signal::ClosureByRule { cause } => {
                metrics::counter!("ips_outreach_closures_total", "result" => "happened", "cause" => *cause)
                    .increment(1)
            }
            Signal::OutreachAttempt { method, outcome } => {
                metrics::counter!("ips_outreach_attempts_total", "method" => *method, "outcome" => *outcome)
                    .increment(1)
            }
            Signal::DocumentPublished { kind } => {
                metrics::counter!("ips_documents_published_total", "kind" => *kind).increment(1)
            }
            Signal::DocumentComment { source } => {
                metrics::counter!("ips_document_comments_total", "source" => *source).increment(1)
            }
            Signal::ReviewTurnaround { days } => {
                metrics::histogram!("ips_document_review_turnaround_days").record(*days)
            }
            Signal::ReviewChased => {
                metrics::counter!("ips_document_reviews_chased_total").increment(1)
            }
            Signal::Delivery { state } => {
                metrics::counter!("ips_document_deliveries_total", "state" => *state).increment(1)
            }
        }
    }
}
