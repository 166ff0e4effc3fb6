//! Write path: how fast the outbox dispatcher delivers decision Tasks to a
//! FHIR server, against raw reqwest POSTs of the same bodies with the same
//! `If-None-Exist` header and the same concurrency.
//!
//! The dispatcher runs in this process (the library's `Dispatcher`, default
//! outbox settings) over a fresh SQLite store; it is timed from its start to
//! the last row's `done_at`, read from the store afterwards. While it runs the
//! bench watches only the counters it keeps in memory: no query competes
//! with it for the store. Each side gets a fresh sink, so every request is a
//! real create (201), never a match.

use crate::fixtures::{self, TaskRow};
use crate::setup::{self, Names, Services};
use crate::sink::Sink;
use anyhow::{Context as _, bail};
use futures_util::{StreamExt, TryStreamExt};
use ips_bridge::amqp::Publisher;
use ips_bridge::amqp::sink::EventSink;
use ips_bridge::engine::outbox::{Dispatcher, OutboxKind, Sinks};
use ips_bridge::engine::{Context, Engine, SystemClock, ms};
use ips_bridge::fhir::FhirClient;
use ips_bridge::fhir::sink::FhirSink;
use ips_bridge::store::NewOutbox;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows inserted per store transaction while preparing the outbox.
const INSERT_CHUNK: usize = 500;

pub struct Figures {
    /// Rows per second.
    pub bridge: f64,
    pub baseline: f64,
}

/// `rounds` alternations of baseline then bridge against the sink; the best
/// round of each is kept (both sides get the same treatment).
pub async fn against_sink(svc: &Services, n: usize, rounds: usize) -> anyhow::Result<Figures> {
    let mut best = Figures {
        bridge: 0.0,
        baseline: 0.0,
    };
    for round in 1..=rounds {
        let system = format!("https://ips-bridge.bench.example/Id/{}", setup::uid());
        let rows = fixtures::task_rows(n, &setup::uid(), &system)?;
        let concurrency = default_concurrency(svc)?;

        let sink = Sink::start().await?;
        let baseline = raw_reqwest(&sink.base, &rows, concurrency)
            .await
            .context("raw reqwest baseline")?;
        expect_created(&sink, n)?;
        eprintln!("write/sink round {round}: raw reqwest {baseline:.0} rows/s");

        let sink = Sink::start().await?;
        let bridge = dispatcher(svc, &sink.base, &rows)
            .await
            .context("outbox dispatcher")?;
        expect_created(&sink, n)?;
        eprintln!("write/sink round {round}: dispatcher {bridge:.0} rows/s");
        best.baseline = best.baseline.max(baseline);
        best.bridge = best.bridge.max(bridge);
    }
    Ok(best)
}

/// The dispatcher against the FHIR sandbox (a real FHIR server): for reference.
pub async fn against_sandbox(svc: &Services, n: usize) -> anyhow::Result<f64> {
    let system = format!("https://ips-bridge.bench.example/Id/{}", setup::uid());
    let rows = fixtures::task_rows(n, &setup::uid(), &system)?;
    let rate = dispatcher(svc, &svc.sandbox_url, &rows).await?;
    eprintln!("write/sandbox: dispatcher {rate:.0} rows/s");
    Ok(rate)
}

fn default_concurrency(svc: &Services) -> anyhow::Result<usize> {
    Ok(setup::settings(&setup::bridge_env(
        svc,
        "sqlite::memory:",
        &svc.sandbox_url,
        &Names::new("write"),
    ))?
    .outbox
    .concurrency)
}

fn expect_created(sink: &Sink, n: usize) -> anyhow::Result<()> {
    let (created, matched) = sink.counts();
    if created != n as u64 || matched != 0 {
        bail!("the sink saw {created} creates and {matched} matches; expected {n} creates");
    }
    Ok(())
}

