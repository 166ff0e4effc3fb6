//! SQL shared by both back-ends.
//!
//! The queries use `$n` placeholders, which SQLite and PostgreSQL both accept,
//! and only portable SQL (`ON CONFLICT`, `RETURNING`, partial indexes). The
//! one real difference, how outbox rows are claimed, is a parameter of the
//! macro. A macro rather than generic code because sqlx's generic executor
//! bounds would bury every query under trait clauses.

/// The outbox claim: due, unclaimed (or lease-expired) pending rows, never a
/// row whose ordering key has an earlier pending row, in id order. `$lock`
/// is the back-end's row-locking clause (`FOR UPDATE SKIP LOCKED` on
/// PostgreSQL; nothing on SQLite, whose writers are serialised).
macro_rules! outbox_claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 WHERE id IN (",
            "SELECT o.id FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= $2 ",
            "AND (o.claimed_until IS NULL OR o.claimed_until < $2) ",
            "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ordering_key = o.ordering_key AND p.status = 'pending' AND p.id < o.id) ",
            "ORDER BY o.id LIMIT $3",
            $lock,
            ") RETURNING ",
            outbox_cols!()
        )
    };
}
/// The `SET` list of an appointment upsert (`excluded` is the arriving row).
macro_rules! appointment_upsert_set {
    () => {
        "case_id = excluded.case_id, status = excluded.status, start_at = excluded.start_at, \
         content_hash = excluded.content_hash, source_updated_at = excluded.source_updated_at, \
         updated_at = excluded.updated_at, raw = excluded.raw"
    };
}
/// Every referral column but `id`, in the order [`bind_referral`] binds them.
macro_rules! referral_data_cols {
    () => {
        "referral_key, case_id, resource_ref, channel, state, fhir_status, incomplete_reasons, \
         content_hash, source_updated_at, authored_at, received_at, completed_at, source_ods, source_kind, \
         is_multiple, decision, decline_reason, decided_at, decided_by, assistance_commenced_at, updated_at, raw"
    };
}
macro_rules! referral_cols {
    () => {
        concat!("id, ", referral_data_cols!())
    };
}
/// Binds a referral row as `$1` = id, `$2..$23` = [`referral_data_cols`], so
/// the insert and the update share one list and cannot drift apart.
macro_rules! bind_referral {
    ($q:expr, $r:expr) => {
        $q.bind(&$r.id)
            .bind(&$r.referral_key)
            .bind(&$r.case_id)
            .bind(&$r.resource_ref)
            .bind(&$r.channel)
            .bind(&$r.state)
            .bind(&$r.fhir_status)
            .bind(&$r.incomplete_reasons)
            .bind(&$r.content_hash)
            .bind($r.source_updated_at)
            .bind($r.authored_at)
            .bind($r.received_at)
            .bind($r.completed_at)
            .bind(&$r.source_ods)
            .bind(&$r.source_kind)
            .bind($r.is_multiple)
            .bind(&$r.decision)
            .bind(&$r.decline_reason)
            .bind($r.decided_at)
            .bind(&$r.decided_by)
            .bind($r.assistance_commenced_at)
            .bind($r.updated_at)
            .bind(&$r.raw)
    };
}
macro_rules! case_cols {
    () => {
        "id, patient_id, status, opened_at, closed_at, closed_reason, referral_count"
    };
}
macro_rules! outbox_cols {
    () => {
        "id, kind, dedupe_key, ordering_key, payload, status, attempts, next_attempt_at, last_error, result, created_at"
    };
}
macro_rules! appointment_cols {
    () => {
        "id, appointment_key, case_id, status, start_at, content_hash, source_updated_at, updated_at, raw"
    };
}

