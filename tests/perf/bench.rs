//! `ips-bridge-bench`: the benchmark suite (GitHub issue 9). Run it with
//! `tests/perf/run.sh [--quick]`, which builds, starts the services and
//! passes what this binary needs.
//!
//! Every figure is set beside a baseline measured in the same run on the same
//! machine: the least work that does the same job without the bridge (a raw
//! lapin consumer, raw reqwest POSTs). Progress goes to stderr; the report
//! (one Markdown table) to stdout. The exit status is non-zero when a
//! benchmark could not be measured, not when a figure misses its goal.

mod broker;
mod daemon;
mod documents;
mod fixtures;
mod ingest;
mod latency;
mod outreach;
mod preflight;
mod record;
mod report;
mod setup;
mod sink;
mod write_path;

use clap::{Parser, ValueEnum};
use ingest::StoreKind;
use report::{Goal, Row};
use setup::{Cleanup, Services};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Benchmarks ips-bridge against raw baselines and prints one table")]
struct Args {
    /// The daemon binary (target/release/ips-bridge; the dev build's in quick mode).
    #[arg(long)]
    daemon: PathBuf,
    /// Base URL of a running FHIR sandbox (deploy/local/services.sh start_sandbox).
    #[arg(long)]
    sandbox_url: String,
    /// Small counts: the whole run takes seconds (for the test suite).
    #[arg(long)]
    quick: bool,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// A PostgreSQL database to connect to for creating (and dropping) the benchmark's own.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_admin_url: String,
    /// The same PostgreSQL over its Unix socket (skipped when the socket directory is absent)
    #[arg(
        long,
        default_value = "postgres://postgres@localhost/postgres?host=/var/run/postgresql"
    )]
    pg_socket_admin_url: String,
    /// Machine description for the report.
    #[arg(long, default_value = "unknown machine")]
    machine: String,
    /// Commit for the report.
    #[arg(long, default_value = "unknown commit")]
    commit: String,
    /// The cargo profile the binaries were built with, for the report
    /// (`tests/perf/run.sh --quick` uses the dev build: its figures are not comparable).
    #[arg(long, default_value = "release")]
    build: String,
    /// Run only these benchmarks (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Bench>,
    /// Stores the ingest benchmark runs the daemon on (default: all three).
    #[arg(long, value_delimiter = ',')]
    ingest_stores: Vec<StoreKind>,
    /// Messages for the ingest benchmark (default 20000; quick 500).
    #[arg(long)]
    ingest_n: Option<usize>,
    /// Outbox rows for the write path against the sink (default 5000; quick 200).
    #[arg(long)]
    write_n: Option<usize>,
    /// Seconds of steady publishing for the latency benchmark (default 60; quick 3).
    #[arg(long)]
    latency_secs: Option<f64>,
    /// Print one referral Bundle and one Appointment as sent, and exit.
    #[arg(long)]
    print_sample: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Bench {
    Ingest,
    Write,
    Latency,
    /// DNA → outreach Flag latency (issue 13).
    Outreach,
    /// VP completed → DocumentReference latency (issue 17).
    Documents,
}

/// Counts and timings of one run.
struct Plan {
    ingest_n: usize,
    /// `/metrics` scrape interval while timing a drain.
    poll: Duration,
    write_n: usize,
    write_rounds: usize,
    sandbox_n: usize,
    latency: latency::Plan,
    outreach: latency::Plan,
}

