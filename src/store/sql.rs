//! SQL shared by both back-ends.
//!
//! The queries use `$n` placeholders, which SQLite and PostgreSQL both accept,
//! and only portable SQL (`ON CONFLICT`, `RETURNING`, partial indexes). The
//! one real difference, how outbox rows are claimed, is a parameter of the
//! macro. A macro rather than generic code because sqlx's generic executor
//! bounds would bury every query under trait clauses.

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

/// Implements [`Store`](super::Store) for `$store` (holding `pool: Pool<$db>`)
/// and [`Tx`](super::Tx) for `$tx` (holding `tx: Transaction<'static, $db>`).
/// `$claim` is the outbox claim statement, `$begin` an async fn opening a transaction.
macro_rules! impl_sql_store {
    ($store:ident, $tx:ident, $db:ty, backend = $backend:literal, claim = $claim:expr, migrator = $migrator:expr) => {
        pub struct $tx {
            tx: sqlx::Transaction<'static, $db>,
            pending: $crate::store::pending::Pending,
        }

        impl $tx {
            /// Writes what the unit of work buffered, parents before children
            /// (patients, cases, referrals, appointments), then outbox and audit.
            async fn flush(&mut self) -> $crate::store::Result<()> {
                const CHUNK: usize = 200;
                let p = &self.pending;
                for chunk in p.new_patients.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO patients (id, nhs_hash, nhs_number, created_at) ");
                    q.push_values(chunk, |mut b, (id, hash, nhs, at)| {
                        b.push_bind(id).push_bind(hash).push_bind(nhs).push_bind(*at);
                    });
                    q.build().execute(&mut *self.tx).await?;
                }
                for chunk in p.new_case_rows().chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(concat!("INSERT INTO cases (", case_cols!(), ") "));
                    q.push_values(chunk, |mut b, c| {
                        b.push_bind(&c.id)
                            .push_bind(&c.patient_id)
                            .push_bind(&c.status)
                            .push_bind(c.opened_at)
                            .push_bind(c.closed_at)
                            .push_bind(&c.closed_reason)
                            .push_bind(c.referral_count);
                    });
                    q.build().execute(&mut *self.tx).await?;
                }
                for chunk in p.new_referral_rows().chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(concat!("INSERT INTO referrals (", referral_cols!(), ") "));
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(&r.id)
                            .push_bind(&r.referral_key)
                            .push_bind(&r.case_id)
                            .push_bind(&r.resource_ref)
                            .push_bind(&r.channel)
                            .push_bind(&r.state)
                            .push_bind(&r.fhir_status)
                            .push_bind(&r.incomplete_reasons)
                            .push_bind(&r.content_hash)
                            .push_bind(r.source_updated_at)
                            .push_bind(r.authored_at)
                            .push_bind(r.received_at)
                            .push_bind(r.completed_at)
                            .push_bind(&r.source_ods)
                            .push_bind(&r.source_kind)
                            .push_bind(r.is_multiple)
                            .push_bind(&r.decision)
                            .push_bind(&r.decline_reason)
                            .push_bind(r.decided_at)
                            .push_bind(&r.decided_by)
                            .push_bind(r.assistance_commenced_at)
                            .push_bind(r.updated_at)
                            .push_bind(&r.raw);
                    });
                    q.build().execute(&mut *self.tx).await?;
                }
                for chunk in p.dirty_appointment_rows().chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(concat!("INSERT INTO appointments (", appointment_cols!(), ") "));
                    q.push_values(chunk, |mut b, a| {
                        b.push_bind(&a.id)
                            .push_bind(&a.appointment_key)
                            .push_bind(&a.case_id)
                            .push_bind(&a.status)
                            .push_bind(a.start_at)
                            .push_bind(&a.content_hash)
                            .push_bind(a.source_updated_at)
                            .push_bind(a.updated_at)
                            .push_bind(&a.raw);
                    });
                    q.push(
                        " ON CONFLICT (appointment_key) DO UPDATE SET case_id = excluded.case_id, status = excluded.status, \
                         start_at = excluded.start_at, content_hash = excluded.content_hash, \
                         source_updated_at = excluded.source_updated_at, updated_at = excluded.updated_at, raw = excluded.raw",
                    );
                    q.build().execute(&mut *self.tx).await?;
                }
                for chunk in p.outbox.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO outbox (kind, dedupe_key, ordering_key, payload, status, attempts, next_attempt_at, created_at) ",
                    );
                    q.push_values(chunk, |mut b, (o, at)| {
                        b.push_bind(o.kind)
                            .push_bind(&o.dedupe_key)
                            .push_bind(&o.ordering_key)
                            .push_bind(&o.payload)
                            .push_bind("pending")
                            .push_bind(0i64)
                            .push_bind(*at)
                            .push_bind(*at);
                    });
                    q.push(" ON CONFLICT (dedupe_key) DO NOTHING");
                    q.build().execute(&mut *self.tx).await?;
                }
                for chunk in p.audit.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO audit (at, actor, action, resource_type, resource_id, detail) ");
                    q.push_values(chunk, |mut b, (a, at)| {
                        b.push_bind(*at)
                            .push_bind(&a.actor)
                            .push_bind(&a.action)
                            .push_bind(&a.resource_type)
                            .push_bind(&a.resource_id)
                            .push_bind(&a.detail);
                    });
                    q.build().execute(&mut *self.tx).await?;
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
                $migrator.run(&self.pool).await?;
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
                    .fetch_all(&self.pool)
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
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                let outbox = sqlx::query("DELETE FROM outbox WHERE status = 'done' AND done_at < $1")
                    .bind(outbox_before)
                    .execute(&self.pool)
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
                let mut inserted = std::collections::HashSet::new();
                for chunk in entries.chunks(200) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO inbox (source, message_id, received_at, processed_at, kind, outcome) ",
                    );
                    q.push_values(chunk, |mut b, e| {
                        b.push_bind(e.source)
                            .push_bind(e.message_id)
                            .push_bind(e.received_at)
                            .push_bind(e.processed_at)
                            .push_bind(e.kind)
                            .push_bind(e.outcome);
                    });
                    q.push(" ON CONFLICT (source, message_id) DO NOTHING RETURNING source, message_id");
                    let rows: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *self.tx).await?;
                    inserted.extend(rows);
                }
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
                const CHUNK: usize = 500;
                let p = &mut self.pending;
                for keys in want.referral_keys.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(concat!("SELECT ", referral_cols!(), " FROM referrals WHERE referral_key IN ("));
                    let mut list = q.separated(", ");
                    for k in keys {
                        list.push_bind(k);
                    }
                    q.push(")");
                    let rows: Vec<$crate::store::ReferralRow> = q.build_query_as().fetch_all(&mut *self.tx).await?;
                    for k in keys {
                        p.referrals.entry(k.clone()).or_insert(None);
                    }
                    for r in rows {
                        p.referrals.insert(r.referral_key.clone(), Some(r));
                    }
                }
                let mut patient_ids = Vec::new();
                for hashes in want.nhs_hashes.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("SELECT id, nhs_hash FROM patients WHERE nhs_hash IN (");
                    let mut list = q.separated(", ");
                    for h in hashes {
                        list.push_bind(h);
                    }
                    q.push(")");
                    let rows: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *self.tx).await?;
                    for h in hashes {
                        p.patients.entry(h.clone()).or_insert(None);
                    }
                    for (id, hash) in rows {
                        p.patients.insert(hash, Some(id.clone()));
                        patient_ids.push(id);
                    }
                }
                for ids in patient_ids.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(concat!("SELECT ", case_cols!(), " FROM cases WHERE status = 'open' AND patient_id IN ("));
                    let mut list = q.separated(", ");
                    for id in ids {
                        list.push_bind(id);
                    }
                    q.push(")");
                    let rows: Vec<$crate::store::CaseRow> = q.build_query_as().fetch_all(&mut *self.tx).await?;
                    for id in ids {
                        p.open_cases.entry(id.clone()).or_insert(None);
                    }
                    for c in rows {
                        p.open_cases.insert(c.patient_id.clone(), Some(c));
                    }
                }
                for keys in want.appointment_keys.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(concat!("SELECT ", appointment_cols!(), " FROM appointments WHERE appointment_key IN ("));
                    let mut list = q.separated(", ");
                    for k in keys {
                        list.push_bind(k);
                    }
                    q.push(")");
                    let rows: Vec<$crate::store::AppointmentRow> = q.build_query_as().fetch_all(&mut *self.tx).await?;
                    for k in keys {
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
    appointment_cols, bind_referral, case_cols, impl_sql_store, outbox_cols, referral_cols,
    referral_data_cols,
};
