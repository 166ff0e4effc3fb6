//! Reads for the API and reports, outside any unit of work.

macro_rules! impl_reads {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::Reads for $store {
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

            async fn referral_oldest_in_state(&self, state: &str) -> $crate::store::Result<Option<i64>> {
                Ok(sqlx::query_scalar("SELECT MIN(received_at) FROM referrals WHERE state = $1")
                    .bind(state)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn audit_for(&self, resource_id: &str) -> $crate::store::Result<Vec<$crate::store::AuditRow>> {
                Ok(sqlx::query_as("SELECT id, at, actor, action, resource_type, resource_id, detail FROM audit WHERE resource_id = $1 ORDER BY id")
                    .bind(resource_id)
                    .fetch_all(&self.pool)
                    .await?)
            }
        }
    };
}

pub(crate) use impl_reads;
