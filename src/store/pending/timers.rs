//! Timer changes a unit of work makes, applied at commit.
//!
//! Why: every new case sets its `outreach-check` timer and every assessment
//! moves or cancels it; buffered, a batch's timer changes cost two
//! statements. The last change to a `(kind, subject)` wins, and because they
//! are written at commit, after the engine deleted the timers that fired, a
//! handler that sets the next deadline of the very timer that fired keeps it.

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct TimerChanges {
    /// `(kind, subject)` → `Some((due_at, payload))` to set, `None` to cancel.
    changes: BTreeMap<(String, String), Option<(i64, String)>>,
}

impl TimerChanges {
    pub fn set(&mut self, kind: &str, subject: &str, due_at: i64, payload: &str) {
        self.changes.insert(
            (kind.to_owned(), subject.to_owned()),
            Some((due_at, payload.to_owned())),
        );
    }

    pub fn cancel(&mut self, kind: &str, subject: &str) {
        self.changes
            .insert((kind.to_owned(), subject.to_owned()), None);
    }

    /// `(kind, subject, due_at, payload)` of every timer to set.
    pub fn sets(&self) -> Vec<(&str, &str, i64, &str)> {
        self.changes
            .iter()
            .filter_map(|((k, s), v)| {
                v.as_ref()
                    .map(|(d, p)| (k.as_str(), s.as_str(), *d, p.as_str()))
            })
            .collect()
    }

    /// `(kind, subject)` of every timer to cancel.
    pub fn cancels(&self) -> Vec<(&str, &str)> {
        self.changes
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|((k, s), _)| (k.as_str(), s.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_change_to_a_timer_wins() {
        let mut t = TimerChanges::default();
        t.set("a", "1", 10, "{}");
        t.cancel("a", "1");
        t.cancel("a", "2");
        t.set("a", "2", 20, "{}");
        t.set("b", "1", 30, "{}");
        t.set("b", "1", 31, "{}");
        assert_eq!(t.sets(), vec![("a", "2", 20, "{}"), ("b", "1", 31, "{}")]);
        assert_eq!(t.cancels(), vec![("a", "1")]);
    }
}
