//! What a unit of work knows of each case's outreach state: its appointment
//! facts, its episodes and its latest successful contact.
//!
//! Why: every appointment of an open case is assessed against the discharge
//! rules, which needs all three. Read per appointment, that was four round
//! trips each; here a case is loaded once per unit of work (in bulk for a
//! batch, by `prefetch`), a case created in this unit of work is known to be
//! empty without asking, and fact writes are buffered to one multi-row
//! upsert at commit. Episode and attempt writes still go straight through
//! (they are rare and their unique indexes must speak at once); this cache
//! is kept in step with them.

use crate::store::{EpisodeRow, EpisodeStatus};
use std::collections::{BTreeMap, HashMap};

/// One case's outreach state as this unit of work sees it.
#[derive(Debug, Default, Clone)]
pub struct CaseOutreach {
    /// Fact JSON by appointment key.
    pub facts: BTreeMap<String, String>,
    /// Every episode of the case, oldest first.
    pub episodes: Vec<EpisodeRow>,
    pub last_contact: Option<i64>,
}

impl CaseOutreach {
    pub fn active(&self) -> Option<&EpisodeRow> {
        self.episodes
            .iter()
            .find(|e| e.status == EpisodeStatus::Active)
    }

    /// The most recent episode, active or not (as `ORDER BY opened_at DESC, id DESC`).
    pub fn latest(&self) -> Option<&EpisodeRow> {
        self.episodes
            .iter()
            .max_by(|a, b| a.opened_at.cmp(&b.opened_at).then_with(|| a.id.cmp(&b.id)))
    }
}

#[derive(Debug, Default)]
pub struct OutreachCache {
    pub cases: HashMap<String, CaseOutreach>,
    /// `(appointment key, case id, fact JSON, updated at)` to upsert at commit, one per key.
    dirty_facts: BTreeMap<String, (String, String, i64)>,
    /// Which known case's `facts` hold each appointment key (at most one).
    /// Why: moving a fact asked every known case to drop it, so a batch's
    /// cost grew with its square.
    fact_case: HashMap<String, String>,
}

impl OutreachCache {
    /// A case known to hold nothing yet (created in this unit of work).
    pub fn know_empty(&mut self, case_id: &str) {
        self.cases.entry(case_id.to_owned()).or_default();
    }

    pub fn get(&self, case_id: &str) -> Option<&CaseOutreach> {
        self.cases.get(case_id)
    }

    /// Rows read from the database for `case_ids` (every id becomes known,
    /// with whatever rows came back). A case already known keeps its state:
    /// it may hold this unit of work's unflushed writes.
    pub fn load(
        &mut self,
        case_ids: &[String],
        facts: Vec<(String, String, String)>,
        episodes: Vec<EpisodeRow>,
        contacts: Vec<(String, Option<i64>)>,
    ) {
        let mut fresh: HashMap<String, CaseOutreach> = case_ids
            .iter()
            .filter(|id| !self.cases.contains_key(*id))
            .map(|id| (id.clone(), CaseOutreach::default()))
            .collect();
        for (key, case_id, fact) in facts {
            // This unit of work's fact writes are newer than what was read
            // (placed below).
            if self.dirty_facts.contains_key(&key) {
                continue;
            }
            if let Some(c) = fresh.get_mut(&case_id) {
                c.facts.insert(key.clone(), fact);
                self.fact_case.insert(key, case_id);
            }
        }
        for e in episodes {
            if let Some(c) = fresh.get_mut(&e.case_id) {
                c.episodes.push(e);
            }
        }
        for (case_id, at) in contacts {
            if let Some(c) = fresh.get_mut(&case_id) {
                c.last_contact = at;
            }
        }
        for (key, (case_id, fact, _)) in &self.dirty_facts {
            if let Some(c) = fresh.get_mut(case_id) {
                c.facts.insert(key.clone(), fact.clone());
                self.fact_case.insert(key.clone(), case_id.clone());
            }
        }
        self.cases.extend(fresh);
    }

