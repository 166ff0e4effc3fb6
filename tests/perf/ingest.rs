//! Ingest: how fast the daemon drains a backlog from its quorum queue,
//! against a raw lapin consumer draining the same bodies from an identically
//! declared queue with the same prefetch.
//!
//! The backlog is published (persistent, confirmed) before the consumer
//! starts, so the figure is the drain rate and not the publisher's. The
//! daemon's clock runs from its first inbox row's `processed_at` to the
//! last commit or the last event delivered (outbox `done_at`), whichever is
//! later, read from the store after the drain (a `/metrics` scrape once a
//! second only says when it is done); the raw consumers' from their first
//! delivery to their last ack.

use crate::broker::{self, Amqp};
use crate::daemon::{Daemon, Memory, Outcomes, free_addr};
use crate::fixtures::Message;
use crate::report::{self, Goal, Row};
use crate::setup::{self, Cleanup, Names, Services};
use anyhow::{Context as _, bail};
use std::time::{Duration, Instant};

/// A drain that makes no progress for this long has failed.
const STALL: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    #[value(name = "sqlite")]
    Sqlite,
    /// PostgreSQL over TCP (127.0.0.1:5432).
    #[value(name = "pg-tcp")]
    Postgres,
    /// PostgreSQL over its Unix socket: sqlx 0.9.0 does not set TCP_NODELAY
    /// (upstream issue #4335, fixed after the release), so over TCP each large
    /// statement can wait ~40 ms for a delayed ACK; the socket shows the
    /// bridge's own cost.
    #[value(name = "pg-socket")]
    PostgresSocket,
}

impl StoreKind {
    pub fn label(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL over TCP",
            StoreKind::PostgresSocket => "PostgreSQL over Unix socket",
        }
    }
}

pub struct Figures {
    pub bridge: Rate,
    /// Raw lapin consume + ack.
    pub baseline: Rate,
    /// Raw lapin consume + one confirmed publish + ack per message.
    pub relay: Rate,
    /// The daemon's peak resident memory (VmHWM) after the drain.
    pub peak: Memory,
}

/// Messages per second; `lower_bound` when the daemon finished before the
/// second scrape, so only start-up to end could be timed.
#[derive(Clone, Copy)]
pub struct Rate {
    pub per_sec: f64,
    pub lower_bound: bool,
}

/// Baseline first, then the bridge, on fresh queues with the same bodies.
pub async fn run(
    svc: &Services,
    cleanup: &Cleanup,
    store: StoreKind,
    messages: &[Message],
    poll: Duration,
) -> anyhow::Result<Figures> {
    eprintln!(
        "ingest/{}: raw lapin baseline, {} messages",
        store.label(),
        messages.len()
    );
    let baseline = baseline(svc, cleanup, messages)
        .await
        .context("raw lapin baseline")?;
    eprintln!(
        "ingest/{}: baseline {:.0} msg/s; now the daemon",
        store.label(),
        baseline.per_sec
    );
    let relay = relay(svc, cleanup, messages)
        .await
        .context("raw lapin relay baseline")?;
    eprintln!(
        "ingest/{}: relay baseline {:.0} msg/s",
        store.label(),
        relay.per_sec
    );
    let (bridge, peak) = bridge(svc, cleanup, store, messages, poll)
        .await
        .context("ips-bridge daemon")?;
    eprintln!(
        "ingest/{}: bridge {:.0} msg/s",
        store.label(),
        bridge.per_sec
    );
    Ok(Figures {
        bridge,
        baseline,
        relay,
        peak,
    })
}

/// Which raw consumer a baseline drains with.
#[derive(Clone, Copy)]
enum Raw {
    /// consume + ack
    Consume,
    /// consume + one confirmed publish + ack
    Relay,
}

async fn baseline(svc: &Services, cleanup: &Cleanup, messages: &[Message]) -> anyhow::Result<Rate> {
    raw(svc, cleanup, messages, Raw::Consume).await
}

async fn relay(svc: &Services, cleanup: &Cleanup, messages: &[Message]) -> anyhow::Result<Rate> {
    raw(svc, cleanup, messages, Raw::Relay).await
}

