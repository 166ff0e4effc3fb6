//! Patient lookup hashes under a new scheme or key.
//!
//! A concern of its own (a supertrait of [`Store`](super::Store)) rather than
//! part of the per-batch unit of work: it runs once, at start-up, before
//! anything can look a patient up, over the whole `patients` table.

use async_trait::async_trait;

/// Keeps every stored patient hash made with the configured key.
#[async_trait]
pub trait PatientHashes {
    /// Makes every patient's lookup hash the one of the key named by
    /// `fingerprint`: when the store's hashes were made with another scheme or
    /// key (table `patient_hash_key`), re-hashes each patient from its stored
    /// NHS number with `rehash` (`None`: the number is corrupt) and records
    /// `fingerprint`, all in one transaction, so a crash midway changes
    /// nothing. Idempotent; returns how many patients were re-hashed.
    async fn patients_rekey(
        &self,
        fingerprint: &str,
        rehash: &(dyn for<'s> Fn(&'s str) -> Option<String> + Send + Sync),
        now: i64,
    ) -> super::Result<u64>;
}

/// Implements [`PatientHashes`] for a store with `begin_tx()`; the SQL is
/// portable, so both back-ends share it.
macro_rules! impl_patient_hashes {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::rekey::PatientHashes for $store {
            async fn patients_rekey(
                &self,
                fingerprint: &str,
                rehash: &(dyn for<'s> Fn(&'s str) -> Option<String> + Send + Sync),
                now: i64,
            ) -> $crate::store::Result<u64> {
                let mut tx = self.begin_tx().await?;
                // A no-op write first: it takes the row lock (PostgreSQL) or the
                // write lock (SQLite), so replicas starting together re-hash once.
                sqlx::query("UPDATE patient_hash_key SET fingerprint = fingerprint WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                let held: Option<String> =
                    sqlx::query_scalar("SELECT fingerprint FROM patient_hash_key WHERE id = 1")
                        .fetch_optional(&mut *tx)
                        .await?;
                if held.as_deref() == Some(fingerprint) {
                    return Ok(0);
                }
                let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, nhs_number FROM patients")
                    .fetch_all(&mut *tx)
                    .await?;
                for (id, number) in &rows {
                    let hash = rehash(number).ok_or_else(|| {
                        $crate::store::StoreError::Corrupt(format!("patient {id}: the stored NHS number is not valid"))
                    })?;
                    sqlx::query("UPDATE patients SET nhs_hash = $1 WHERE id = $2")
                        .bind(hash)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(
                    "INSERT INTO patient_hash_key (id, fingerprint, rehashed_at) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, rehashed_at = excluded.rehashed_at",
                )
                .bind(fingerprint)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(rows.len() as u64)
            }
        }
    };
}
pub(crate) use impl_patient_hashes;
