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
    ($store:ident, $tx:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::OutreachTx for $tx {
            async fn fact_upsert(&mut self, key: &str, case_id: &str, fact: &str, now: i64) -> $crate::store::Result<()> {
                sqlx::query("INSERT INTO appointment_facts (appointment_key, case_id, fact, updated_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (appointment_key) DO UPDATE SET case_id = excluded.case_id, fact = excluded.fact, updated_at = excluded.updated_at")
                    .bind(key)
                    .bind(case_id)
                    .bind(fact)
                    .bind(now)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn facts_for_case(&mut self, case_id: &str) -> $crate::store::Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT fact FROM appointment_facts WHERE case_id = $1 ORDER BY appointment_key")
                    .bind(case_id)
                    .fetch_all(&mut *self.tx)
                    .await?)
            }

            async fn last_contact(&mut self, case_id: &str) -> $crate::store::Result<Option<i64>> {
                Ok(sqlx::query_scalar("SELECT MAX(attempted_at) FROM outreach_attempts WHERE case_id = $1 AND outcome = 'contacted'")
                    .bind(case_id)
                    .fetch_one(&mut *self.tx)
                    .await?)
            }

            async fn episode_active(&mut self, case_id: &str) -> $crate::store::Result<Option<$crate::store::EpisodeRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::episode_cols!(), " FROM outreach_episodes WHERE case_id = $1 AND status = 'active'"))
                    .bind(case_id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn episode_latest(&mut self, case_id: &str) -> $crate::store::Result<Option<$crate::store::EpisodeRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::episode_cols!(), " FROM outreach_episodes WHERE case_id = $1 ORDER BY opened_at DESC, id DESC LIMIT 1"))
                    .bind(case_id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
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
                Ok(())
            }

            async fn episode_resolve(&mut self, id: &str, at: i64, resolution: &str) -> $crate::store::Result<()> {
                sqlx::query("UPDATE outreach_episodes SET status = 'resolved', resolved_at = $2, resolution = $3, updated_at = $2 WHERE id = $1 AND status = 'active'")
                    .bind(id)
                    .bind(at)
                    .bind(resolution)
                    .execute(&mut *self.tx)
                    .await?;
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
                Ok(r.rows_affected() == 1)
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

            async fn outreach_counts(&self) -> $crate::store::Result<(i64, i64)> {
                let active: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outreach_episodes WHERE status = 'active'")
                    .fetch_one(&self.pool)
                    .await?;
                let closures: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM closures_by_rule")
                    .fetch_one(&self.pool)
                    .await?;
                Ok((active, closures))
            }
        }
    };
}

pub(crate) use {attempt_cols, closure_cols, episode_cols, impl_outreach};