/// Implements [`Store`](super::Store) for `$store` (holding `pool: Pool<$db>`
/// for reads and a `writer()` pool for every write)
/// and [`Tx`](super::Tx) for `$tx` (holding `tx: Transaction<'static, $db>`).
/// `$claim` is the outbox claim statement; `$bulk` the module with the
/// back-end's many-rows-at-once statements (multi-row `VALUES` for SQLite,
/// `UNNEST` over bound arrays for PostgreSQL).
macro_rules! impl_sql_store {
    ($store:ident, $tx:ident, $db:ty, backend = $backend:literal, claim = $claim:expr, migrator = $migrator:expr, bulk = $bulk:ident) => {
        pub struct $tx {
            tx: sqlx::Transaction<'static, $db>,
            pending: $crate::store::pending::Pending,
        }

        impl $tx {
            /// Writes what the unit of work buffered, parents before children
            /// (patients, cases, referrals, appointments), then outbox and audit.
            async fn flush(&mut self) -> $crate::store::Result<()> {
                let p = &self.pending;
                let conn = &mut *self.tx;
                if !p.new_patients.is_empty() {
                    $bulk::insert_patients(conn, &p.new_patients).await?;
                }
                let cases = p.new_case_rows();
                if !cases.is_empty() {
                    $bulk::insert_cases(conn, &cases).await?;
                }
                let referrals = p.new_referral_rows();
                if !referrals.is_empty() {
                    $bulk::insert_referrals(conn, &referrals).await?;
                }
                let appointments = p.dirty_appointment_rows();
                if !appointments.is_empty() {
                    $bulk::upsert_appointments(conn, &appointments).await?;
                }
                if !p.outbox.is_empty() {
                    $bulk::insert_outbox(conn, &p.outbox).await?;
                }
                if !p.audit.is_empty() {
                    $bulk::insert_audit(conn, &p.audit).await?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> $crate::store::Result<()> {
                $migrator.run(self.writer()).await?;
                Ok(())
            }

            async fn begin(&self) -> $crate::store::Result<Box<dyn $crate::store::Tx>> {
                Ok(Box::new($tx { tx: self.begin_tx().await?, pending: Default::default() }))
            }

            async fn ping(&self) -> $crate::store::Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
                self.writer().close().await;
            }

            async fn cursor(&self, source: &str) -> $crate::store::Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT cursor FROM poll_cursors WHERE source = $1")
                    .bind(source)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn inbox_count(&self, source: &str) -> $crate::store::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE source = $1")
                    .bind(source)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn outbox_claim(&self, now: i64, lease_until: i64, limit: u32) -> $crate::store::Result<Vec<$crate::store::OutboxRow>> {
                Ok(sqlx::query_as($claim)
                    .bind(lease_until)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(self.writer())
                    .await?)
            }

            async fn outbox_settle(&self, outcomes: &[$crate::store::Settlement]) -> $crate::store::Result<()> {
                use $crate::store::Settlement;
                if outcomes.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_tx().await?;
                for o in outcomes {
                    match o {
                        Settlement::Done { id, at, result } => {
                            sqlx::query("UPDATE outbox SET status = 'done', done_at = $2, result = $3, claimed_until = NULL, last_error = NULL WHERE id = $1")
                                .bind(id)
                                .bind(at)
                                .bind(result)
                                .execute(&mut *tx)
                                .await?;
                        }
                        Settlement::Retry { id, next_attempt_at, error } => {
                            sqlx::query("UPDATE outbox SET next_attempt_at = $2, last_error = $3, claimed_until = NULL WHERE id = $1")
                                .bind(id)
                                .bind(next_attempt_at)
                                .bind(error)
                                .execute(&mut *tx)
                                .await?;
                        }
                        Settlement::Failed { id, error } => {
                            sqlx::query("UPDATE outbox SET status = 'failed', last_error = $2, claimed_until = NULL WHERE id = $1")
                                .bind(id)
                                .bind(error)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_counts(&self) -> $crate::store::Result<(i64, i64)> {
                let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                    .fetch_one(&self.pool)
                    .await?;
                let failed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'failed'")
                    .fetch_one(&self.pool)
                    .await?;
                Ok((pending, failed))
            }

            async fn outbox_by_key(&self, dedupe_key: &str) -> $crate::store::Result<Option<$crate::store::OutboxRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", outbox_cols!(), " FROM outbox WHERE dedupe_key = $1"))
                    .bind(dedupe_key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn case_get(&self, id: &str) -> $crate::store::Result<Option<$crate::store::CaseRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", case_cols!(), " FROM cases WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn cases_list(&self, limit: i64, offset: i64) -> $crate::store::Result<Vec<$crate::store::CaseRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", case_cols!(), " FROM cases ORDER BY opened_at DESC, id LIMIT $1 OFFSET $2"))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn referrals_for_case(&self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::ReferralRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", referral_cols!(), " FROM referrals WHERE case_id = $1 ORDER BY received_at, id"))
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn referral_get(&self, id: &str) -> $crate::store::Result<Option<$crate::store::ReferralRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", referral_cols!(), " FROM referrals WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn referral_by_key(&self, key: &str) -> $crate::store::Result<Option<$crate::store::ReferralRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", referral_cols!(), " FROM referrals WHERE referral_key = $1"))
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn referrals_in_state(&self, state: &str, limit: i64) -> $crate::store::Result<Vec<$crate::store::ReferralRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", referral_cols!(), " FROM referrals WHERE state = $1 ORDER BY received_at, id LIMIT $2"))
                    .bind(state)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn referral_state_counts(&self) -> $crate::store::Result<Vec<(String, i64)>> {
                Ok(sqlx::query_as("SELECT state, COUNT(*) FROM referrals GROUP BY state ORDER BY state")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn audit_for(&self, resource_id: &str) -> $crate::store::Result<Vec<$crate::store::AuditRow>> {
                Ok(sqlx::query_as("SELECT id, at, actor, action, resource_type, resource_id, detail FROM audit WHERE resource_id = $1 ORDER BY id")
                    .bind(resource_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn timers_due(&self, now: i64, limit: i64) -> $crate::store::Result<Vec<$crate::store::TimerRow>> {
                Ok(sqlx::query_as("SELECT id, kind, subject, due_at, payload FROM timers WHERE fired_at IS NULL AND due_at <= $1 ORDER BY due_at, id LIMIT $2")
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn purge(&self, inbox_before: i64, outbox_before: i64) -> $crate::store::Result<(u64, u64)> {
                let inbox = sqlx::query("DELETE FROM inbox WHERE processed_at < $1")
                    .bind(inbox_before)
                    .execute(self.writer())
                    .await?
                    .rows_affected();
                let outbox = sqlx::query("DELETE FROM outbox WHERE status = 'done' AND done_at < $1")
                    .bind(outbox_before)
                    .execute(self.writer())
                    .await?
                    .rows_affected();
                Ok((inbox, outbox))
            }
        }

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
                if !patient_ids.is_empty() {
                    let rows = $bulk::open_cases_for(conn, &patient_ids).await?;
                    for id in &patient_ids {
                        p.open_cases.entry(id.clone()).or_insert(None);
                    }
                    for c in rows {
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
                    if c.status == "open" {
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
                         ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) \
                         WHERE id = $1"
                    ));
                    let done = bind_referral!(q, r).execute(&mut *self.tx).await?;
                    if done.rows_affected() != 1 {
                        return Err($crate::store::StoreError::Corrupt(format!("referral {} vanished during update", r.id)));
                    }
                }
                self.pending.referrals.insert(r.referral_key.clone(), Some(r.clone()));
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
                sqlx::query(
                    "INSERT INTO timers (kind, subject, due_at, payload) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (kind, subject) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload, fired_at = NULL",
                )
                .bind(kind)
                .bind(subject)
                .bind(due_at)
                .bind(payload)
                .execute(&mut *self.tx)
                .await?;
                Ok(())
            }

            async fn timer_fired(&mut self, id: i64, now: i64) -> $crate::store::Result<()> {
                sqlx::query("UPDATE timers SET fired_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
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

pub(crate) use {
    appointment_cols, appointment_upsert_set, bind_referral, case_cols, impl_sql_store,
    outbox_claim_sql, outbox_cols, referral_cols, referral_data_cols,
};
