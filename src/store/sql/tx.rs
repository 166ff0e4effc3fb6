//! The unit of work: every write a command makes, in one transaction.

/// One outbox outcome as an `UPDATE`, for the dispatcher's group commit and
/// for a handler settling a row inside its own transaction.
macro_rules! settle {
    ($s:expr, $conn:expr) => {{
        use $crate::store::Settlement;
        match $s {
            Settlement::Done { id, at, result } => {
                sqlx::query("UPDATE outbox SET status = 'done', done_at = $2, result = $3, claimed_until = NULL, last_error = NULL WHERE id = $1 AND status = 'pending'")
                    .bind(id)
                    .bind(at)
                    .bind(result)
                    .execute($conn)
                    .await?;
            }
            Settlement::Retry { id, next_attempt_at, error } => {
                sqlx::query("UPDATE outbox SET next_attempt_at = $2, last_error = $3, claimed_until = NULL WHERE id = $1 AND status = 'pending'")
                    .bind(id)
                    .bind(next_attempt_at)
                    .bind(error)
                    .execute($conn)
                    .await?;
            }
            Settlement::Failed { id, error } => {
                sqlx::query("UPDATE outbox SET status = 'failed', last_error = $2, claimed_until = NULL WHERE id = $1 AND status = 'pending'")
                    .bind(id)
                    .bind(error)
                    .execute($conn)
                    .await?;
            }
        }
    }};
}

