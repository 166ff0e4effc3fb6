//! The in-memory half of a unit of work: what the transaction has read
//! (an identity map, filled in bulk by `prefetch`) and what it will write at
//! commit (new rows, outbox and audit rows, flushed as multi-row inserts).
//!
//! Why: a batch of a few hundred messages would otherwise cost several round
//! trips per message; with this, it costs a handful of statements per batch
//! plus one per update of a row that already existed. Handlers do not know:
//! they call the same `Tx` methods, which consult this map first.

mod outreach;
mod timers;

pub use outreach::{CaseOutreach, OutreachCache};
pub use timers::TimerChanges;

use super::{AppointmentRow, AuditEntry, CaseRow, NewOutbox, ReferralRow};
use std::collections::HashMap;

/// Rows a batch will need, gathered from its commands before they run.
#[derive(Debug, Default, Clone)]
pub struct Prefetch {
    pub referral_keys: Vec<String>,
    pub nhs_hashes: Vec<String>,
    pub appointment_keys: Vec<String>,
    /// Load the outreach state of the open cases found (the batch holds
    /// appointments, which are assessed against the discharge rules).
    pub outreach: bool,
}

#[derive(Debug, Default)]
pub struct Pending {
    /// `None`: known not to exist.
    pub referrals: HashMap<String, Option<ReferralRow>>,
    /// Keys of referrals created in this unit of work, in order.
    new_referrals: Vec<String>,
    /// Position in `new_referrals` of each new referral's key, and those
    /// positions by the referral's case. Why: every referral looks up its
    /// case's referrals, and a scan of the batch's new referrals each time
    /// made a batch's cost grow with its square.
    new_referral_at: HashMap<String, usize>,
    new_referrals_by_case: HashMap<String, Vec<usize>>,
    pub patients: HashMap<String, Option<String>>,
    /// `(id, nhs_hash, nhs_number, created_at)` of new patients, in order.
    pub new_patients: Vec<(String, String, String, i64)>,
    /// Open case per patient id.
    pub open_cases: HashMap<String, Option<CaseRow>>,
    /// Ids of cases created in this unit of work, in order.
    pub new_cases: Vec<String>,
    pub appointments: HashMap<String, Option<AppointmentRow>>,
    /// Keys of appointments to upsert at commit, in order.
    pub dirty_appointments: Vec<String>,
    pub outbox: Vec<(NewOutbox, i64)>,
    pub audit: Vec<(AuditEntry, i64)>,
    pub outreach: OutreachCache,
    pub timers: TimerChanges,
    /// GP practice per case, `(ods, updated_at)`, upserted at commit: every
    /// referral names one, and a statement each was a round trip each.
    pub practices: HashMap<String, (String, i64)>,
}

impl Pending {
    pub fn is_new_referral(&self, key: &str) -> bool {
        self.new_referral_at.contains_key(key)
    }

    pub fn referral_by_id(&self, id: &str) -> Option<&ReferralRow> {
        self.referrals.values().flatten().find(|r| r.id == id)
    }

    pub fn insert_referral(&mut self, r: &ReferralRow) {
        if self.is_new_referral(&r.referral_key) {
            return self.update_referral(r);
        }
        let at = self.new_referrals.len();
        self.new_referrals.push(r.referral_key.clone());
        self.new_referral_at.insert(r.referral_key.clone(), at);
        self.file_new_referral(at, None, r.case_id.as_deref());
        self.referrals
            .insert(r.referral_key.clone(), Some(r.clone()));
    }

    /// This unit of work's latest version of a referral, new or read.
    pub fn update_referral(&mut self, r: &ReferralRow) {
        if let Some(&at) = self.new_referral_at.get(&r.referral_key) {
            let before = self
                .referrals
                .get(&r.referral_key)
                .and_then(Option::as_ref)
                .and_then(|old| old.case_id.clone());
            self.file_new_referral(at, before.as_deref(), r.case_id.as_deref());
        }
        self.referrals
            .insert(r.referral_key.clone(), Some(r.clone()));
    }

    /// Moves the new referral at position `at` from case `from`'s list to
    /// case `to`'s, each kept in the order the referrals were created.
    fn file_new_referral(&mut self, at: usize, from: Option<&str>, to: Option<&str>) {
        if from == to {
            return;
        }
        if let Some(list) = from.and_then(|c| self.new_referrals_by_case.get_mut(c)) {
            list.retain(|i| *i != at);
        }
        if let Some(case) = to {
            let list = self
                .new_referrals_by_case
                .entry(case.to_owned())
                .or_default();
            let pos = list.partition_point(|i| *i < at);
            list.insert(pos, at);
        }
    }

    /// Rows of `case_id` from the database, overlaid with this unit of work's versions and new rows.
    pub fn overlay_case_referrals(
        &self,
        case_id: &str,
        from_db: Vec<ReferralRow>,
    ) -> Vec<ReferralRow> {
        let mut out: Vec<ReferralRow> = from_db
            .into_iter()
            .map(|r| match self.referrals.get(&r.referral_key) {
                Some(Some(mine)) => mine.clone(),
                _ => r,
            })
            .collect();
        let mine = self
            .new_referrals_by_case
            .get(case_id)
            .into_iter()
            .flatten();
        for key in mine.filter_map(|at| self.new_referrals.get(*at)) {
            if let Some(Some(r)) = self.referrals.get(key)
                && r.case_id.as_deref() == Some(case_id)
                && !out.iter().any(|o| o.id == r.id)
            {
                out.push(r.clone());
            }
        }
        out
    }

