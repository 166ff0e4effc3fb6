//! Work shared between replicas: outbox delivery bookkeeping and timer look-ups.

macro_rules! impl_work {
    ($store:ident, $db:ty, claim = $claim:expr, bulk = $bulk:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::OutboxStore for $store {
            async fn outbox_claim(&self, now: i64, lease_until: i64, limit: u32) -> $crate::store::Result<Vec<$crate::store::OutboxRow>> {
                Ok(sqlx::query_as($claim)
                    .bind(lease_until)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(self.writer())
                    .await?)
            }

            async fn outbox_settle(&self, outcomes: &[$crate::store::Settlement]) -> $crate::store::Result<()> {
                if outcomes.is_empty() {
                    return Ok(());
                }
                use $crate::store::Settlement;
                // Deliveries are most outcomes: one statement for all of
                // them, not one round trip each to the store.
                let done: Vec<(i64, i64, Option<&str>)> = outcomes
                    .iter()
                    .filter_map(|o| match o {
                        Settlement::Done { id, at, result } => Some((*id, *at, result.as_deref())),
                        _ => None,
                    })
                    .collect();
                let mut tx = self.begin_tx().await?;
                $bulk::settle_done(&mut *tx, &done).await?;
                for o in outcomes.iter().filter(|o| !matches!(o, Settlement::Done { .. })) {
                    $crate::store::sql::settle!(o, &mut *tx);
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

            async fn outbox_failed(&self, kind: Option<&str>, limit: i64) -> $crate::store::Result<Vec<$crate::store::OutboxRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", outbox_cols!(), " FROM outbox WHERE status = 'failed' AND ($1 IS NULL OR kind = $1) ORDER BY id LIMIT $2"))
                    .bind(kind)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn outbox_requeue(&self, ids: &[i64], now: i64) -> $crate::store::Result<u64> {
                if ids.is_empty() {
                    return Ok(0);
                }
                let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE outbox SET status = 'pending', attempts = 0, claimed_until = NULL, done_at = NULL, next_attempt_at = ");
                q.push_bind(now);
                q.push(" WHERE status = 'failed' AND id");
                $crate::store::sql::push_in(&mut q, ids);
                Ok(q.build().execute(self.writer()).await?.rows_affected())
            }

            async fn outbox_extend(&self, ids: &[i64], until: i64) -> $crate::store::Result<()> {
                if ids.is_empty() {
                    return Ok(());
                }
                let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE outbox SET claimed_until = ");
                q.push_bind(until);
                q.push(" WHERE status = 'pending' AND id");
                $crate::store::sql::push_in(&mut q, ids);
                q.build().execute(self.writer()).await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::TimerStore for $store {
            async fn timers_due(&self, now: i64, limit: i64) -> $crate::store::Result<Vec<$crate::store::TimerRow>> {
                Ok(sqlx::query_as("SELECT id, kind, subject, due_at, payload FROM timers WHERE fired_at IS NULL AND due_at <= $1 ORDER BY due_at, id LIMIT $2")
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn timers_all(&self) -> $crate::store::Result<Vec<$crate::store::TimerRow>> {
                Ok(sqlx::query_as("SELECT id, kind, subject, due_at, payload FROM timers WHERE fired_at IS NULL ORDER BY due_at, id")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn timer_next_due(&self) -> $crate::store::Result<Option<i64>> {
                Ok(sqlx::query_scalar("SELECT MIN(due_at) FROM timers WHERE fired_at IS NULL")
                    .fetch_one(&self.pool)
                    .await?)
            }
        }
    };
}

pub(crate) use impl_work;