/// Fills a queue declared like the daemon's with `messages`, then drains it
/// with the raw consumer `how`.
async fn raw(
    svc: &Services,
    cleanup: &Cleanup,
    messages: &[Message],
    how: Raw,
) -> anyhow::Result<Rate> {
    let (amqp, names, amqp_settings) = broker::raw_queue(svc, cleanup, "ingest-raw").await?;
    amqp.publish_all("", &names.queue, messages).await?;
    amqp.close().await;
    let (url, queue, prefetch, n) = (
        &svc.amqp_url,
        &names.queue,
        amqp_settings.prefetch,
        messages.len(),
    );
    let drained = match how {
        Raw::Consume => broker::drain_raw(url, queue, prefetch, n, STALL).await?,
        Raw::Relay => {
            cleanup.exchange(&names.events);
            broker::drain_relay(url, queue, &names.events, prefetch, n, STALL).await?
        }
    };
    Ok(Rate {
        per_sec: drained.rate(),
        lower_bound: false,
    })
}

async fn bridge(
    svc: &Services,
    cleanup: &Cleanup,
    store: StoreKind,
    messages: &[Message],
    poll: Duration,
) -> anyhow::Result<(Rate, Memory)> {
    replicas(svc, cleanup, store, messages, poll, 1).await
}

/// Two daemons on one PostgreSQL database and one queue, against the
/// one-daemon figure `one` of the same run on the same bodies. Under
/// `amqp.single_active_consumer` one consumes while the other stands by;
/// both run outbox dispatchers, so the events are delivered by whichever
/// claims each row first.
pub async fn two_replicas_row(
    svc: &Services,
    cleanup: &Cleanup,
    messages: &[Message],
    poll: Duration,
    one: f64,
) -> Row {
    let figure = format!(
        "ingest, two replicas on one PostgreSQL over TCP store (msgs/s, N={}), against one replica",
        messages.len()
    );
    match replicas(svc, cleanup, StoreKind::Postgres, messages, poll, 2).await {
        Ok((two, _)) => Row::measured(figure, two.per_sec, Some(one), Goal::None, report::per_sec)
            .qualified(if two.lower_bound { "≥" } else { "" }),
        Err(e) => Row::error(figure, &e),
    }
}

/// `n` daemons with the same configuration drain the backlog; the figure is
/// read from the store they share.
async fn replicas(
    svc: &Services,
    cleanup: &Cleanup,
    store: StoreKind,
    messages: &[Message],
    poll: Duration,
    n: usize,
) -> anyhow::Result<(Rate, Memory)> {
    let names = Names::new("ingest");
    let store_url = match store {
        StoreKind::Sqlite => format!(
            "sqlite://{}",
            svc.dir
                .join(format!("ingest-{}.db", setup::uid()))
                .display()
        ),
        StoreKind::Postgres => cleanup.pg_database(&svc.pg_admin_url).await?,
        StoreKind::PostgresSocket => cleanup.pg_database(&svc.pg_socket_admin_url).await?,
    };
    let env = setup::bridge_env(svc, &store_url, &svc.sandbox_url, &names);
    let settings = setup::settings(&env)?;
    let amqp = Amqp::connect(&svc.amqp_url, "ips-bench-publisher").await?;
    cleanup.names(&names);
    ips_bridge::amqp::topology::declare(&amqp.ch, &settings.amqp).await?;
    amqp.publish_all(&names.exchange, "bars.servicerequest-request", messages)
        .await?;
    amqp.close().await;

    let mut daemons = Vec::with_capacity(n);
    for i in 0..n {
        let log = svc
            .dir
            .join(format!("daemon-ingest-{}-{n}-{i}.log", store.label()));
        daemons.push(Daemon::spawn(&svc.daemon, &env, free_addr()?, &log)?);
    }
    let mut timed = time_drain(&mut daemons, messages.len() as u64, poll).await;
    if timed.is_ok() {
        // The job includes publishing the events the messages caused: wait for
        // the outbox to empty, so the window read from the store below ends
        // with the last event's confirm, not with the last commit. Every
        // replica reads the same figure from the store.
        if let Err(e) = outbox_empty(&mut daemons[0], poll).await {
            timed = Err(e);
        }
    }
    let peak = daemons[0].memory();
    if std::env::var_os("IPS_BENCH_KEEP").is_some() {
        // For profiling: batch sizes and commit times are in the daemon's metrics.
        let text = daemons[0].metrics().await.unwrap_or_default();
        let _ = std::fs::write(
            svc.dir
                .join(format!("metrics-ingest-{}.txt", store.label())),
            text,
        );
    }
    let mut stopped = Ok(());
    for d in daemons {
        stopped = stopped.and(d.stop().await);
    }
    let (scraped, outcomes) = timed?;
    stopped?;
    if outcomes.get("processed") != messages.len() as u64 {
        bail!(
            "expected {} messages processed, the daemons report {outcomes}",
            messages.len()
        );
    }
    // The figure comes from the store, read after the daemons stopped: the
    // scrapes above only tell when it is done, so how often they run cannot
    // flatter or slow the drain (a scrape costs the store nothing).
    let rate = from_store(&store_url).await?.unwrap_or(scraped);
    Ok((rate, peak?))
}

