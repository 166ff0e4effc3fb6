//! Patient lookup hashes are keyed (HMAC-SHA256 with `store.patient_key`), and
//! a store whose patients were hashed with the old plain SHA-256, or with
//! another key, is re-hashed at start-up: the patient is still found, on both
//! back-ends, across restarts and a key rotation, and a re-hash that fails
//! half-way leaves nothing half-done.

mod common;

use common::fixtures::*;
use common::*;
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const ROTATED_KEY: &str = "rotated-patient-key-fedcba9876543210fedcba98";

/// Raw access to a store, to lay it out as the previous release left it.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

macro_rules! on_db {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            Db::Sqlite($p) => $body,
            Db::Pg($p) => $body,
        }
    };
}

impl Db {
    async fn open(url: &str) -> Db {
        if url.starts_with("postgres") {
            Db::Pg(sqlx::PgPool::connect(url).await.unwrap())
        } else {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .unwrap()
                .create_if_missing(true);
            Db::Sqlite(sqlx::SqlitePool::connect_with(opts).await.unwrap())
        }
    }

    /// The schema before keyed hashes: migrations 0001..0003 only, from the
    /// same files the binary embeds (so their checksums match).
    async fn migrate_to_previous_release(&self) {
        let backend = match self {
            Db::Sqlite(_) => "sqlite",
            Db::Pg(_) => "postgres",
        };
        let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "src/store/migrations", backend]
            .iter()
            .collect();
        let m = Migrator::new(dir).await.unwrap();
        on_db!(self, |p| m.run_to(3, p).await.unwrap());
    }

    async fn insert_patient(&self, id: &str, hash: &str, number: &str) {
        on_db!(self, |p| sqlx::query(
            "INSERT INTO patients (id, nhs_hash, nhs_number, created_at) VALUES ($1, $2, $3, 0)"
        )
        .bind(id)
        .bind(hash)
        .bind(number)
        .execute(p)
        .await
        .unwrap()
        .rows_affected());
    }

    async fn insert_open_case(&self, id: &str, patient_id: &str) {
        on_db!(self, |p| {
            sqlx::query(
            "INSERT INTO cases (id, patient_id, status, opened_at, referral_count) VALUES ($1, $2, 'open', 0, 1)"
        )
        .bind(id)
        .bind(patient_id)
        .execute(p)
        .await
        .unwrap()
        .rows_affected()
        });
    }

    async fn set_number(&self, id: &str, number: &str) {
        on_db!(self, |p| sqlx::query(
            "UPDATE patients SET nhs_number = $1 WHERE id = $2"
        )
        .bind(number)
        .bind(id)
        .execute(p)
        .await
        .unwrap()
        .rows_affected());
    }

    async fn hash_of(&self, id: &str) -> String {
        on_db!(self, |p| sqlx::query_scalar(
            "SELECT nhs_hash FROM patients WHERE id = $1"
        )
        .bind(id)
        .fetch_one(p)
        .await
        .unwrap())
    }

    async fn fingerprint(&self) -> String {
        on_db!(self, |p| sqlx::query_scalar(
            "SELECT fingerprint FROM patient_hash_key WHERE id = 1"
        )
        .fetch_one(p)
        .await
        .unwrap())
    }

    async fn close(self) {
        on_db!(self, |p| p.close().await);
    }
}

/// The lookup hash of the previous release: unkeyed SHA-256 of a fixed label and the number.
fn legacy_hash(nhs: &str) -> String {
    hex::encode(Sha256::digest(format!("ips-bridge/nhs-number/v1:{nhs}")))
}

async fn case_referral_count(b: &Bridge, case_id: &str, want: i64) {
    eventually(
        WAIT,
        &format!("case {case_id} with {want} referrals"),
        || async {
            let (_, c) = b.api.get(&format!("/api/cases/{case_id}")).await;
            (c["referral_count"] == want).then_some(())
        },
    )
    .await;
    let (_, cases) = b.api.get("/api/cases").await;
    assert_eq!(
        cases["cases"].as_array().unwrap().len(),
        1,
        "the referral joined the existing case instead of opening another: {cases}"
    );
}

