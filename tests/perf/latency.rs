//! Latency at a steady rate: BaRS referrals published at `rate` per second
//! while the daemon (SQLite) runs, each publish time recorded by message id.
//!
//! * publish → committed: the inbox row's `processed_at` for that message id,
//!   read from the SQLite file after the run. `processed_at` is stamped when
//!   the batch's transaction starts, so this understates commit latency by
//!   the transaction's own duration (milliseconds).
//! * publish → `referral.received`: arrival of the bridge's event on a queue
//!   bound to its events exchange; the event's `referral_id` is mapped back to
//!   the published ServiceRequest identifier through the `referrals` table.
//!
//! The baseline is a raw lapin consumer on an identically declared queue fed
//! at the same rate for the same time. The daemon's idle memory is read here
//! too: after it is ready and before anything is published.

use crate::broker::{self, Amqp};
use crate::daemon::{Daemon, Memory, free_addr};
use crate::fixtures::{self, Message};
use crate::setup::{self, Cleanup, Names, Services, wall_ms};
use anyhow::{Context as _, bail};
use futures_util::StreamExt;
use lapin::PublisherConfirm;
use lapin::options::{BasicAckOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long to wait, after the last publish, for everything to arrive.
const DRAIN_WAIT: Duration = Duration::from_secs(60);

pub struct Plan {
    pub rate: f64,
    pub duration: Duration,
    /// Pause between readiness and the idle memory reading.
    pub settle: Duration,
}

impl Plan {
    fn count(&self) -> usize {
        (self.rate * self.duration.as_secs_f64()).round() as usize
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (milliseconds).
    pub fn of(mut samples: Vec<f64>) -> anyhow::Result<Percentiles> {
        if samples.is_empty() {
            bail!("no latency samples");
        }
        samples.sort_by(f64::total_cmp);
        let at = |p: f64| {
            samples
                [((p / 100.0 * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1]
        };
        Ok(Percentiles {
            p50: at(50.0),
            p99: at(99.0),
        })
    }
}

pub struct BridgeFigures {
    pub committed: Percentiles,
    pub event: Percentiles,
    pub idle: Memory,
    pub sent: usize,
}

/// Raw lapin publish → consume latency at the plan's rate.
pub async fn baseline(
    svc: &Services,
    cleanup: &Cleanup,
    plan: &Plan,
) -> anyhow::Result<Percentiles> {
    let (amqp, names, amqp_settings) = broker::raw_queue(svc, cleanup, "latency-raw").await?;
    let messages = fixtures::referrals(plan.count(), &setup::uid())?;
    let mut arrivals = Arrivals::start(
        &svc.amqp_url,
        &names.queue,
        amqp_settings.prefetch,
        Key::MessageId,
    )
    .await?;
    eprintln!(
        "latency/raw: publishing {} referrals at {}/s",
        messages.len(),
        plan.rate
    );
    let published = paced_publish(&amqp, "", &names.queue, &messages, plan.rate).await;
    amqp.close().await;
    let published = published?;
    let arrived = arrivals.wait_for(messages.len(), DRAIN_WAIT).await?;
    let samples = messages
        .iter()
        .zip(&published)
        .map(|(m, sent)| {
            arrived
                .get(&m.id)
                .map(|t| t - sent)
                .with_context(|| format!("message {} never arrived", m.id))
        })
        .collect::<anyhow::Result<Vec<f64>>>()?;
    Percentiles::of(samples)
}

/// The daemon's publish → committed and publish → event latency, and its idle memory.
pub async fn bridge(
    svc: &Services,
    cleanup: &Cleanup,
    plan: &Plan,
) -> anyhow::Result<BridgeFigures> {
    let names = Names::new("latency");
    let db = svc.dir.join(format!("latency-{}.db", setup::uid()));
    let env = setup::bridge_env(
        svc,
        &format!("sqlite://{}", db.display()),
        &svc.sandbox_url,
        &names,
    );
    let settings = setup::settings(&env)?;
    let amqp = Amqp::connect(&svc.amqp_url, "ips-bench-publisher").await?;
    cleanup.names(&names);
    ips_bridge::amqp::topology::declare(&amqp.ch, &settings.amqp).await?;
    let watch = format!("{}.watch", names.events);
    cleanup.queue(&watch);
    bind_watch_queue(&amqp, &watch, &names.events).await?;
    let mut events = Arrivals::start(&svc.amqp_url, &watch, 500, Key::ReferralId).await?;
    let messages = fixtures::referrals(plan.count(), &setup::uid())?;

    let mut daemon = Daemon::spawn(
        &svc.daemon,
        &env,
        free_addr()?,
        &svc.dir.join("daemon-latency.log"),
    )?;
    let measured = measure(&mut daemon, &amqp, &names, &messages, plan, &mut events).await;
    let stopped = daemon.stop().await;
    amqp.close().await;
    let (idle, published, event_times) = measured?;
    stopped?;

    let (committed, event) = from_store(&db, &messages, &published, &event_times).await?;
    Ok(BridgeFigures {
        committed: Percentiles::of(committed)?,
        event: Percentiles::of(event)?,
        idle,
        sent: messages.len(),
    })
}

/// Idle memory, then the paced publish, then waits until every message is
/// finished and every event has arrived.
async fn measure(
    daemon: &mut Daemon,
    amqp: &Amqp,
    names: &Names,
    messages: &[Message],
    plan: &Plan,
    events: &mut Arrivals,
) -> anyhow::Result<(Memory, Vec<f64>, HashMap<String, f64>)> {
    daemon.wait_ready(Duration::from_secs(30)).await?;
    tokio::time::sleep(plan.settle).await;
    let idle = daemon.memory()?;
    eprintln!(
        "latency/bridge: idle RSS {} KiB; publishing {} referrals at {}/s",
        idle.rss_kib,
        messages.len(),
        plan.rate
    );
    let published = paced_publish(
        amqp,
        &names.exchange,
        "bars.servicerequest-request",
        messages,
        plan.rate,
    )
    .await?;
    let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
    loop {
        let o = daemon.outcomes().await?;
        if o.finished() >= messages.len() as u64 {
            if o.get("processed") != messages.len() as u64 {
                bail!(
                    "expected {} referrals processed, the daemon reports {o}",
                    messages.len()
                );
            }
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("only {o} after {DRAIN_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived = events
        .wait_for(messages.len(), DRAIN_WAIT)
        .await
        .context("referral.received events")?;
    Ok((idle, published, arrived))
}

/// Latency samples (ms) from the daemon's SQLite file: inbox `processed_at`
/// by message id, and event arrival by referral id → ServiceRequest identifier.
async fn from_store(
    db: &std::path::Path,
    messages: &[Message],
    published: &[f64],
    events: &HashMap<String, f64>,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await?;
    let inbox: HashMap<String, i64> =
        sqlx::query_as("SELECT message_id, processed_at FROM inbox WHERE source = 'amqp'")
            .fetch_all(&pool)
            .await?
            .into_iter()
            .collect();
    let referrals: Vec<(String, String)> = sqlx::query_as("SELECT id, referral_key FROM referrals")
        .fetch_all(&pool)
        .await?;
    pool.close().await;

    let sent_by_value: HashMap<&str, f64> = messages
        .iter()
        .zip(published)
        .filter_map(|(m, t)| Some((m.referral_value.as_deref()?, *t)))
        .collect();
    let committed = messages
        .iter()
        .zip(published)
        .map(|(m, sent)| {
            inbox
                .get(&m.id)
                .map(|at| *at as f64 - sent)
                .with_context(|| format!("no inbox row for {}", m.id))
        })
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let mut event = Vec::with_capacity(messages.len());
    for (id, key) in &referrals {
        let value = key.rsplit_once('|').map(|(_, v)| v).unwrap_or(key);
        let sent = sent_by_value
            .get(value)
            .with_context(|| format!("referral {key} was not published by this run"))?;
        let arrived = events
            .get(id)
            .with_context(|| format!("no referral.received event for referral {id}"))?;
        event.push(arrived - sent);
    }
    if event.len() != messages.len() {
        bail!(
            "{} referrals stored for {} published",
            event.len(),
            messages.len()
        );
    }
    Ok((committed, event))
}

async fn bind_watch_queue(amqp: &Amqp, queue: &str, exchange: &str) -> anyhow::Result<()> {
    let opts = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    amqp.ch
        .queue_declare(queue.into(), opts, FieldTable::default())
        .await?;
    amqp.ch
        .queue_bind(
            queue.into(),
            exchange.into(),
            "referral.received".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Publishes `messages` at `rate` per second on a fixed schedule (a late
/// publish does not push the later ones back); returns each publish's wall
/// time in ms. Confirms are awaited off the schedule, in order.
pub async fn paced_publish(
    amqp: &Amqp,
    exchange: &str,
    routing_key: &str,
    messages: &[Message],
    rate: f64,
) -> anyhow::Result<Vec<f64>> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PublisherConfirm>();
    let confirms = tokio::spawn(async move {
        let mut pending = Vec::with_capacity(1);
        while let Some(c) = rx.recv().await {
            pending.push(c);
            broker::await_confirms(&mut pending).await?;
        }
        anyhow::Ok(())
    });
    let start = tokio::time::Instant::now();
    let mut times = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        times.push(wall_ms());
        let confirm = amqp.publish(exchange, routing_key, m).await?;
        if tx.send(confirm).is_err() {
            break;
        }
    }
    drop(tx);
    confirms.await??;
    if times.len() != messages.len() {
        bail!(
            "publishing stopped after {} of {} messages",
            times.len(),
            messages.len()
        );
    }
    Ok(times)
}

/// What identifies an arrival.
#[derive(Clone, Copy)]
enum Key {
    /// The AMQP message id (raw baseline).
    MessageId,
    /// `referral_id` in the JSON body (the bridge's events).
    ReferralId,
}

/// A consumer recording the wall time (ms) each message arrived, by key.
/// Dropping it stops the consumer.
struct Arrivals {
    seen: Arc<Mutex<HashMap<String, f64>>>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Arrivals {
    async fn start(url: &str, queue: &str, prefetch: u16, key: Key) -> anyhow::Result<Arrivals> {
        let (conn, mut consumer) =
            broker::consumer(url, "ips-bench-latency", queue, prefetch).await?;
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let stop = CancellationToken::new();
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let result = async {
                loop {
                    let next = tokio::select! {
                        d = consumer.next() => d,
                        _ = stop2.cancelled() => return Ok(()),
                    };
                    let delivery = next.context("consumer cancelled by the broker")??;
                    let at = wall_ms();
                    let id = match key {
                        Key::MessageId => delivery
                            .properties
                            .message_id()
                            .as_ref()
                            .map(|s| s.as_str().to_owned()),
                        Key::ReferralId => {
                            serde_json::from_slice::<serde_json::Value>(&delivery.data)
                                .ok()
                                .and_then(|v| v["referral_id"].as_str().map(str::to_owned))
                        }
                    };
                    if let (Some(id), Ok(mut seen)) = (id, seen2.lock()) {
                        seen.entry(id).or_insert(at);
                    }
                    delivery.acker.ack(BasicAckOptions::default()).await?;
                }
            }
            .await;
            let _ = conn.close(200, "done".into()).await;
            result
        });
        Ok(Arrivals {
            seen,
            stop,
            task: Some(task),
        })
    }

    fn count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Waits until `n` distinct keys have arrived, then stops the consumer.
    async fn wait_for(
        &mut self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<HashMap<String, f64>> {
        let task = self.task.take().context("arrivals already collected")?;
        let deadline = tokio::time::Instant::now() + timeout;
        while self.count() < n && tokio::time::Instant::now() < deadline && !task.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.cancel();
        task.await??;
        let seen = self
            .seen
            .lock()
            .map(|s| s.clone())
            .map_err(|_| anyhow::anyhow!("arrival map poisoned"))?;
        if seen.len() < n {
            bail!("{} of {n} messages arrived within {timeout:?}", seen.len());
        }
        Ok(seen)
    }
}
