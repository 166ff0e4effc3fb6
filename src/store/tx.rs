//! The unit of work: one transaction holding the inbox rows (dedupe), the
//! state changes, the outbox rows, timers and audit rows a batch caused.

use super::{
    AppointmentRow, AuditEntry, CaseRow, InboxEntry, NewOutbox, ReferralRow, Result, Settlement,
    TimerRow, pending,
};
use async_trait::async_trait;

/// One unit of work. Dropped without `commit`, it rolls back.
#[async_trait]
pub trait Tx: super::OutreachTx + super::DocumentTx + super::TeamTx + Send {
    /// Records a message in the inbox; `false` when it was seen before.
    async fn inbox_record(&mut self, e: &InboxEntry<'_>) -> Result<bool>;
    /// Records a batch of messages in one statement; `false` for each seen before
    /// (including a second occurrence within the batch).
    async fn inbox_record_many(&mut self, entries: &[InboxEntry<'_>]) -> Result<Vec<bool>>;
    /// Loads, in a few bulk queries, the rows a batch's commands will ask for.
    async fn prefetch(&mut self, want: &pending::Prefetch) -> Result<()>;
    /// Removes an inbox row recorded earlier in this unit of work (the message was then rejected).
    async fn inbox_forget(&mut self, source: &str, message_id: &str) -> Result<()>;

    async fn patient_by_hash(&mut self, nhs_hash: &str) -> Result<Option<String>>;
    async fn patient_nhs_number(&mut self, patient_id: &str) -> Result<Option<String>>;
    async fn patient_upsert(
        &mut self,
        nhs_hash: &str,
        nhs_number: &str,
        new_id: &str,
        now: i64,
    ) -> Result<String>;
    async fn case_open_for(&mut self, patient_id: &str) -> Result<Option<CaseRow>>;
    async fn case_get(&mut self, id: &str) -> Result<Option<CaseRow>>;
    async fn case_insert(&mut self, c: &CaseRow) -> Result<()>;
    async fn case_count_referral(&mut self, case_id: &str) -> Result<i64>;

    async fn referral_by_key(&mut self, key: &str) -> Result<Option<ReferralRow>>;
    async fn referral_by_id(&mut self, id: &str) -> Result<Option<ReferralRow>>;
    /// Reads a referral to change it, holding it until commit (`FOR UPDATE`
    /// on PostgreSQL), so concurrent writers take turns instead of losing
    /// one update.
    async fn referral_lock(&mut self, id: &str) -> Result<Option<ReferralRow>>;
    async fn referrals_for_case(&mut self, case_id: &str) -> Result<Vec<ReferralRow>>;
    async fn referral_insert(&mut self, r: &ReferralRow) -> Result<()>;
    async fn referral_update(&mut self, r: &ReferralRow) -> Result<()>;

    async fn appointment_by_key(&mut self, key: &str) -> Result<Option<AppointmentRow>>;
    async fn appointment_upsert(&mut self, a: &AppointmentRow) -> Result<()>;

    /// Queues an outbox row, written at commit; a row whose dedupe key exists already is dropped.
    async fn outbox_add(&mut self, o: &NewOutbox, now: i64) -> Result<()>;
    /// Settles one outbox row in this unit of work (a handler answering a conflict).
    async fn outbox_settle_one(&mut self, s: &Settlement) -> Result<()>;
    async fn audit(&mut self, a: &AuditEntry, now: i64) -> Result<()>;
    async fn cursor_set(&mut self, source: &str, cursor: &str, now: i64) -> Result<()>;

    /// Schedules (or moves) the timer `(kind, subject)`.
    async fn timer_set(
        &mut self,
        kind: &str,
        subject: &str,
        due_at: i64,
        payload: &str,
    ) -> Result<()>;
    /// Removes a timer that no longer applies; nothing if there is none.
    async fn timer_cancel(&mut self, kind: &str, subject: &str) -> Result<()>;
    /// Claims timers of `kinds` due by `now` (`FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL, so replicas never fire the same timer).
    async fn timers_claim_due(
        &mut self,
        now: i64,
        kinds: &[&str],
        limit: i64,
    ) -> Result<Vec<TimerRow>>;
    /// Deletes a timer: in the transaction that applied it, that is "fired".
    async fn timer_delete(&mut self, id: i64) -> Result<()>;

    async fn commit(self: Box<Self>) -> Result<()>;
}
