//! Outreach SQL, shared by both back-ends.

macro_rules! episode_cols {
    () => {
        "id, case_id, rule_id, status, opened_at, due_at, risk, trigger_key, resolved_at, resolution, updated_at"
    };
}
macro_rules! attempt_cols {
    () => {
        "id, attempt_key, case_id, episode_id, method, outcome, attempted_at, specialist, note, created_at"
    };
}
macro_rules! closure_cols {
    () => {
        "id, case_id, referral_id, cause, closed_at, recorded_at"
    };
}

macro_rules! impl_outreach {
    ($store:ident, $tx:ident, $db:ty) => {
        impl $tx {
            /// Reads the outreach state of `case_ids` into the unit of work's
            /// cache: three statements however many cases (see `pending::outreach`).
            pub(crate) async fn outreach_load(&mut self, case_ids: &[String]) -> $crate::store::Result<()> {
                let wanted: Vec<String> = case_ids
                    .iter()
                    .filter(|id| self.pending.outreach.get(id).is_none())
                    .cloned()
                    .collect();
                for ids in wanted.chunks(500) {
                    let in_list = |head: &str| {
                        let mut q = sqlx::QueryBuilder::<$db>::new(head);
                        q.push(" IN (");
                        let mut list = q.separated(", ");
                        for id in ids {
                            list.push_bind(id.clone());
                        }
                        q.push(")");
                        q
                    };
                    let facts: Vec<(String, String, String)> =
                        in_list("SELECT appointment_key, case_id, fact FROM appointment_facts WHERE case_id")
                            .build_query_as()
                            .fetch_all(&mut *self.tx)
                            .await?;
                    let mut q = in_list(concat!("SELECT ", $crate::store::sql::episode_cols!(), " FROM outreach_episodes WHERE case_id"));
                    q.push(" ORDER BY opened_at, id");
                    let episodes: Vec<$crate::store::EpisodeRow> = q.build_query_as().fetch_all(&mut *self.tx).await?;
                    let mut q = in_list("SELECT case_id, MAX(attempted_at) FROM outreach_attempts WHERE outcome = 'contacted' AND case_id");
                    q.push(" GROUP BY case_id");
                    let contacts: Vec<(String, Option<i64>)> = q.build_query_as().fetch_all(&mut *self.tx).await?;
                    self.pending.outreach.load(ids, facts, episodes, contacts);
                }
                Ok(())
            }

            async fn outreach_of(&mut self, case_id: &str) -> $crate::store::Result<&$crate::store::pending::CaseOutreach> {
                if self.pending.outreach.get(case_id).is_none() {
                    self.outreach_load(&[case_id.to_owned()]).await?;
                }
                self.pending
                    .outreach
                    .get(case_id)
                    .ok_or_else(|| $crate::store::StoreError::Corrupt(format!("outreach state of case {case_id} did not load")))
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::OutreachTx for $tx {
            async fn fact_upsert(&mut self, key: &str, case_id: &str, fact: &str, now: i64) -> $crate::store::Result<()> {
                self.pending.outreach.upsert_fact(key, case_id, fact, now);
                Ok(())
            }

            async fn facts_for_case(&mut self, case_id: &str) -> $crate::store::Result<Vec<String>> {
                Ok(self.outreach_of(case_id).await?.facts.values().cloned().collect())
            }

            async fn last_contact(&mut self, case_id: &str) -> $crate::store::Result<Option<i64>> {
                Ok(self.outreach_of(case_id).await?.last_contact)
            }

            async fn episode_active(&mut self, case_id: &str) -> $crate::store::Result<Option<$crate::store::EpisodeRow>> {
                Ok(self.outreach_of(case_id).await?.active().cloned())
            }

            async fn episode_latest(&mut self, case_id: &str) -> $crate::store::Result<Option<$crate::store::EpisodeRow>> {
                Ok(self.outreach_of(case_id).await?.latest().cloned())
            }

            async fn episode_insert(&mut self, e: &$crate::store::EpisodeRow) -> $crate::store::Result<()> {
                sqlx::query(concat!("INSERT INTO outreach_episodes (", $crate::store::sql::episode_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"))
                    .bind(&e.id)
                    .bind(&e.case_id)
                    .bind(&e.rule_id)
                    .bind(e.status.as_str())
                    .bind(e.opened_at)
                    .bind(e.due_at)
                    .bind(&e.risk)
                    .bind(&e.trigger_key)
                    .bind(e.resolved_at)
                    .bind(&e.resolution)
                    .bind(e.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                self.pending.outreach.episode_inserted(e);
                Ok(())
            }

            async fn episode_resolve(&mut self, id: &str, at: i64, resolution: &str) -> $crate::store::Result<()> {
                sqlx::query("UPDATE outreach_episodes SET status = 'resolved', resolved_at = $2, resolution = $3, updated_at = $2 WHERE id = $1 AND status = 'active'")
                    .bind(id)
                    .bind(at)
                    .bind(resolution)
                    .execute(&mut *self.tx)
                    .await?;
                self.pending.outreach.episode_resolved(id, at, resolution);
                Ok(())
            }

            async fn attempt_insert(&mut self, a: &$crate::store::AttemptRow) -> $crate::store::Result<bool> {
                let r = sqlx::query(concat!("INSERT INTO outreach_attempts (", $crate::store::sql::attempt_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (attempt_key) DO NOTHING"))
                    .bind(&a.id)
                    .bind(&a.attempt_key)
                    .bind(&a.case_id)
                    .bind(&a.episode_id)
                    .bind(&a.method)
                    .bind(&a.outcome)
                    .bind(a.attempted_at)
                    .bind(&a.specialist)
                    .bind(&a.note)
                    .bind(a.created_at)
                    .execute(&mut *self.tx)
                    .await?;
                let inserted = r.rows_affected() == 1;
                if inserted && a.outcome == "contacted" {
                    self.pending.outreach.contacted(&a.case_id, a.attempted_at);
                }
                Ok(inserted)
            }

            async fn closure_by_rule_insert(&mut self, c: &$crate::store::ClosureByRuleRow) -> $crate::store::Result<bool> {
                let r = sqlx::query(concat!("INSERT INTO closures_by_rule (", $crate::store::sql::closure_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (referral_id, cause) DO NOTHING"))
                    .bind(&c.id)
                    .bind(&c.case_id)
                    .bind(&c.referral_id)
                    .bind(&c.cause)
                    .bind(c.closed_at)
                    .bind(c.recorded_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn case_close(&mut self, id: &str, reason: &str, at: i64) -> $crate::store::Result<bool> {
                let r = sqlx::query("UPDATE cases SET status = 'closed', closed_at = $2, closed_reason = $3 WHERE id = $1 AND status = 'open'")
                    .bind(id)
                    .bind(at)
                    .bind(reason)
                    .execute(&mut *self.tx)
                    .await?;
                // The identity map must not hand out the case as open any more.
                self.pending.open_cases.retain(|_, c| c.as_ref().is_none_or(|c| c.id != id));
                Ok(r.rows_affected() == 1)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::OutreachReads for $store {
            async fn episodes_active(&self, limit: i64) -> $crate::store::Result<Vec<$crate::store::EpisodeRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::episode_cols!(), " FROM outreach_episodes WHERE status = 'active' ORDER BY due_at, id LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn episodes_for_case(&self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::EpisodeRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::episode_cols!(), " FROM outreach_episodes WHERE case_id = $1 ORDER BY opened_at, id"))
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn attempts_for_case(&self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::AttemptRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::attempt_cols!(), " FROM outreach_attempts WHERE case_id = $1 ORDER BY attempted_at, id"))
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn facts_for_case_read(&self, case_id: &str) -> $crate::store::Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT fact FROM appointment_facts WHERE case_id = $1 ORDER BY appointment_key")
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn closures_by_rule_for_case(&self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::ClosureByRuleRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::closure_cols!(), " FROM closures_by_rule WHERE case_id = $1 ORDER BY closed_at, id"))
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn outreach_counts(&self, now: i64, soon: i64) -> $crate::store::Result<$crate::store::OutreachCounts> {
                let (active, due_soon, overdue): (i64, i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), \
                            COALESCE(SUM(CASE WHEN due_at >= $1 AND due_at < $2 THEN 1 ELSE 0 END), 0), \
                            COALESCE(SUM(CASE WHEN due_at < $1 THEN 1 ELSE 0 END), 0) \
                     FROM outreach_episodes WHERE status = 'active'",
                )
                .bind(now)
                .bind(soon)
                .fetch_one(&self.pool)
                .await?;
                let closures_by_rule: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM closures_by_rule")
                    .fetch_one(&self.pool)
                    .await?;
                Ok($crate::store::OutreachCounts { active, due_soon, overdue, closures_by_rule })
            }
        }
    };
}

pub(crate) use {attempt_cols, closure_cols, episode_cols, impl_outreach};
