//! `ips-bridge outbox …`: parked outbox rows, and putting them back.

use anyhow::Context as _;
use clap::Subcommand;
use ips_bridge::config::Settings;

#[derive(Subcommand)]
pub enum OutboxAction {
    /// One line per parked row: id, kind, attempts, the reason. Reads the store only.
    Failed {
        /// Only this kind (fhir-create, fhir-update, fhir-put, fhir-amend, fhir-transaction, event, mesh-send).
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Put parked rows back to be delivered now; a running bridge picks them up.
    Retry {
        /// Row ids from `outbox failed`.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<i64>,
        /// Every parked row (of --kind, if given).
        #[arg(long)]
        all: bool,
        #[arg(long, requires = "all")]
        kind: Option<String>,
    },
}

/// `outbox failed | retry`: parked rows, and putting them back.
pub async fn outbox(action: OutboxAction, settings: &Settings) -> anyhow::Result<()> {
    use ips_bridge::engine::outbox::OutboxKind;
    let kind_of = |k: Option<String>| -> anyhow::Result<Option<String>> {
        k.map(|k| {
            k.parse::<OutboxKind>()
                .map(|k| k.as_str().to_owned())
                .map_err(|_| {
                    anyhow::anyhow!(
                        "unknown outbox kind {k:?}: see `ips-bridge outbox failed --help`"
                    )
                })
        })
        .transpose()
    };
    let store = ips_bridge::store::connect(&settings.store)
        .await
        .context("cannot open the store")?;
    store.migrate().await.context("migration failed")?;
    match action {
        OutboxAction::Failed { kind, limit } => {
            let rows = store
                .outbox_failed(kind_of(kind)?.as_deref(), limit)
                .await?;
            for r in &rows {
                println!(
                    "{}\t{}\t{} attempt(s)\t{}",
                    r.id,
                    r.kind,
                    r.attempts,
                    r.last_error.as_deref().unwrap_or("-")
                );
            }
            eprintln!("{} parked row(s)", rows.len());
        }
        OutboxAction::Retry { ids, all, kind } => {
            let ids = if all {
                let rows = store
                    .outbox_failed(kind_of(kind)?.as_deref(), i64::MAX)
                    .await?;
                rows.iter().map(|r| r.id).collect()
            } else {
                ids
            };
            let now = ips_bridge::engine::ms(time::OffsetDateTime::now_utc());
            let n = store.outbox_requeue(&ids, now).await?;
            println!("{n} row(s) put back to be delivered");
        }
    }
    store.close().await;
    Ok(())
}