    pub fn new_case(&self, id: &str) -> Option<&CaseRow> {
        if !self.new_cases.iter().any(|c| c == id) {
            return None;
        }
        self.open_cases.values().flatten().find(|c| c.id == id)
    }

    pub fn insert_case(&mut self, c: &CaseRow) {
        self.open_cases
            .insert(c.patient_id.clone(), Some(c.clone()));
        self.new_cases.push(c.id.clone());
        // A new case has no appointments, episodes or contacts yet.
        self.outreach.know_empty(&c.id);
    }

    /// Counts a referral on a case created in this unit of work; `None` when the case is not new.
    pub fn count_referral_on_new_case(&mut self, case_id: &str) -> Option<i64> {
        if !self.new_cases.iter().any(|c| c == case_id) {
            return None;
        }
        let c = self
            .open_cases
            .values_mut()
            .flatten()
            .find(|c| c.id == case_id)?;
        c.referral_count += 1;
        Some(c.referral_count)
    }

    /// Keeps a cached open case in step after its count was updated in the database.
    pub fn set_case_count(&mut self, case_id: &str, count: i64) {
        if let Some(c) = self
            .open_cases
            .values_mut()
            .flatten()
            .find(|c| c.id == case_id)
        {
            c.referral_count = count;
        }
    }

    pub fn new_patient_nhs(&self, patient_id: &str) -> Option<&str> {
        self.new_patients
            .iter()
            .find(|p| p.0 == patient_id)
            .map(|p| p.2.as_str())
    }

    pub fn upsert_appointment(&mut self, a: &AppointmentRow) {
        if !self.dirty_appointments.contains(&a.appointment_key) {
            self.dirty_appointments.push(a.appointment_key.clone());
        }
        self.appointments
            .insert(a.appointment_key.clone(), Some(a.clone()));
    }

    pub fn new_referral_rows(&self) -> Vec<&ReferralRow> {
        self.new_referrals
            .iter()
            .filter_map(|k| self.referrals.get(k).and_then(Option::as_ref))
            .collect()
    }

    pub fn new_case_rows(&self) -> Vec<&CaseRow> {
        self.new_cases
            .iter()
            .filter_map(|id| self.open_cases.values().flatten().find(|c| &c.id == id))
            .collect()
    }

    pub fn dirty_appointment_rows(&self) -> Vec<&AppointmentRow> {
        self.dirty_appointments
            .iter()
            .filter_map(|k| self.appointments.get(k).and_then(Option::as_ref))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referral(id: &str, key: &str, case: Option<&str>) -> ReferralRow {
        ReferralRow {
            id: id.into(),
            referral_key: key.into(),
            case_id: case.map(Into::into),
            resource_ref: None,
            channel: "amqp".into(),
            state: crate::domain::referral::ReferralState::Incomplete,
            fhir_status: "active".into(),
            incomplete_reasons: "[]".into(),
            content_hash: "h".into(),
            source_updated_at: None,
            authored_at: None,
            received_at: 1,
            completed_at: None,
            source_ods: None,
            source_kind: "other".into(),
            is_multiple: 0,
            decision: crate::store::StoredDecision(None),
            decline_reason: None,
            decided_at: None,
            decided_by: None,
            assistance_commenced_at: None,
            updated_at: 1,
            raw: "{}".into(),
            origin: None,
        }
    }

    #[test]
    fn overlay_prefers_this_units_versions_and_adds_its_new_rows() {
        let mut p = Pending::default();
        let mut updated = referral("r1", "k1", Some("c1"));
        updated.state = crate::domain::referral::ReferralState::Accepted;
        p.referrals.insert("k1".into(), Some(updated));
        p.insert_referral(&referral("r2", "k2", Some("c1")));
        p.insert_referral(&referral("r3", "k3", Some("other-case")));
        let rows = p.overlay_case_referrals("c1", vec![referral("r1", "k1", Some("c1"))]);
        assert_eq!(
            rows.iter()
                .map(|r| (r.id.as_str(), r.state.as_str()))
                .collect::<Vec<_>>(),
            vec![("r1", "accepted"), ("r2", "incomplete")]
        );
    }

    #[test]
    fn a_new_referral_moved_to_another_case_is_listed_under_that_case_only() {
        let mut p = Pending::default();
        p.insert_referral(&referral("r1", "k1", None));
        p.insert_referral(&referral("r2", "k2", Some("c1")));
        p.update_referral(&referral("r1", "k1", Some("c1")));
        let ids = |p: &Pending, case: &str| {
            p.overlay_case_referrals(case, vec![])
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        // In the order they were created, not the order they were filed.
        assert_eq!(ids(&p, "c1"), ["r1", "r2"]);
        p.update_referral(&referral("r1", "k1", Some("c2")));
        assert_eq!(ids(&p, "c1"), ["r2"]);
        assert_eq!(ids(&p, "c2"), ["r1"]);
        assert!(p.is_new_referral("k1") && !p.is_new_referral("k3"));
        assert_eq!(p.new_referral_rows().len(), 2);
    }

    #[test]
    fn counts_on_new_cases_stay_in_memory() {
        let mut p = Pending::default();
        let c = CaseRow {
            id: "c1".into(),
            patient_id: "p1".into(),
            status: crate::domain::case::CaseStatus::Open,
            opened_at: 1,
            closed_at: None,
            closed_reason: None,
            referral_count: 1,
        };
        p.insert_case(&c);
        assert_eq!(p.count_referral_on_new_case("c1"), Some(2));
        assert_eq!(p.count_referral_on_new_case("old-case"), None);
        assert_eq!(p.new_case_rows()[0].referral_count, 2);
    }
}
