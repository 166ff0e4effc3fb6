//! Team SQL (employment outcomes, assignments, roster, report snapshot),
//! shared by both back-ends.

macro_rules! job_cols {
    () => {
        "id, job_key, case_id, employer, started_on, hours_band, hours_per_week, paid, recorded_by, \
         ended_on, end_reason, created_at, updated_at"
    };
}
macro_rules! status_cols {
    () => {
        "id, status_key, case_id, status, recorded_on, started_on, hours_band, recorded_by, created_at"
    };
}

macro_rules! impl_team {
    ($store:ident, $tx:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::TeamTx for $tx {
            async fn job_insert(&mut self, j: &$crate::store::JobRow) -> $crate::store::Result<bool> {
                let r = sqlx::query(concat!("INSERT INTO job_starts (", $crate::store::sql::job_cols!(), ") \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (job_key) DO NOTHING"))
                    .bind(&j.id)
                    .bind(&j.job_key)
                    .bind(&j.case_id)
                    .bind(&j.employer)
                    .bind(&j.started_on)
                    .bind(&j.hours_band)
                    .bind(j.hours_per_week)
                    .bind(j.paid)
                    .bind(&j.recorded_by)
                    .bind(&j.ended_on)
                    .bind(&j.end_reason)
                    .bind(j.created_at)
                    .bind(j.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn job_find(&mut self, case_id: &str, job_key: &str, id: &str) -> $crate::store::Result<Option<$crate::store::JobRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::job_cols!(), " FROM job_starts WHERE case_id = $1 AND (job_key = $2 OR id = $3)"))
                    .bind(case_id)
                    .bind(job_key)
                    .bind(id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn job_update_end(&mut self, j: &$crate::store::JobRow) -> $crate::store::Result<()> {
                sqlx::query("UPDATE job_starts SET ended_on = $2, end_reason = $3, updated_at = $4 WHERE id = $1")
                    .bind(&j.id)
                    .bind(&j.ended_on)
                    .bind(&j.end_reason)
                    .bind(j.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn status_insert(&mut self, s: &$crate::store::StatusRow) -> $crate::store::Result<bool> {
                let r = sqlx::query(concat!("INSERT INTO employment_statuses (", $crate::store::sql::status_cols!(), ") \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (status_key) DO NOTHING"))
                    .bind(&s.id)
                    .bind(&s.status_key)
                    .bind(&s.case_id)
                    .bind(&s.status)
                    .bind(&s.recorded_on)
                    .bind(&s.started_on)
                    .bind(&s.hours_band)
                    .bind(&s.recorded_by)
                    .bind(s.created_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn assignment_set(&mut self, a: &$crate::store::AssignmentRow) -> $crate::store::Result<Option<String>> {
                let before: Option<String> = sqlx::query_scalar("SELECT specialist FROM case_assignments WHERE case_id = $1")
                    .bind(&a.case_id)
                    .fetch_optional(&mut *self.tx)
                    .await?;
                sqlx::query("INSERT INTO case_assignments (case_id, specialist, assigned_by, assigned_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (case_id) DO UPDATE SET specialist = excluded.specialist, \
                             assigned_by = excluded.assigned_by, assigned_at = excluded.assigned_at")
                    .bind(&a.case_id)
                    .bind(&a.specialist)
                    .bind(&a.assigned_by)
                    .bind(a.assigned_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(before)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::TeamStore for $store {
            async fn snapshot_rows(&self) -> $crate::store::Result<$crate::store::SnapshotRows> {
                use $crate::store::sql::*;
                // One read transaction, so every list describes the same moment.
                let mut c = self.pool.begin().await?;
                let rows = $crate::store::SnapshotRows {
                    cases: sqlx::query_as(
                        "SELECT c.id, c.opened_at, c.closed_at, a.specialist FROM cases c \
                         LEFT JOIN case_assignments a ON a.case_id = c.id ORDER BY c.opened_at",
                    )
                    .fetch_all(&mut *c)
                    .await?,
                    referrals: sqlx::query_as(
                        "SELECT id, referral_key, case_id, resource_ref, channel, state, fhir_status, incomplete_reasons, \
                         content_hash, source_updated_at, authored_at, received_at, completed_at, source_ods, source_kind, \
                         is_multiple, decision, decline_reason, decided_at, decided_by, assistance_commenced_at, updated_at, \
                         '' AS raw, NULL AS origin FROM referrals ORDER BY received_at",
                    )
                    .fetch_all(&mut *c)
                    .await?,
                    jobs: sqlx::query_as(concat!("SELECT ", job_cols!(), " FROM job_starts ORDER BY started_on, id"))
                        .fetch_all(&mut *c)
                        .await?,
                    statuses: sqlx::query_as(concat!("SELECT ", status_cols!(), " FROM employment_statuses ORDER BY recorded_on, id"))
                        .fetch_all(&mut *c)
                        .await?,
                    episodes: sqlx::query_as(concat!("SELECT ", episode_cols!(), " FROM outreach_episodes ORDER BY opened_at"))
                        .fetch_all(&mut *c)
                        .await?,
                    attempts: sqlx::query_as(concat!("SELECT ", attempt_cols!(), " FROM outreach_attempts ORDER BY attempted_at"))
                        .fetch_all(&mut *c)
                        .await?,
                    closures: sqlx::query_as(concat!("SELECT ", closure_cols!(), " FROM closures_by_rule ORDER BY closed_at"))
                        .fetch_all(&mut *c)
                        .await?,
                    documents: sqlx::query_as(concat!("SELECT ", document_cols!(), " FROM documents ORDER BY created_at"))
                        .fetch_all(&mut *c)
                        .await?,
                    facts: sqlx::query_as("SELECT case_id, fact FROM appointment_facts")
                        .fetch_all(&mut *c)
                        .await?,
                    drafts: sqlx::query_as("SELECT case_id, kind, draft, updated_at FROM document_drafts ORDER BY updated_at")
                        .fetch_all(&mut *c)
                        .await?,
                    comments: sqlx::query_as(concat!("SELECT ", comment_cols!(), " FROM document_comments ORDER BY commented_at"))
                        .fetch_all(&mut *c)
                        .await?,
                };
                c.commit().await?;
                Ok(rows)
            }

            async fn case_nhs_numbers(&self) -> $crate::store::Result<Vec<(String, String)>> {
                Ok(sqlx::query_as("SELECT c.id, p.nhs_number FROM cases c JOIN patients p ON p.id = c.patient_id")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn jobs_for_case(&self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::JobRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::job_cols!(), " FROM job_starts WHERE case_id = $1 ORDER BY started_on, id"))
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn statuses_for_case(&self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::StatusRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::status_cols!(), " FROM employment_statuses WHERE case_id = $1 ORDER BY recorded_on, created_at"))
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn assignment_of(&self, case_id: &str) -> $crate::store::Result<Option<$crate::store::AssignmentRow>> {
                Ok(sqlx::query_as("SELECT case_id, specialist, assigned_by, assigned_at FROM case_assignments WHERE case_id = $1")
                    .bind(case_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn document_exists(&self, id: &str) -> $crate::store::Result<bool> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE id = $1")
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n > 0)
            }

            async fn staff_seen(&self, s: &$crate::store::StaffRow) -> $crate::store::Result<()> {
                sqlx::query("INSERT INTO staff (sub, name, roles, last_seen_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (sub) DO UPDATE SET name = excluded.name, roles = excluded.roles, last_seen_at = excluded.last_seen_at")
                    .bind(&s.sub)
                    .bind(&s.name)
                    .bind(&s.roles)
                    .bind(s.last_seen_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn staff_list(&self) -> $crate::store::Result<Vec<$crate::store::StaffRow>> {
                Ok(sqlx::query_as("SELECT sub, name, roles, last_seen_at FROM staff ORDER BY name, sub")
                    .fetch_all(&self.pool)
                    .await?)
            }
        }
    };
}

pub(crate) use {impl_team, job_cols, status_cols};