impl Plan {
    fn from(a: &Args) -> Plan {
        let q = a.quick;
        let latency_secs = a.latency_secs.unwrap_or(if q { 3.0 } else { 60.0 });
        Plan {
            ingest_n: a.ingest_n.unwrap_or(if q { 500 } else { 20_000 }),
            // Finer in quick mode: a 500-message drain lasts a fraction of a second.
            poll: Duration::from_millis(if q { 200 } else { 1000 }),
            write_n: a.write_n.unwrap_or(if q { 200 } else { 5_000 }),
            write_rounds: if q { 1 } else { 2 },
            sandbox_n: if q { 50 } else { 500 },
            latency: latency::Plan {
                rate: 200.0,
                duration: Duration::from_secs_f64(latency_secs),
                settle: Duration::from_secs(1),
            },
            // Quick: 50/s for 5 s opens 250 cases, then 250 DNAs.
            outreach: latency::Plan {
                rate: if q { 50.0 } else { 200.0 },
                duration: Duration::from_secs(if q { 5 } else { 60 }),
                settle: Duration::ZERO,
            },
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_sample {
        return preflight::print_sample();
    }
    let plan = Plan::from(&args);
    // The in-process dispatcher records metrics as it does in the daemon.
    ips_bridge::telemetry::init_metrics();
    let dir = std::env::temp_dir().join(format!("ips-bench-{}", setup::uid()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let svc = Services {
        amqp_url: args.amqp_url.clone(),
        pg_admin_url: args.pg_admin_url.clone(),
        pg_socket_admin_url: args.pg_socket_admin_url.clone(),
        sandbox_url: args.sandbox_url.trim_end_matches('/').to_owned(),
        daemon: args.daemon.clone(),
        dir: dir.clone(),
    };
    let cleanup = Cleanup::default();
    let mut notes = vec![];
    // Child processes are killed when their owners drop, so an interrupt
    // that drops the run still leaves nothing running.
    let mut rows = tokio::select! {
        rows = run_all(&args, &plan, &svc, &cleanup, &mut notes) => rows,
        signal = interrupted() => vec![Row::error("run", &anyhow::anyhow!("interrupted by {signal}"))],
    };
    for problem in cleanup.run(&svc).await {
        rows.push(Row::error("cleanup", &anyhow::anyhow!(problem)));
    }
    let failed = rows.iter().any(Row::is_error);
    let title = format!(
        "ips-bridge benchmarks ({})",
        if args.quick { "quick" } else { "full" }
    );
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let context = [
        format!("machine: {}", args.machine),
        format!("commit: {}", args.commit),
        format!("build: {}", args.build),
        format!("date: {date}"),
        format!("daemon log level: {}", setup::daemon_log_level()),
    ];
    print!("{}", report::render(&title, &context, &rows, &notes));
    if failed {
        eprintln!(
            "some benchmarks failed; daemon logs and databases are kept in {}",
            dir.display()
        );
        ExitCode::FAILURE
    } else if std::env::var_os("IPS_BENCH_KEEP").is_some() {
        eprintln!(
            "IPS_BENCH_KEEP is set: daemon logs and databases are kept in {}",
            dir.display()
        );
        ExitCode::SUCCESS
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        ExitCode::SUCCESS
    }
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// Runs the selected benchmarks in order; each failure becomes an error row
/// and the others still run.
async fn run_all(
    args: &Args,
    plan: &Plan,
    svc: &Services,
    cleanup: &Cleanup,
    notes: &mut Vec<String>,
) -> Vec<Row> {
    let wanted = |b: Bench| args.only.is_empty() || args.only.contains(&b);
    let mut rows = vec![];
    if let Err(e) = preflight::check(svc) {
        rows.push(Row::error("fixtures", &e));
        return rows;
    }
    let mut memory = vec![];
    if wanted(Bench::Ingest) {
        match fixtures::ingest_mix(plan.ingest_n, &setup::uid()) {
            Ok(messages) => {
                notes.push(ingest_note(plan, &messages, svc));
                let socket = std::path::Path::new("/var/run/postgresql/.s.PGSQL.5432").exists();
                if !socket {
                    notes.push(
                        "PostgreSQL over Unix socket skipped: no /var/run/postgresql/.s.PGSQL.5432"
                            .into(),
                    );
                }
                let stores = [
                    StoreKind::Sqlite,
                    StoreKind::Postgres,
                    StoreKind::PostgresSocket,
                ];
                for store in stores
                    .into_iter()
                    .filter(|s| socket || *s != StoreKind::PostgresSocket)
                    .filter(|s| args.ingest_stores.is_empty() || args.ingest_stores.contains(s))
                {
                    let figure = format!(
                        "ingest, {} store (msgs/s, N={})",
                        store.label(),
                        plan.ingest_n
                    );
                    match ingest::run(svc, cleanup, store, &messages, plan.poll).await {
                        Ok(f) => {
                            let at_least = if f.bridge.lower_bound { "≥" } else { "" };
                            let row = Row::measured(
                                format!("{figure}, against consume + confirmed publish + ack"),
                                f.bridge.per_sec,
                                Some(f.relay.per_sec),
                                Goal::RatioAtLeast(0.8),
                                report::per_sec,
                            );
                            rows.push(row.qualified(at_least));
                            let row = Row::measured(
                                format!("{figure}, against consume + ack"),
                                f.bridge.per_sec,
                                Some(f.baseline.per_sec),
                                Goal::None,
                                report::per_sec,
                            );
                            rows.push(row.qualified(at_least));
                            if store == StoreKind::Postgres {
                                rows.push(
                                    ingest::two_replicas_row(
                                        svc,
                                        cleanup,
                                        &messages,
                                        plan.poll,
                                        f.bridge.per_sec,
                                    )
                                    .await,
                                );
                            }
                            let peak = f.peak.peak_kib as f64 * 1.024 / 1000.0;
                            memory.push(Row::measured(
                                format!("daemon peak RSS after ingest, {} (VmHWM)", store.label()),
                                peak,
                                None,
                                Goal::None,
                                report::mb,
                            ));
                        }
                        Err(e) => rows.push(Row::error(figure, &e)),
                    }
                }
            }
            Err(e) => rows.push(Row::error("ingest fixtures", &e)),
        }
    }
    if wanted(Bench::Write) {
        notes.push(write_note(plan));
        let figure = format!("write path, outbox → sink (rows/s, N={})", plan.write_n);
        match write_path::against_sink(svc, plan.write_n, plan.write_rounds).await {
            Ok(f) => rows.push(Row::measured(
                figure,
                f.bridge,
                Some(f.baseline),
                Goal::RatioAtLeast(0.8),
                report::per_sec,
            )),
            Err(e) => rows.push(Row::error(figure, &e)),
        }
        let figure = format!(
            "write path, outbox → FHIR sandbox (rows/s, N={})",
            plan.sandbox_n
        );
        match write_path::against_sandbox(svc, plan.sandbox_n).await {
            Ok(rate) => rows.push(Row::measured(
                figure,
                rate,
                None,
                Goal::Reference,
                report::per_sec,
            )),
            Err(e) => rows.push(Row::error(figure, &e)),
        }
    }
    if wanted(Bench::Latency) {
        notes.push(latency_note(plan));
        latency_rows(svc, cleanup, &plan.latency, &mut rows, &mut memory).await;
    }
    // DNA → Flag and VP completed → DocumentReference share a plan: N
    // cases, one timed message each.
    let scenarios = [
        (
            Bench::Outreach,
            &outreach::SCENARIO,
            outreach::note(&plan.outreach),
        ),
        (
            Bench::Documents,
            &documents::SCENARIO,
            documents::note(&plan.outreach),
        ),
    ];
    for (_, scenario, note) in scenarios.into_iter().filter(|s| wanted(s.0)) {
        notes.push(note);
        record::rows(svc, cleanup, scenario, &plan.outreach, &mut rows).await;
    }
    rows.extend(memory);
    rows
}

async fn latency_rows(
    svc: &Services,
    cleanup: &Cleanup,
    plan: &latency::Plan,
    rows: &mut Vec<Row>,
    memory: &mut Vec<Row>,
) {
    let at = format!(
        "{:.0} msg/s for {:.0} s",
        plan.rate,
        plan.duration.as_secs_f64()
    );
    let baseline = latency::baseline(svc, cleanup, plan).await;
    if let Err(e) = &baseline {
        rows.push(Row::error(
            format!("raw lapin publish → consume latency ({at})"),
            e,
        ));
    }
    let baseline = baseline.ok();
    match latency::bridge(svc, cleanup, plan).await {
        Ok(f) => {
            let committed = [
                ("p50", f.committed.p50, baseline.map(|b| b.p50)),
                ("p99", f.committed.p99, baseline.map(|b| b.p99)),
            ];
            for (p, v, b) in committed {
                let goal = if p == "p99" {
                    Goal::Below(1000.0)
                } else {
                    Goal::None
                };
                rows.push(Row::measured(
                    format!("latency publish → committed, {p} ({at})"),
                    v,
                    b,
                    goal,
                    report::millis,
                ));
            }
            for (p, v) in [("p50", f.event.p50), ("p99", f.event.p99)] {
                let goal = if p == "p99" {
                    Goal::Below(1000.0)
                } else {
                    Goal::None
                };
                rows.push(Row::measured(
                    format!("latency publish → referral.received, {p} ({at})"),
                    v,
                    None,
                    goal,
                    report::millis,
                ));
            }
            let idle = f.idle.rss_kib as f64 * 1.024 / 1000.0;
            memory.insert(
                0,
                Row::measured(
                    "daemon RSS idle after ready (VmRSS)",
                    idle,
                    None,
                    Goal::Below(50.0),
                    report::mb,
                ),
            );
            eprintln!("latency: {} referrals measured", f.sent);
        }
        Err(e) => rows.push(Row::error(format!("latency ({at})"), &e)),
    }
}

fn ingest_note(plan: &Plan, messages: &[fixtures::Message], svc: &Services) -> String {
    let referral = fixtures::avg_kib(messages.iter().filter(|m| m.referral_value.is_some()));
    let appointment = fixtures::avg_kib(messages.iter().filter(|m| m.referral_value.is_none()));
    let prefetch = setup::settings(&setup::bridge_env(
        svc,
        "sqlite::memory:",
        &svc.sandbox_url,
        &setup::Names::new("note"),
    ))
    .map(|s| s.amqp.prefetch.to_string())
    .unwrap_or_else(|_| "?".into());
    format!(
        "ingest: {} messages (half BaRS referral Bundles, {referral:.1} KiB average; half Appointments for the same patients, \
         {appointment:.1} KiB) published persistent and confirmed to a quorum queue declared with the daemon's arguments, before \
         any consumer starts. ips-bridge: the release daemon as a child process, timed from its first inbox row's processed_at \
         to the later of its last one and the last event's delivery (outbox done_at), read from the store after the drain (a /metrics scrape every {} ms only tells when it is done). Baselines, \
         run just before the daemon on the same bodies, on an identically declared queue with prefetch {prefetch} (the daemon's \
         default), timed from the first delivery to the last ack: a raw lapin consumer with one basic.ack per delivery, and a raw \
         relay that also publishes one small persistent message per delivery on a confirm channel and acks once it is confirmed \
         (the transport work the bridge's job needs: each referral publishes an event).",
        plan.ingest_n,
        plan.poll.as_millis()
    )
}

fn write_note(plan: &Plan) -> String {
    format!(
        "write path: decision Task rows (built by the library's DecisionTask) in a fresh SQLite outbox, delivered by the library's \
         Dispatcher in this process (default outbox settings), timed from its start to the last row's done_at read from the \
         store afterwards; while it runs the bench follows only its in-memory delivered/parked counters, so no query competes \
         with it for the store. Baseline: raw reqwest POSTs of the same \
         bodies with the same If-None-Exist, at the dispatcher's concurrency. Sink: an in-process axum server answering 201 \
         (Location, ETag). Best of {} alternating round(s) for each side. The sandbox row (N={}) is the same dispatcher against \
         the Node FHIR sandbox, for reference.",
        plan.write_rounds, plan.sandbox_n
    )
}

fn latency_note(plan: &Plan) -> String {
    format!(
        "latency: BaRS referrals at {:.0} msg/s for {:.0} s to the daemon (SQLite). committed = inbox.processed_at (stamped when \
         the batch transaction starts, ms resolution) − publish time; referral.received = arrival of the bridge's event on a queue \
         bound to its events exchange − publish time. Baseline: raw lapin publish → consume on an identically declared queue at \
         the same rate. Idle RSS is read {:.0} s after /readyz first answers 200, before publishing.",
        plan.latency.rate,
        plan.latency.duration.as_secs_f64(),
        plan.latency.settle.as_secs_f64()
    )
}