/// Polls `/metrics` until `ips_outbox_pending` is 0.
async fn outbox_empty(daemon: &mut Daemon, poll: Duration) -> anyhow::Result<()> {
    // The gauge is read from the store once per refresh: wait for a refresh
    // after the last commit, so a 0 read before the drain cannot end this.
    let refresh = humantime::parse_duration(setup::GAUGE_REFRESH)?;
    tokio::time::sleep(refresh + poll).await;
    let started = Instant::now();
    loop {
        let text = daemon.metrics().await?;
        let pending = text
            .lines()
            .find_map(|l| l.strip_prefix("ips_outbox_pending "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if pending == Some(0.0) {
            return Ok(());
        }
        if started.elapsed() > STALL {
            bail!("the outbox still holds {pending:?} rows after {STALL:?}");
        }
        tokio::time::sleep(poll).await;
    }
}

/// Messages per second from the first inbox row's `processed_at` to the
/// later of the last one and the last outbox row's `done_at` (the last event
/// confirmed). `processed_at` is stamped as each batch's transaction begins.
/// `None` when everything landed in one batch.
async fn from_store(store_url: &str) -> anyhow::Result<Option<Rate>> {
    use sqlx::Connection as _;
    const SQL: &str = "SELECT MIN(i.processed_at), MAX(i.processed_at), COUNT(*), \
         (SELECT COALESCE(MAX(done_at), 0) FROM outbox) FROM inbox i WHERE i.source = 'amqp'";
    let (first, last_commit, n, last_delivery): (i64, i64, i64, i64) =
        if store_url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(store_url).await?;
            sqlx::query_as(SQL).fetch_one(&mut c).await?
        } else {
            let mut c = sqlx::PgConnection::connect(store_url).await?;
            sqlx::query_as(SQL).fetch_one(&mut c).await?
        };
    let last = last_commit.max(last_delivery);
    let span = (last - first) as f64 / 1000.0;
    Ok((span > 0.0 && n > 1).then(|| Rate {
        per_sec: (n - 1) as f64 / span,
        lower_bound: false,
    }))
}

/// Scrapes every daemon's `/metrics` every `poll` until `n` messages are
/// finished between them.
async fn time_drain(
    daemons: &mut [Daemon],
    n: u64,
    poll: Duration,
) -> anyhow::Result<(Rate, Outcomes)> {
    let started = Instant::now();
    let mut first: Option<(Instant, u64)> = None;
    let mut progress = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(poll).await;
        let outcomes = match outcomes_of(daemons).await {
            Ok(o) => o,
            // The HTTP server is not listening yet.
            Err(e)
                if first.is_none()
                    && started.elapsed() < STALL
                    && e.downcast_ref::<reqwest::Error>().is_some() =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        let done = outcomes.finished();
        if done > 0 && first.is_none() {
            first = Some((now, done));
        }
        if done >= n {
            let rate = match first {
                Some((t0, d0)) if d0 < done => Rate {
                    per_sec: (done - d0) as f64 / (now - t0).as_secs_f64(),
                    lower_bound: false,
                },
                _ => Rate {
                    per_sec: done as f64 / started.elapsed().as_secs_f64(),
                    lower_bound: true,
                },
            };
            return Ok((rate, outcomes));
        }
        if done > progress.1 {
            progress = (now, done);
        } else if progress.0.elapsed() > STALL {
            bail!(
                "no progress for {STALL:?}: {outcomes}; daemon log ends with:\n{}",
                daemons[0].log_tail()
            );
        }
    }
}

/// The daemons' outcomes added up.
async fn outcomes_of(daemons: &mut [Daemon]) -> anyhow::Result<Outcomes> {
    let mut all = Outcomes::default();
    for d in daemons {
        all.add(&d.outcomes().await?);
    }
    Ok(all)
}
