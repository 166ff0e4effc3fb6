//! Document SQL, shared by both back-ends.

macro_rules! document_cols {
    () => {
        "id, case_id, kind, version, source_key, title, author, status, replaces_id, content_sha1, size, \
         created_at, review_status, review_due_at, chases, reviewed_at, updated_at"
    };
}
macro_rules! comment_cols {
    () => {
        "id, document_id, case_id, comment_key, source, author, text, commented_at, received_at"
    };
}

macro_rules! delivery_cols {
    () => {
        "local_id, document_id, case_id, itk_message_id, recipient_ods, mailbox, state, delivered_before, \
         ack_level, ack_code, ack_text, created_at, updated_at"
    };
}

macro_rules! impl_documents {
    ($store:ident, $tx:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::DocumentTx for $tx {
            async fn draft_get(&mut self, case_id: &str, kind: $crate::domain::documents::DocumentKind) -> $crate::store::Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT draft FROM document_drafts WHERE case_id = $1 AND kind = $2")
                    .bind(case_id)
                    .bind(kind.as_str())
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn draft_put(&mut self, case_id: &str, kind: $crate::domain::documents::DocumentKind, draft: &str, now: i64) -> $crate::store::Result<()> {
                sqlx::query("INSERT INTO document_drafts (case_id, kind, draft, updated_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (case_id, kind) DO UPDATE SET draft = excluded.draft, updated_at = excluded.updated_at")
                    .bind(case_id)
                    .bind(kind.as_str())
                    .bind(draft)
                    .bind(now)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn document_get(&mut self, id: &str) -> $crate::store::Result<Option<$crate::store::DocumentRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::document_cols!(), " FROM documents WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn document_by_source_key(&mut self, key: &str) -> $crate::store::Result<Option<$crate::store::DocumentRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::document_cols!(), " FROM documents WHERE source_key = $1"))
                    .bind(key)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn document_latest(&mut self, case_id: &str, kind: $crate::domain::documents::DocumentKind) -> $crate::store::Result<Option<$crate::store::DocumentRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::document_cols!(), " FROM documents WHERE case_id = $1 AND kind = $2 ORDER BY version DESC LIMIT 1"))
                    .bind(case_id)
                    .bind(kind.as_str())
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn document_insert(&mut self, d: &$crate::store::DocumentRow) -> $crate::store::Result<()> {
                sqlx::query(concat!("INSERT INTO documents (", $crate::store::sql::document_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"))
                    .bind(&d.id)
                    .bind(&d.case_id)
                    .bind(d.kind.0.as_str())
                    .bind(d.version)
                    .bind(&d.source_key)
                    .bind(&d.title)
                    .bind(&d.author)
                    .bind(d.status.as_str())
                    .bind(&d.replaces_id)
                    .bind(&d.content_sha1)
                    .bind(d.size)
                    .bind(d.created_at)
                    .bind(d.review_status.0.map(|r| r.as_str()))
                    .bind(d.review_due_at)
                    .bind(d.chases)
                    .bind(d.reviewed_at)
                    .bind(d.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn document_update(&mut self, d: &$crate::store::DocumentRow) -> $crate::store::Result<()> {
                sqlx::query("UPDATE documents SET status = $2, review_status = $3, chases = $4, reviewed_at = $5, updated_at = $6 WHERE id = $1")
                    .bind(&d.id)
                    .bind(d.status.as_str())
                    .bind(d.review_status.0.map(|r| r.as_str()))
                    .bind(d.chases)
                    .bind(d.reviewed_at)
                    .bind(d.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn comment_insert(&mut self, c: &$crate::store::CommentRow) -> $crate::store::Result<bool> {
                let r = sqlx::query(concat!("INSERT INTO document_comments (", $crate::store::sql::comment_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (comment_key) DO NOTHING"))
                    .bind(&c.id)
                    .bind(&c.document_id)
                    .bind(&c.case_id)
                    .bind(&c.comment_key)
                    .bind(&c.source)
                    .bind(&c.author)
                    .bind(&c.text)
                    .bind(c.commented_at)
                    .bind(c.received_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn practice_of(&mut self, case_id: &str) -> $crate::store::Result<Option<String>> {
                if let Some((ods, _)) = self.pending.practices.get(case_id) {
                    return Ok(Some(ods.clone()));
                }
                Ok(sqlx::query_scalar("SELECT gp_ods FROM case_practices WHERE case_id = $1")
                    .bind(case_id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn practice_set(&mut self, case_id: &str, ods: &str, now: i64) -> $crate::store::Result<()> {
                // Written with the rest of the unit of work (see `flush`).
                self.pending.practices.insert(case_id.to_owned(), (ods.to_owned(), now));
                Ok(())
            }

            async fn content_insert(&mut self, document_id: &str, xhtml: &str, now: i64) -> $crate::store::Result<()> {
                sqlx::query("INSERT INTO document_contents (document_id, xhtml, created_at) VALUES ($1, $2, $3) ON CONFLICT (document_id) DO NOTHING")
                    .bind(document_id)
                    .bind(xhtml)
                    .bind(now)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn delivery_insert(&mut self, d: &$crate::store::DeliveryRow) -> $crate::store::Result<()> {
                sqlx::query(concat!("INSERT INTO document_deliveries (", $crate::store::sql::delivery_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"))
                    .bind(&d.local_id)
                    .bind(&d.document_id)
                    .bind(&d.case_id)
                    .bind(&d.itk_message_id)
                    .bind(&d.recipient_ods)
                    .bind(&d.mailbox)
                    .bind(d.state.0.as_str())
                    .bind(d.delivered_before)
                    .bind(&d.ack_level)
                    .bind(&d.ack_code)
                    .bind(&d.ack_text)
                    .bind(d.created_at)
                    .bind(d.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }

            async fn delivery_by_local_id(&mut self, local_id: &str) -> $crate::store::Result<Option<$crate::store::DeliveryRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::delivery_cols!(), " FROM document_deliveries WHERE local_id = $1"))
                    .bind(local_id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn delivery_by_itk_id(&mut self, itk_message_id: &str) -> $crate::store::Result<Option<$crate::store::DeliveryRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::delivery_cols!(), " FROM document_deliveries WHERE lower(itk_message_id) = lower($1)"))
                    .bind(itk_message_id)
                    .fetch_optional(&mut *self.tx)
                    .await?)
            }

            async fn delivery_update(&mut self, d: &$crate::store::DeliveryRow) -> $crate::store::Result<()> {
                sqlx::query("UPDATE document_deliveries SET state = $2, delivered_before = $3, ack_level = $4, ack_code = $5, ack_text = $6, updated_at = $7 WHERE local_id = $1")
                    .bind(&d.local_id)
                    .bind(d.state.0.as_str())
                    .bind(d.delivered_before)
                    .bind(&d.ack_level)
                    .bind(&d.ack_code)
                    .bind(&d.ack_text)
                    .bind(d.updated_at)
                    .execute(&mut *self.tx)
                    .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::DocumentReads for $store {
            async fn documents_for_case(&self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::DocumentRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::document_cols!(), " FROM documents WHERE case_id = $1 ORDER BY created_at, kind, version"))
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn drafts_for_case(&self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::DraftRow>> {
                Ok(sqlx::query_as("SELECT case_id, kind, draft, updated_at FROM document_drafts WHERE case_id = $1 ORDER BY kind")
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn comments_for_case(&self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::CommentRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::comment_cols!(), " FROM document_comments WHERE case_id = $1 ORDER BY commented_at, id"))
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn reviews_overdue(&self, now: i64) -> $crate::store::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE review_status = 'awaiting' AND review_due_at < $1")
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn deliveries_for_case(&self, case_id: &str) -> $crate::store::Result<Vec<$crate::store::DeliveryRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::store::sql::delivery_cols!(), " FROM document_deliveries WHERE case_id = $1 ORDER BY created_at, local_id"))
                    .bind(case_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn document_content(&self, document_id: &str) -> $crate::store::Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT xhtml FROM document_contents WHERE document_id = $1")
                    .bind(document_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn delivery_counts(&self) -> $crate::store::Result<Vec<(String, i64)>> {
                Ok(sqlx::query_as("SELECT state, COUNT(*) FROM document_deliveries GROUP BY state")
                    .fetch_all(&self.pool)
                    .await?)
            }
        }
    };
}

pub(crate) use {comment_cols, delivery_cols, document_cols, impl_documents};
