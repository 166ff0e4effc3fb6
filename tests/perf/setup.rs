//! What every benchmark needs: unique names, the bridge's configuration, and
//! a register of what to delete at the end (queues, exchanges, databases),
//! whatever happened in between.

use crate::broker::Amqp;
use anyhow::Context as _;
use ips_bridge::config::Settings;
use sqlx::Connection as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the services are and what to run.
#[derive(Clone)]
pub struct Services {
    pub amqp_url: String,
    pub pg_admin_url: String,
    /// The same server over its Unix socket, when there is one.
    pub pg_socket_admin_url: String,
    pub sandbox_url: String,
    pub daemon: PathBuf,
    /// Scratch directory of this run (SQLite files, daemon logs).
    pub dir: PathBuf,
}

pub fn uid() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// Milliseconds since the epoch, the clock of the bridge's `processed_at`.
pub fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Exchange and queue names of one bridge instance, unique to this run so
/// that nothing collides with tests running beside the benchmark.
#[derive(Clone)]
pub struct Names {
    pub exchange: String,
    pub queue: String,
    pub dlx: String,
    pub dlq: String,
    pub events: String,
}

impl Names {
    pub fn new(tag: &str) -> Names {
        let p = format!("ips-bench.{}.{tag}", uid());
        Names {
            exchange: format!("{p}.clinical"),
            queue: format!("{p}.inbound"),
            dlx: format!("{p}.dlx"),
            dlq: format!("{p}.dlq"),
            events: format!("{p}.events"),
        }
    }
}

/// How often the benchmarked daemon reads its stored-state gauges.
pub const GAUGE_REFRESH: &str = "1s";

/// The bridge's configuration as `IPS__…` pairs: the embedded defaults plus
/// these names and URLs only, so prefetch, batch sizes and outbox concurrency
/// are the shipped defaults.
pub fn bridge_env(
    svc: &Services,
    store_url: &str,
    fhir_url: &str,
    n: &Names,
) -> Vec<(String, String)> {
    [
        ("IPS__STORE__URL", store_url),
        ("IPS__FHIR__BASE_URL", fhir_url),
        ("IPS__AMQP__URL", svc.amqp_url.as_str()),
        ("IPS__AMQP__INBOUND_EXCHANGE", n.exchange.as_str()),
        ("IPS__AMQP__INBOUND_QUEUE", n.queue.as_str()),
        ("IPS__AMQP__DEAD_LETTER_EXCHANGE", n.dlx.as_str()),
        ("IPS__AMQP__DEAD_LETTER_QUEUE", n.dlq.as_str()),
        ("IPS__AMQP__EVENTS_EXCHANGE", n.events.as_str()),
        ("IPS__POLLER__ENABLED", "false"),
        // The gauges of stored state (COUNT queries) once a second, as the
        // dispatcher read them before they moved to their own task; scrapes
        // themselves cost the store nothing.
        ("IPS__HTTP__METRICS_REFRESH", GAUGE_REFRESH),
        ("IPS__LOG__LEVEL", &daemon_log_level()),
        (
            "IPS__STORE__PATIENT_KEY",
            "bench-patient-key-0123456789abcdef0123",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The daemon's log filter: `warn` (logging costs time, and the figures must
/// not pay for it), or `IPS_BENCH_DAEMON_LOG` when profiling, e.g.
/// `info,sqlx::query=debug` (such figures are not comparable).
pub fn daemon_log_level() -> String {
    std::env::var("IPS_BENCH_DAEMON_LOG").unwrap_or_else(|_| "warn".into())
}

/// The settings the daemon will load from `env` (validated here first, so a
/// configuration mistake is reported before a process is started).
pub fn settings(env: &[(String, String)]) -> anyhow::Result<Settings> {
    Settings::load_from(None, env.to_vec())
        .map_err(|e| anyhow::anyhow!("invalid bridge configuration: {e}"))
}

/// Things to delete at the end of the run.
#[derive(Clone, Default)]
pub struct Cleanup(Arc<Mutex<Register>>);

#[derive(Default)]
struct Register {
    queues: Vec<String>,
    exchanges: Vec<String>,
    databases: Vec<String>,
}

impl Cleanup {
    fn with(&self, f: impl FnOnce(&mut Register)) {
        if let Ok(mut r) = self.0.lock() {
            f(&mut r);
        }
    }

    pub fn queue(&self, q: &str) {
        self.with(|r| r.queues.push(q.to_owned()));
    }

    pub fn exchange(&self, e: &str) {
        self.with(|r| r.exchanges.push(e.to_owned()));
    }

    /// Every queue and exchange the bridge declares for `n`.
    pub fn names(&self, n: &Names) {
        self.with(|r| {
            r.queues.extend([n.queue.clone(), n.dlq.clone()]);
            r.exchanges
                .extend([n.exchange.clone(), n.dlx.clone(), n.events.clone()]);
        });
    }

    /// Creates a fresh PostgreSQL database and registers it for dropping.
    pub async fn pg_database(&self, admin_url: &str) -> anyhow::Result<String> {
        let name = format!("ips_bench_{}", uid());
        let mut c = sqlx::PgConnection::connect(admin_url)
            .await
            .context("cannot connect to PostgreSQL")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await?;
        let _ = c.close().await;
        self.with(|r| r.databases.push(name.clone()));
        // Swap the database name, keeping any query (`?host=/var/run/postgresql`).
        let (path, query) = admin_url
            .split_once('?')
            .map_or((admin_url, None), |(p, q)| (p, Some(q)));
        let base = path.rsplit_once('/').map(|(b, _)| b).unwrap_or(path);
        Ok(match query {
            Some(q) => format!("{base}/{name}?{q}"),
            None => format!("{base}/{name}"),
        })
    }

    /// Deletes everything registered; returns what could not be deleted.
    pub async fn run(&self, svc: &Services) -> Vec<String> {
        let (queues, exchanges, databases) = match self.0.lock() {
            Ok(mut r) => (
                std::mem::take(&mut r.queues),
                std::mem::take(&mut r.exchanges),
                std::mem::take(&mut r.databases),
            ),
            Err(_) => return vec!["cleanup register poisoned".into()],
        };
        let mut problems = vec![];
        if !queues.is_empty() || !exchanges.is_empty() {
            match Amqp::connect(&svc.amqp_url, "ips-bench-cleanup").await {
                Ok(amqp) => {
                    for q in &queues {
                        if let Err(e) = amqp.delete_queue(q).await {
                            problems.push(format!("queue {q}: {e}"));
                        }
                    }
                    for x in &exchanges {
                        if let Err(e) = amqp.delete_exchange(x).await {
                            problems.push(format!("exchange {x}: {e}"));
                        }
                    }
                    amqp.close().await;
                }
                Err(e) => problems.push(format!(
                    "cannot delete {} queues and {} exchanges: {e:#}",
                    queues.len(),
                    exchanges.len()
                )),
            }
        }
        if !databases.is_empty() {
            match sqlx::PgConnection::connect(&svc.pg_admin_url).await {
                Ok(mut c) => {
                    for d in &databases {
                        let drop = format!("DROP DATABASE IF EXISTS {d} WITH (FORCE)");
                        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut c).await
                        {
                            problems.push(format!("database {d}: {e}"));
                        }
                    }
                    let _ = c.close().await;
                }
                Err(e) => problems.push(format!("cannot drop databases {databases:?}: {e}")),
            }
        }
        problems
    }
}