/// The baseline: the same POSTs from a plain reqwest client, `concurrency` at a time.
async fn raw_reqwest(base: &str, rows: &[TaskRow], concurrency: usize) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let url = format!("{base}/Task");
    let started = Instant::now();
    futures_util::stream::iter(rows)
        .map(|row| {
            let req = http
                .post(&url)
                .header("accept", "application/fhir+json")
                .header("content-type", "application/fhir+json")
                .header("if-none-exist", row.condition())
                .body(row.body.clone());
            async move {
                let resp = req.send().await?.error_for_status()?;
                resp.bytes().await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_for_each(|()| async { Ok(()) })
        .await?;
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// The bridge: rows queued in a fresh SQLite outbox, then delivered by the
/// library's dispatcher, round after round, until nothing is pending.
async fn dispatcher(svc: &Services, fhir_url: &str, rows: &[TaskRow]) -> anyhow::Result<f64> {
    let db = svc.dir.join(format!("outbox-{}.db", setup::uid()));
    let env = setup::bridge_env(
        svc,
        &format!("sqlite://{}", db.display()),
        fhir_url,
        &Names::new("write"),
    );
    let settings = setup::settings(&env)?;
    let store = ips_bridge::store::connect(&settings.store).await?;
    store.migrate().await?;
    queue_rows(store.as_ref(), rows).await?;

    let key = settings
        .patient_key()
        .ok_or_else(|| anyhow::anyhow!("no patient key"))??;
    let engine = Engine::new(
        store.clone(),
        Context::from_settings(&settings, key),
        Arc::new(SystemClock),
    );
    let sinks = Sinks {
        fhir: Arc::new(FhirSink {
            client: Arc::new(FhirClient::new(&settings.fhir)?),
        }),
        // Never connects: Task rows do not publish.
        events: Arc::new(EventSink {
            publisher: Arc::new(Publisher::new(&settings.amqp, "ips-bench")),
            exchange: settings.amqp.events_exchange.clone(),
        }),

        mesh: None,
    };
    let d = Dispatcher::new(engine.clone(), sinks, settings.outbox.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    // Counters are process-wide and this runs several times: count from here.
    let metrics = ips_bridge::telemetry::init_metrics();
    let before = Delivery::read(&metrics);
    let started_ms = setup::wall_ms();
    let started = Instant::now();
    let running = tokio::spawn(d.run(stop.clone()));
    engine.outbox_wake.notify_one();
    let limit = Duration::from_secs(60) + Duration::from_millis(rows.len() as u64 * 20);
    // The dispatcher runs as in the daemon. The bench follows it by the
    // delivered and parked counters it keeps in memory, never by queries
    // that would compete with it for the store; the time comes from the
    // store afterwards (the last row's done_at).
    let outcome: anyhow::Result<()> = loop {
        let now = Delivery::read(&metrics);
        if now.parked > before.parked {
            break Err(anyhow::anyhow!(
                "{} outbox rows were parked as failed",
                now.parked - before.parked
            ));
        }
        if now.delivered - before.delivered >= rows.len() as u64 {
            break Ok(());
        }
        if started.elapsed() > limit {
            break Err(anyhow::anyhow!(
                "{} of {} rows delivered after {limit:?}",
                now.delivered - before.delivered,
                rows.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.cancel();
    let _ = running.await;
    let last_done: Option<i64> = {
        use sqlx::Connection as _;
        let url = format!("sqlite://{}", db.display());
        let mut c = sqlx::SqliteConnection::connect(&url).await?;
        sqlx::query_scalar("SELECT MAX(done_at) FROM outbox")
            .fetch_one(&mut c)
            .await?
    };
    store.close().await;
    outcome?;
    let span_ms = last_done.context("no row delivered")? as f64 - started_ms;
    Ok(rows.len() as f64 / (span_ms / 1000.0))
}

/// The dispatcher's own counters of Task rows delivered and rows parked.
struct Delivery {
    delivered: u64,
    parked: u64,
}

impl Delivery {
    fn read(handle: &metrics_exporter_prometheus::PrometheusHandle) -> Delivery {
        let text = handle.render();
        let sum = |prefix: &str| -> u64 {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        };
        Delivery {
            delivered: sum("ips_outbox_delivered_total{kind=\"fhir-create\"}"),
            parked: sum("ips_outbox_parked_total{"),
        }
    }
}

async fn queue_rows(store: &dyn ips_bridge::store::Store, rows: &[TaskRow]) -> anyhow::Result<()> {
    let now = ms(time::OffsetDateTime::now_utc());
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut tx = store.begin().await?;
        for r in chunk {
            let row = NewOutbox {
                kind: OutboxKind::FhirCreate.as_str(),
                dedupe_key: format!("fhir:Task:{}", r.identifier_value),
                // One case per decision: rows do not wait for each other.
                ordering_key: uuid::Uuid::new_v4().to_string(),
                payload: r.payload.clone(),
            };
            tx.outbox_add(&row, now).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}