macro_rules! impl_tx {
    ($tx:ident, $db:ty, lock = $lock:literal, skip_locked = $skip:literal, bulk = $bulk:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::Tx for $tx {
            async fn inbox_record(&mut self, e: &$crate::store::InboxEntry<'_>) -> $crate::store::Result<bool> {
                Ok(self.inbox_record_many(std::slice::from_ref(e)).await?[0])
            }

            async fn inbox_record_many(&mut self, entries: &[$crate::store::InboxEntry<'_>]) -> $crate::store::Result<Vec<bool>> {
                let mut inserted: std::collections::HashSet<(String, String)> =
                    $bulk::insert_inbox(&mut *self.tx, entries).await?.into_iter().collect();
                // A message id seen twice in one batch is new only the first time.
                Ok(entries
                    .iter()
                    .map(|e| inserted.remove(&(e.source.to_owned(), e.message_id.to_owned())))
                    .collect())
            }

            async fn inbox_forget(&mut self, source: &str, message_id: &str) -> $crate::store::Result<()> {
                sqlx::query("DELETE FROM inbox WHERE source = $1 AND message_id = $2")
                    .bind(source)
                    .bind(message_id)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn prefetch(&mut self, want: &$crate::store::pending::Prefetch) -> $crate::store::Result<()> {
                let conn = &mut *self.tx;
                let p = &mut self.pending;
                if !want.referral_keys.is_empty() {
                    let rows = $bulk::referrals_by_keys(conn, &want.referral_keys).await?;
                    for k in &want.referral_keys {
                        p.referrals.entry(k.clone()).or_insert(None);
                    }
                    for r in rows {
                        p.referrals.insert(r.referral_key.clone(), Some(r));
                    }
                }
                let mut patient_ids = Vec::new();
                if !want.nhs_hashes.is_empty() {
                    let rows = $bulk::patients_by_hashes(conn, &want.nhs_hashes).await?;
                    for h in &want.nhs_hashes {
                        p.patients.entry(h.clone()).or_insert(None);
                    }
                    for (id, hash) in rows {
                        p.patients.insert(hash, Some(id.clone()));
                        patient_ids.push(id);
                    }
                }
                let mut case_ids = Vec::new();
                if !patient_ids.is_empty() {
                    let rows = $bulk::open_cases_for(conn, &patient_ids).await?;
                    for id in &patient_ids {
                        p.open_cases.entry(id.clone()).or_insert(None);
                    }
                    for c in rows {
                        case_ids.push(c.id.clone());
                        p.open_cases.insert(c.patient_id.clone(), Some(c));
                    }
                }
                if !want.appointment_keys.is_empty() {
                    let rows = $bulk::appointments_by_keys(conn, &want.appointment_keys).await?;
                    for k in &want.appointment_keys {
                        p.appointments.entry(k.clone()).or_insert(None);
                    }
                    for a in rows {
                        p.appointments.insert(a.appointment_key.clone(), Some(a));
                    }
                }
                if want.outreach && !case_ids.is_empty() {
                    self.outreach_load(&case_ids).await?;
                }
                Ok(())
            }

            async fn patient_by_hash(&mut self, nhs_hash: &str) -> $crate::store::Result<Option<String>> {
                if let Some(known) = self.pending.patients.get(nhs_hash) {
                    return Ok(known.clone());
                }
                let id: Option<String> = sqlx::query_scalar("SELECT id FROM patients WHERE nhs_hash = $1")
                    .bind(nhs_hash)
                    .fetch_optional(&mut *self.tx)
                    .await?;
                self.pending.patients.insert(nhs_hash.to_owned(), id.clone());
                Ok(id)
            }

            async fn patient_nhs_number(&mut self, patient_id: &str) -> $crate::store::Result<Option<String>> {
                if let Some(n) = self.pending.new_patient_nhs(patient_id) {
                    return Ok(Some(n.to_owned()));
                }
                Ok(sqlx::query_scalar("SELECT nhs_number FROM patients WHERE id = $1")
                    .bind(patient_id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn patient_upsert(&mut self, nhs_hash: &str, nhs_number: &str, new_id: &str, now: i64) -> $crate::store::Result<String> {
                if let Some(id) = self.patient_by_hash(nhs_hash).await? {
                    return Ok(id);
                }
                self.pending.new_patients.push((new_id.to_owned(), nhs_hash.to_owned(), nhs_number.to_owned(), now));
                self.pending.patients.insert(nhs_hash.to_owned(), Some(new_id.to_owned()));
                // A new patient has no case yet: no need to ask the database.
                self.pending.open_cases.insert(new_id.to_owned(), None);
                Ok(new_id.to_owned())
            }

            async fn case_open_for(&mut self, patient_id: &str) -> $crate::store::Result<Option<$crate::store::CaseRow>> {
                if let Some(known) = self.pending.open_cases.get(patient_id) {
                    return Ok(known.clone());
                }
                let c: Option<$crate::store::CaseRow> =
                    sqlx::query_as(concat!("SELECT ", case_cols!(), " FROM cases WHERE patient_id = $1 AND status = 'open'"))
                        .bind(patient_id)
                        .fetch_optional(&mut *self.tx)
                        .await?;
                self.pending.open_cases.insert(patient_id.to_owned(), c.clone());
                Ok(c)
            }

            async fn case_get(&mut self, id: &str) -> $crate::store::Result<Option<$crate::store::CaseRow>> {
                if let Some(c) = self.pending.new_case(id) {
                    return Ok(Some(c.clone()));
                }
                Ok(sqlx::query_as(concat!("SELECT ", case_cols!(), " FROM cases WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn case_insert(&mut self, c: &$crate::store::CaseRow) -> $crate::store::Result<()> {
                if let Some(open) = self.case_open_for(&c.patient_id).await? {
                    if c.status == crate::domain::case::CaseStatus::Open {
                        // What the partial unique index would refuse at commit: refuse it now.
                        return Err($crate::store::StoreError::Corrupt(format!(
                            "patient already has open case {}; refusing a second",
                            open.id
                        )));
                    }
                }
                self.pending.insert_case(c);
                Ok(())
            }

            async fn case_count_referral(&mut self, case_id: &str) -> $crate::store::Result<i64> {
                if let Some(n) = self.pending.count_referral_on_new_case(case_id) {
                    return Ok(n);
                }
                let n: i64 = sqlx::query_scalar("UPDATE cases SET referral_count = referral_count + 1 WHERE id = $1 RETURNING referral_count")
                    .bind(case_id)
                    .fetch_one(&mut *self.tx)
                    .await?;
                self.pending.set_case_count(case_id, n);
                Ok(n)
            }

            async fn referral_by_key(&mut self, key: &str) -> $crate::store::Result<Option<$crate::store::ReferralRow>> {
                if let Some(known) = self.pending.referrals.get(key) {
                    return Ok(known.clone());
                }
                let r: Option<$crate::store::ReferralRow> =
                    sqlx::query_as(concat!("SELECT ", referral_cols!(), " FROM referrals WHERE referral_key = $1"))
                        .bind(key)
                        .fetch_optional(&mut *self.tx)
                        .await?;
                self.pending.referrals.insert(key.to_owned(), r.clone());
                Ok(r)
            }

            async fn referral_by_id(&mut self, id: &str) -> $crate::store::Result<Option<$crate::store::ReferralRow>> {
                if let Some(r) = self.pending.referral_by_id(id) {
                    return Ok(Some(r.clone()));
                }
                Ok(sqlx::query_as(concat!("SELECT ", referral_cols!(), " FROM referrals WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn referrals_for_case(&mut self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::ReferralRow>> {
                // A case created in this unit of work has no rows in the database yet.
                if self.pending.new_case(case_id).is_some() {
                    return Ok(self.pending.overlay_case_referrals(case_id, vec![]));
                }
                let from_db: Vec<$crate::store::ReferralRow> =
                    sqlx::query_as(concat!("SELECT ", referral_cols!(), " FROM referrals WHERE case_id = $1 ORDER BY received_at, id"))
                        .bind(case_id)
                        .fetch_all(&mut *self.tx)
                        .await?;
                Ok(self.pending.overlay_case_referrals(case_id, from_db))
            }

            async fn referral_insert(&mut self, r: &$crate::store::ReferralRow) -> $crate::store::Result<()> {
                if let Some(existing) = self.referral_by_key(&r.referral_key).await? {
                    // What the unique index would refuse at commit: refuse it now.
                    return Err($crate::store::StoreError::Corrupt(format!(
                        "referral key already belongs to referral {}",
                        existing.id
                    )));
                }
                self.pending.insert_referral(r);
                Ok(())
            }

            async fn referral_update(&mut self, r: &$crate::store::ReferralRow) -> $crate::store::Result<()> {
                if !self.pending.is_new_referral(&r.referral_key) {
                    let q = sqlx::query(concat!(
                        "UPDATE referrals SET (", referral_data_cols!(), ") = \
                         ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) \
                         WHERE id = $1"
                    ));
                    let done = bind_referral!(q, r).execute(&mut *self.tx).await?;
                    if done.rows_affected() != 1 {
                        return Err($crate::store::StoreError::Corrupt(format!("referral {} vanished during update", r.id)));
                    }
                }
                self.pending.update_referral(r);
                Ok(())
            }

            async fn appointment_by_key(&mut self, key: &str) -> $crate::store::Result<Option<$crate::store::AppointmentRow>> {
                if let Some(known) = self.pending.appointments.get(key) {
                    return Ok(known.clone());
                }
                let a: Option<$crate::store::AppointmentRow> =
                    sqlx::query_as(concat!("SELECT ", appointment_cols!(), " FROM appointments WHERE appointment_key = $1"))
                        .bind(key)
                        .fetch_optional(&mut *self.tx)
                        .await?;
                self.pending.appointments.insert(key.to_owned(), a.clone());
                Ok(a)
            }

            async fn appointment_upsert(&mut self, a: &$crate::store::AppointmentRow) -> $crate::store::Result<()> {
                self.pending.upsert_appointment(a);
                Ok(())
            }

            async fn outbox_add(&mut self, o: &$crate::store::NewOutbox, now: i64) -> $crate::store::Result<()> {
                self.pending.outbox.push((o.clone(), now));
                Ok(())
            }

            async fn audit(&mut self, a: &$crate::store::AuditEntry, now: i64) -> $crate::store::Result<()> {
                self.pending.audit.push((a.clone(), now));
                Ok(())
            }

            async fn cursor_set(&mut self, source: &str, cursor: &str, now: i64) -> $crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO poll_cursors (source, cursor, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                )
                .bind(source)
                .bind(cursor)
                .bind(now)
                .execute(&mut *self.tx)
                .await?;
                Ok(())
            }

            async fn timer_set(&mut self, kind: &str, subject: &str, due_at: i64, payload: &str) -> $crate::store::Result<()> {
                // Written at commit (see `pending::timers`).
                self.pending.timers.set(kind, subject, due_at, payload);
                Ok(())
            }

            async fn referral_lock(&mut self, id: &str) -> $crate::store::Result<Option<$crate::store::ReferralRow>> {
                if let Some(r) = self.pending.referral_by_id(id)
                    && self.pending.is_new_referral(&r.referral_key)
                {
                    return Ok(Some(r.clone()));
                }
                let locked: Option<$crate::store::ReferralRow> =
                    sqlx::query_as(concat!("SELECT ", referral_cols!(), " FROM referrals WHERE id = $1", $lock))
                        .bind(id)
                        .fetch_optional(&mut *self.tx)
                        .await?;
                let Some(row) = locked else { return Ok(None) };
                // A version changed earlier in this unit of work is newer than the database's.
                if let Some(Some(mine)) = self.pending.referrals.get(&row.referral_key) {
                    return Ok(Some(mine.clone()));
                }
                self.pending.referrals.insert(row.referral_key.clone(), Some(row.clone()));
                Ok(Some(row))
            }

            async fn outbox_settle_one(&mut self, s: &$crate::store::Settlement) -> $crate::store::Result<()> {
                $crate::store::sql::settle!(s, &mut *self.tx);
                Ok(())
            }

            async fn timer_cancel(&mut self, kind: &str, subject: &str) -> $crate::store::Result<()> {
                self.pending.timers.cancel(kind, subject);
                Ok(())
            }

            async fn timers_claim_due(&mut self, now: i64, kinds: &[&str], limit: i64) -> $crate::store::Result<Vec<$crate::store::TimerRow>> {
                if kinds.is_empty() {
                    return Ok(vec![]);
                }
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT id, kind, subject, due_at, payload FROM timers WHERE fired_at IS NULL AND due_at <= ",
                );
                q.push_bind(now);
                q.push(" AND kind IN (");
                let mut list = q.separated(", ");
                for k in kinds {
                    list.push_bind(*k);
                }
                // `+`: see `outbox_claim_sql!` (SQLite recompiled a bound LIMIT).
                q.push(") ORDER BY due_at, id LIMIT +");
                q.push_bind(limit);
                q.push($skip);
                Ok(q.build_query_as().fetch_all(&mut *self.tx).await?)
            }

            async fn timer_delete(&mut self, id: i64) -> $crate::store::Result<()> {
                sqlx::query("DELETE FROM timers WHERE id = $1")
                    .bind(id)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }


            async fn commit(mut self: Box<Self>) -> $crate::store::Result<()> {
                self.flush().await?;
                self.tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use {impl_tx, settle};
