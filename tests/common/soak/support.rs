//! The soak's clock, random numbers and store reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A clock file the daemon takes as "now": `2026-12-01T09:00:00Z` plus the
/// real time elapsed plus any jumps, rewritten (atomically) every 20 ms.
pub struct SoakClock {
    pub path: PathBuf,
    jump_ms: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl SoakClock {
    pub fn start(dir: &Path) -> SoakClock {
        let path = dir.join("now");
        let jump_ms = Arc::new(AtomicI64::new(0));
        let t0 = OffsetDateTime::parse("2026-12-01T09:00:00Z", &Rfc3339).expect("t0");
        let started = std::time::Instant::now();
        let write = {
            let (path, jump_ms) = (path.clone(), jump_ms.clone());
            move || {
                let now = t0
                    + time::Duration::try_from(started.elapsed()).expect("elapsed")
                    + time::Duration::milliseconds(jump_ms.load(Ordering::SeqCst));
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, now.format(&Rfc3339).expect("RFC 3339")).expect("clock");
                std::fs::rename(&tmp, &path).expect("clock rename");
            }
        };
        write();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                write();
            }
        });
        SoakClock {
            path,
            jump_ms,
            task,
        }
    }

    pub fn jump_days(&self, days: i64) {
        self.jump_ms.fetch_add(days * 86_400_000, Ordering::SeqCst);
    }

    pub fn setting(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for SoakClock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Rows of `sql` (every column cast to text in the query) from either store.
pub async fn rows(store_url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::{Connection as _, Row as _};
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if store_url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(store_url)
            .await
            .expect("open the SQLite store");
        let out = sqlx::query(sql)
            .fetch_all(&mut c)
            .await
            .expect("query the SQLite store")
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<Option<String>, _>(i))
                    .collect()
            })
            .collect();
        let _ = c.close().await;
        out
    } else {
        let mut c = sqlx::PgConnection::connect(store_url)
            .await
            .expect("open the PostgreSQL store");
        let out = sqlx::query(sql)
            .fetch_all(&mut c)
            .await
            .expect("query the PostgreSQL store")
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<Option<String>, _>(i))
                    .collect()
            })
            .collect();
        let _ = c.close().await;
        out
    }
}

/// A small seeded generator (SplitMix64), so a run's kill points can be repeated.
pub struct Rng(pub u64);

impl Rng {
    /// The seed from `IPS_SOAK_SEED`, else from the time of day.
    pub fn seed() -> u64 {
        std::env::var("IPS_SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(17)
            })
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Collects events from the watch queue `q` until two seconds pass with none
/// new: the end of a run, after the last message and timer.
pub async fn collect_until_quiet(p: &super::super::Pub, q: &str, into: &mut Vec<super::Event>) {
    loop {
        let before = into.len();
        super::collect_events(p, q, Duration::from_secs(2), into).await;
        if into.len() == before {
            return;
        }
    }
}