/// One scenario on one back-end: a patient and open case stored by the
/// previous release (plain SHA-256) are found by referrals after the upgrade,
/// after a restart, and after the key is rotated.
async fn legacy_patient_is_still_found(db_url: String) {
    let db = Db::open(&db_url).await;
    db.migrate_to_previous_release().await;
    let nhs = nhs_number(rand_seed());
    let other = nhs_number(rand_seed());
    db.insert_patient("p-legacy", &legacy_hash(&nhs), &nhs)
        .await;
    db.insert_patient("p-other", &legacy_hash(&other), &other)
        .await;
    db.insert_open_case("c-legacy", "p-legacy").await;

    let b = Bridge::start_with(Names::new(), Some(db_url.clone()), &[]).await;
    b.send(&Referral::new(&uid(), &nhs).bars_bundle()).await;
    case_referral_count(&b, "c-legacy", 2).await;
    let after_upgrade = db.hash_of("p-legacy").await;
    assert_ne!(after_upgrade, legacy_hash(&nhs), "re-hashed at start-up");
    assert_ne!(db.hash_of("p-other").await, legacy_hash(&other));
    assert!(db.fingerprint().await.starts_with("hmac-sha256:"));

    // A restart with the same key changes nothing (no double hashing).
    let b = b.restart(Duration::from_secs(5), &[]).await;
    assert_eq!(db.hash_of("p-legacy").await, after_upgrade);
    b.send(&Referral::new(&uid(), &nhs).bars_bundle()).await;
    case_referral_count(&b, "c-legacy", 3).await;

    // Key rotation: start with another key; everything is re-hashed once.
    let b = b
        .restart(
            Duration::from_secs(5),
            &[("IPS__STORE__PATIENT_KEY", ROTATED_KEY)],
        )
        .await;
    let rotated = db.hash_of("p-legacy").await;
    assert_ne!(rotated, after_upgrade, "re-hashed under the new key");
    b.send(&Referral::new(&uid(), &nhs).bars_bundle()).await;
    case_referral_count(&b, "c-legacy", 4).await;
    b.stop().await;
    db.close().await;
}

fn rand_seed() -> u64 {
    u64::from_str_radix(&uid()[..8], 16).unwrap()
}

#[tokio::test]
async fn legacy_sha256_patients_are_rehashed_and_found_on_sqlite() {
    let (_dir, url) = temp_sqlite_url();
    legacy_patient_is_still_found(url).await;
}

#[tokio::test]
async fn legacy_sha256_patients_are_rehashed_and_found_on_postgresql() {
    legacy_patient_is_still_found(fresh_pg_database().await).await;
}

/// The re-hash is one transaction: when it fails on a later row (here a
/// stored number that is not valid), the rows before it keep their old hash
/// and the old fingerprint stays, so the next start re-hashes them all.
#[tokio::test]
async fn a_rehash_that_fails_half_way_leaves_the_old_hashes() {
    let (_dir, url) = temp_sqlite_url();
    let db = Db::open(&url).await;
    db.migrate_to_previous_release().await;
    let nhs = nhs_number(rand_seed());
    db.insert_patient("p-1", &legacy_hash(&nhs), &nhs).await;
    db.insert_patient("p-2", "corrupt-hash", "not a number")
        .await;
    let sb = Sandbox::start();
    let n = Names::new();
    let failed = ips_bridge::app::start(settings(&url, &sb.url, &n, &[])).await;
    assert!(
        matches!(failed, Err(ips_bridge::app::StartError::Store { .. })),
        "start must fail on a corrupt row"
    );
    assert_eq!(db.hash_of("p-1").await, legacy_hash(&nhs), "rolled back");
    assert_eq!(db.fingerprint().await, "sha256-v1");

    let valid = nhs_number(rand_seed());
    db.set_number("p-2", &valid).await;
    let app = start_ready(settings(&url, &sb.url, &n, &[])).await;
    assert_ne!(db.hash_of("p-1").await, legacy_hash(&nhs));
    assert!(db.fingerprint().await.starts_with("hmac-sha256:"));
    app.stop(Duration::from_secs(5)).await;
    db.close().await;
}
