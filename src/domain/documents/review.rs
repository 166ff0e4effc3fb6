//! The GP's or care coordinator's review of a published VP or IWSP: when it
//! is due, and when an unanswered one is chased. Chasing is bounded: a
//! review is chased `max_chases` times at most, then left to the team.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use time::OffsetDateTime;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum ReviewStatus {
    /// Sent for comment, no answer yet.
    Awaiting,
    /// A comment came back.
    Commented,
    /// A newer version replaced the document before anyone commented.
    Replaced,
}

impl ReviewStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// From publication to the review Task's due date.
    pub due_after: Duration,
    /// Between chases once overdue.
    pub chase_every: Duration,
    /// Chases at most; 0 = never chase.
    pub max_chases: u32,
}

impl ReviewPolicy {
    pub fn due_at(&self, published: OffsetDateTime) -> OffsetDateTime {
        published + self.due_after
    }

    /// When chase number `done + 1` is due, or `None` when no more are
    /// allowed. The first chase is at the due date itself, the next ones
    /// `chase_every` apart.
    pub fn next_chase(&self, due_at: OffsetDateTime, done: u32) -> Option<OffsetDateTime> {
        if done >= self.max_chases {
            return None;
        }
        Some(due_at + self.chase_every * done)
    }
}