    /// Records an appointment's fact for `case_id` (moving it off any other
    /// case this unit of work knows) and queues it for the commit.
    pub fn upsert_fact(&mut self, key: &str, case_id: &str, fact: &str, now: i64) {
        if let Some(held_by) = self.fact_case.remove(key)
            && held_by != case_id
            && let Some(c) = self.cases.get_mut(&held_by)
        {
            c.facts.remove(key);
        }
        if let Some(c) = self.cases.get_mut(case_id) {
            c.facts.insert(key.to_owned(), fact.to_owned());
            self.fact_case.insert(key.to_owned(), case_id.to_owned());
        }
        self.dirty_facts
            .insert(key.to_owned(), (case_id.to_owned(), fact.to_owned(), now));
    }

    pub fn dirty_facts(&self) -> impl ExactSizeIterator<Item = (&str, &str, &str, i64)> {
        self.dirty_facts
            .iter()
            .map(|(k, (c, f, at))| (k.as_str(), c.as_str(), f.as_str(), *at))
    }

    pub fn episode_inserted(&mut self, e: &EpisodeRow) {
        if let Some(c) = self.cases.get_mut(&e.case_id) {
            c.episodes.push(e.clone());
        }
    }

    pub fn episode_resolved(&mut self, id: &str, at: i64, resolution: &str) {
        for e in self.cases.values_mut().flat_map(|c| c.episodes.iter_mut()) {
            if e.id == id && e.status == EpisodeStatus::Active {
                e.status = EpisodeStatus::Resolved;
                e.resolved_at = Some(at);
                e.resolution = Some(resolution.to_owned());
                e.updated_at = at;
            }
        }
    }

    pub fn contacted(&mut self, case_id: &str, at: i64) {
        if let Some(c) = self.cases.get_mut(case_id) {
            c.last_contact = Some(c.last_contact.map_or(at, |l| l.max(at)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(id: &str, case: &str, opened: i64) -> EpisodeRow {
        EpisodeRow {
            id: id.into(),
            case_id: case.into(),
            rule_id: "r".into(),
            status: EpisodeStatus::Active,
            opened_at: opened,
            due_at: opened,
            risk: "{}".into(),
            trigger_key: "t".into(),
            resolved_at: None,
            resolution: None,
            updated_at: opened,
        }
    }

    #[test]
    fn a_loaded_case_keeps_its_unflushed_writes() {
        let mut c = OutreachCache::default();
        c.know_empty("c1");
        c.upsert_fact("a1", "c1", "{dna}", 5);
        c.load(
            &["c1".into(), "c2".into()],
            vec![
                ("a0".into(), "c1".into(), "{old}".into()),
                ("a2".into(), "c2".into(), "{x}".into()),
            ],
            vec![],
            vec![("c2".into(), Some(9))],
        );
        assert_eq!(c.get("c1").map(|s| s.facts.len()), Some(1));
        // A case loaded after a write to it sees that write over the database's rows.
        c.upsert_fact("a3", "c3", "{new}", 6);
        c.upsert_fact("a4", "c4", "{moved}", 6);
        c.load(
            &["c3".into()],
            vec![
                ("a3".into(), "c3".into(), "{stale}".into()),
                ("a4".into(), "c3".into(), "{was-here}".into()),
            ],
            vec![],
            vec![],
        );
        let c3 = c.get("c3").expect("loaded");
        assert_eq!(c3.facts.len(), 1);
        assert_eq!(c3.facts["a3"], "{new}");
        assert_eq!(c.get("c2").and_then(|s| s.last_contact), Some(9));
        assert_eq!(c.dirty_facts().len(), 3);
    }

    #[test]
    fn a_fact_moves_between_cases_and_episodes_follow_their_writes() {
        let mut c = OutreachCache::default();
        c.load(
            &["c1".into(), "c2".into()],
            vec![("a1".into(), "c1".into(), "{f}".into())],
            vec![episode("e1", "c1", 1)],
            vec![],
        );
        c.upsert_fact("a1", "c2", "{g}", 2);
        assert!(c.get("c1").is_some_and(|s| s.facts.is_empty()));
        assert_eq!(c.get("c2").map(|s| s.facts["a1"].as_str()), Some("{g}"));

        c.episode_resolved("e1", 3, "attended");
        c.episode_inserted(&episode("e2", "c1", 4));
        let s = c.get("c1").expect("known");
        assert_eq!(s.active().map(|e| e.id.as_str()), Some("e2"));
        assert_eq!(s.latest().map(|e| e.id.as_str()), Some("e2"));
        c.contacted("c1", 7);
        c.contacted("c1", 6);
        assert_eq!(c.get("c1").and_then(|s| s.last_contact), Some(7));
    }
}
