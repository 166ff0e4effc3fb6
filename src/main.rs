//! `ips-bridge`: the command line.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
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
    /// Inspect and replay the dead-letter queue.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
        /// Look at most this many messages deep.
        #[arg(long, global = true, default_value_t = 1000)]
        limit: usize,
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
}

#[derive(Subcommand)]
enum DlqAction {
    /// One line per dead letter: position, message id, error code, reason. Nothing is consumed.
    List,
    /// Headers and body of one dead letter. Nothing is consumed.
    Show { message_id: String },
    /// Republish to the inbound exchange (original routing key and properties), then remove from the DLQ.
    Replay {
        /// The message to replay.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        message_id: Option<String>,
        /// Replay every dead letter.
        #[arg(long)]
        all: bool,
    },
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

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig => Ok(()),
        Command::Migrate => {
            let store = ips_bridge::store::connect(&settings.store)
                .await
                .context("cannot open the store")?;
            store.migrate().await.context("migration failed")?;
            println!("migrations applied ({})", store.backend());
            store.close().await;
            Ok(())
        }
        Command::Dlq { action, limit } => {
            use ips_bridge::amqp::dlq;
            match action {
                DlqAction::List => {
                    let letters = dlq::list(&settings.amqp, limit).await?;
                    println!(
                        "{} dead letter(s) in {}",
                        letters.len(),
                        settings.amqp.dead_letter_queue
                    );
                    for d in letters {
                        println!(
                            "{:>4}  {:<40}  {:<26}  {}",
                            d.position,
                            d.message_id.as_deref().unwrap_or("-"),
                            d.error_code.as_deref().unwrap_or("-"),
                            d.error.as_deref().unwrap_or("-")
                        );
                    }
                }
                DlqAction::Show { message_id } => {
                    let (d, body) = dlq::show(&settings.amqp, &message_id, limit).await?;
                    println!("{}", serde_json::to_string_pretty(&d)?);
                    println!("{}", String::from_utf8_lossy(&body));
                }
                DlqAction::Replay { message_id, all: _ } => {
                    let n = dlq::replay(&settings.amqp, message_id.as_deref(), limit).await?;
                    println!(
                        "replayed {n} message(s) to {}",
                        settings.amqp.inbound_exchange
                    );
                }
            }
            Ok(())
        }
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
            let running = ips_bridge::app::start(settings).await?;
            shutdown_signal().await;
            tracing::info!("shutdown requested; finishing in-flight work");
            running.stop(grace).await;
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
