//! Opening, migrating and beginning units of work; cursors, inbox counts, retention.

/// The unit of work: a database transaction plus what it buffered (see `pending`).
macro_rules! impl_unit_of_work {
    ($tx:ident, $db:ty, $bulk:ident) => {
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
                let practices: Vec<_> = p.practices.iter().collect();
                for chunk in practices.chunks(200) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO case_practices (case_id, gp_ods, updated_at) ",
                    );
                    q.push_values(chunk, |mut b, (case_id, (ods, at))| {
                        b.push_bind(case_id.as_str()).push_bind(ods.as_str()).push_bind(*at);
                    });
                    q.push(" ON CONFLICT (case_id) DO UPDATE SET gp_ods = excluded.gp_ods, updated_at = excluded.updated_at");
                    q.build().execute(&mut *conn).await?;
                }
                let facts: Vec<_> = p.outreach.dirty_facts().collect();
                for chunk in facts.chunks(200) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO appointment_facts (appointment_key, case_id, fact, updated_at) ",
                    );
                    q.push_values(chunk, |mut b, (key, case_id, fact, at)| {
                        b.push_bind(*key).push_bind(*case_id).push_bind(*fact).push_bind(*at);
                    });
                    q.push(" ON CONFLICT (appointment_key) DO UPDATE SET case_id = excluded.case_id, fact = excluded.fact, updated_at = excluded.updated_at");
                    q.build().execute(&mut *conn).await?;
                }
                // Timers last: after the engine deleted the ones that fired.
                for chunk in p.timers.cancels().chunks(200) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("DELETE FROM timers WHERE ");
                    let mut first = true;
                    for (kind, subject) in chunk {
                        if !first {
                            q.push(" OR ");
                        }
                        first = false;
                        q.push("(kind = ").push_bind(*kind).push(" AND subject = ").push_bind(*subject).push(")");
                    }
                    q.build().execute(&mut *conn).await?;
                }
                for chunk in p.timers.sets().chunks(200) {
                    let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO timers (kind, subject, due_at, payload) ");
                    q.push_values(chunk, |mut b, (kind, subject, due, payload)| {
                        b.push_bind(*kind).push_bind(*subject).push_bind(*due).push_bind(*payload);
                    });
                    q.push(" ON CONFLICT (kind, subject) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload, fired_at = NULL");
                    q.build().execute(&mut *conn).await?;
                }
                Ok(())
            }
        }
    };
}

macro_rules! impl_admin {
    ($store:ident, $tx:ident, backend = $backend:literal, migrator = $migrator:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::StoreAdmin for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> $crate::store::Result<()> {
                $migrator.run(self.writer()).await?;
                Ok(())
            }

            async fn begin(&self) -> $crate::store::Result<Box<dyn $crate::store::Tx>> {
                Ok(Box::new($tx {
                    tx: self.begin_tx().await?,
                    pending: Default::default(),
                }))
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
                Ok(
                    sqlx::query_scalar("SELECT cursor FROM poll_cursors WHERE source = $1")
                        .bind(source)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn inbox_count(&self, source: &str) -> $crate::store::Result<i64> {
                Ok(
                    sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE source = $1")
                        .bind(source)
                        .fetch_one(&self.pool)
                        .await?,
                )
            }

            async fn purge(
                &self,
                inbox_before: i64,
                outbox_before: i64,
            ) -> $crate::store::Result<(u64, u64)> {
                let inbox = sqlx::query("DELETE FROM inbox WHERE processed_at < $1")
                    .bind(inbox_before)
                    .execute(self.writer())
                    .await?
                    .rows_affected();
                let outbox =
                    sqlx::query("DELETE FROM outbox WHERE status = 'done' AND done_at < $1")
                        .bind(outbox_before)
                        .execute(self.writer())
                        .await?
                        .rows_affected();
                Ok((inbox, outbox))
            }
        }
    };
}

pub(crate) use {impl_admin, impl_unit_of_work};
