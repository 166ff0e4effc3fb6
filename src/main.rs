//! `ips-bridge`: the command line.

mod cli;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cli::outbox::{OutboxAction, outbox};
use cli::report::{ReportKind, report};
use ips_bridge::config::Settings;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Bridge between NHS clinical systems (FHIR R4, RabbitMQ) and an IPS employment service.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file layered over the embedded defaults (config/default.toml);
    /// environment variables IPS__SECTION__KEY override both.
    #[arg(long, short, global = true, env = "IPS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge: consume the queue, poll FHIR, deliver the outbox, serve HTTP. Stops cleanly on SIGTERM/SIGINT.
    Run {
        /// Longest wait for in-flight work on shutdown.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        grace: Duration,
    },
    /// Validate the configuration; print it with secrets redacted, or list every problem and exit 2.
    CheckConfig,
    /// Apply database migrations to the configured store, then exit.
    Migrate,
    /// Inspect and replay dead letters (kept in the store; listing never touches the broker).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
        /// List at most this many.
        #[arg(long, global = true, default_value_t = 1000)]
        limit: usize,
    },
    /// Parked outbox rows (writes and MESH sends that failed for good): list them, and
    /// deliver them again once the cause is fixed (e.g. mesh.mailboxes or credentials).
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// Publish files to the inbound exchange (persistent, confirmed), e.g. to inject or replay a message by hand.
    Send {
        /// Routing key for every file.
        #[arg(long, default_value = "manual")]
        routing_key: String,
        /// AMQP `type` property (ES events, e.g. ips.referral-decision.v1); FHIR JSON when absent.
        #[arg(long = "type")]
        message_type: Option<String>,
        /// Files holding one message body each.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Team reports from the store: the same numbers as the pages.
    Report {
        #[command(subcommand)]
        kind: ReportKind,
    },
    /// Render a made-up VP, IWSP or contact note as the XHTML a GP receives (no real person).
    RenderSample {
        /// vp, iwsp or note.
        #[arg(default_value = "vp")]
        kind: ips_bridge::domain::documents::DocumentKind,
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// One line per dead letter waiting for a replay: id, message id, error code, reason. Reads the store only.
    List {
        /// Only this error code (e.g. message-too-large).
        #[arg(long)]
        code: Option<String>,
        /// Also dead letters already replayed.
        #[arg(long)]
        include_replayed: bool,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Headers and body of one dead letter (by id, or the latest with this message id). Reads the store only.
    Show { key: String },
    /// Republish waiting dead letters to the queue they came from (original properties, confirmed),
    /// mark them replayed, and remove their copies from the broker's dead-letter queue.
    Replay {
        /// The message id to replay.
        #[arg(required_unless_present_any = ["all", "id", "code"], conflicts_with_all = ["all", "id", "code"])]
        message_id: Option<String>,
        /// Every dead letter waiting.
        #[arg(long, conflicts_with_all = ["id", "code"])]
        all: bool,
        /// These dead letters (ids from `dlq list`).
        #[arg(long, conflicts_with = "code")]
        id: Vec<i64>,
        /// Every dead letter waiting with this error code.
        #[arg(long)]
        code: Option<String>,
    },
    /// Record messages found only in the broker's dead-letter queue (e.g. dead-lettered by the
    /// broker itself) and drop broker copies of replayed ones. Nothing is handed back with a nack.
    Sync,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!(
                "hint: run `ips-bridge check-config` after fixing; config/default.toml documents every key"
            );
            return ExitCode::from(2);
        }
    };
    if let Command::RenderSample { kind, out } = &cli.command {
        return render_sample(*kind, out.as_deref(), &settings);
    }
    if let Command::CheckConfig = cli.command {
        print!("{}", settings.redacted_toml());
        eprintln!("configuration is valid");
        return ExitCode::SUCCESS;
    }
    ips_bridge::telemetry::init_logging(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `render-sample`: what a GP receives, from the configured Questionnaires.
fn render_sample(
    kind: ips_bridge::domain::documents::DocumentKind,
    out: Option<&std::path::Path>,
    settings: &Settings,
) -> ExitCode {
    let Some(templates) = settings.documents.templates() else {
        eprintln!("error: the document questionnaires did not load; run `ips-bridge check-config`");
        return ExitCode::from(2);
    };
    let rendered = match ips_bridge::render::documents::render_sample(
        kind,
        templates,
        &settings.documents.service_name,
        &settings.service.ods_code,
        time::OffsetDateTime::now_utc(),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let written = match out {
        Some(p) => std::fs::write(p, rendered.xhtml.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", p.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(rendered.xhtml.as_bytes())
                .map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig | Command::RenderSample { .. } => Ok(()),
        Command::Migrate => {
            let store = ips_bridge::store::connect(&settings.store)
                .await
                .context("cannot open the store")?;
            store.migrate().await.context("migration failed")?;
            println!("migrations applied ({})", store.backend());
            store.close().await;
            Ok(())
        }
        Command::Dlq { action, limit } => dlq(action, limit, &settings).await,
        Command::Report { kind } => report(kind, &settings).await,
        Command::Outbox { action } => outbox(action, &settings).await,
        Command::Send {
            routing_key,
            message_type,
            files,
        } => {
            for f in &files {
                let body =
                    std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
                ips_bridge::amqp::publisher::send_inbound(
                    &settings.amqp,
                    &routing_key,
                    message_type.as_deref(),
                    &body,
                )
                .await
                .with_context(|| format!("cannot publish {}", f.display()))?;
                println!("sent {}", f.display());
            }
            Ok(())
        }
        Command::Run { grace } => {
            // Listen for SIGTERM before anything starts: a stop asked for
            // while the bridge is still connecting is kept and honoured once
            // it is up, instead of killing it with the default disposition.
            let shutdown = ShutdownSignal::install()?;
            let running = ips_bridge::app::start(settings).await?;
            shutdown.wait().await;
            tracing::info!("shutdown requested; finishing in-flight work");
            running.stop(grace).await;
            Ok(())
        }
    }
}

async fn dlq(action: DlqAction, limit: usize, settings: &Settings) -> anyhow::Result<()> {
    use ips_bridge::amqp::dlq;
    use ips_bridge::store::dead_letters::DeadLetterFilter;
    let (store, letters) = ips_bridge::store::dead_letters::connect(&settings.store)
        .await
        .context("cannot open the store")?;
    store.migrate().await.context("migration failed")?;
    let now = ips_bridge::engine::ms(time::OffsetDateTime::now_utc());
    match action {
        DlqAction::List {
            code,
            include_replayed,
            json,
        } => {
            let f = DeadLetterFilter {
                error_code: code,
                include_replayed,
                limit: i64::try_from(limit).unwrap_or(i64::MAX),
                ..Default::default()
            };
            let found = dlq::list(letters.as_ref(), &f).await?;
            if json {
                for d in &found {
                    println!("{}", serde_json::to_string(d)?);
                }
            } else {
                println!(
                    "{} dead letter(s) from {}",
                    found.len(),
                    settings.amqp.inbound_queue
                );
                for d in found {
                    let replayed = d.replayed_at.as_deref().map(|t| format!(" (replayed {t})"));
                    println!(
                        "{:>6}  {:<40}  {:<26}  {}  {}{}",
                        d.id,
                        d.message_id,
                        d.error_code,
                        d.rejected_at,
                        d.reason,
                        replayed.unwrap_or_default()
                    );
                }
            }
        }
        DlqAction::Show { key } => {
            let d = dlq::show(letters.as_ref(), &key).await?;
            println!("{}", serde_json::to_string_pretty(&d)?);
            println!("{}", String::from_utf8_lossy(&d.body));
        }
        DlqAction::Replay {
            message_id,
            all,
            id,
            code,
        } => {
            let sel = match (message_id, all, code) {
                (Some(m), _, _) => dlq::Selection::MessageId(m),
                (None, true, _) => dlq::Selection::All,
                (None, false, Some(c)) => dlq::Selection::Code(c),
                (None, false, None) => dlq::Selection::Ids(id),
            };
            let r = dlq::replay(letters.as_ref(), &settings.amqp, &sel, now).await?;
            println!(
                "replayed {} message(s) to {}; broker dead-letter queue: {} removed, {} kept, {} newly recorded",
                r.replayed,
                settings.amqp.inbound_queue,
                r.broker.removed,
                r.broker.kept,
                r.broker.recorded
            );
        }
        DlqAction::Sync => {
            let r = dlq::sync(letters.as_ref(), &settings.amqp, now).await?;
            println!(
                "broker dead-letter queue: {} removed, {} kept, {} newly recorded",
                r.removed, r.kept, r.recorded
            );
        }
    }
    store.close().await;
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C), registered eagerly so that none is missed.
struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    #[cfg(unix)]
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> anyhow::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
