//! `ips-bridge report …`: the team's reports from the store, the same
//! numbers as the pages.

use anyhow::Context as _;
use clap::Subcommand;
use ips_bridge::config::Settings;
use ips_bridge::render::reports::Format;

#[derive(Subcommand)]
pub enum ReportKind {
    /// The fidelity items the data can show, with numerators, denominators and the scale's anchors.
    Fidelity {
        /// First day (YYYY-MM-DD); default a year before --to.
        #[arg(long)]
        from: Option<String>,
        /// Last day included (YYYY-MM-DD); default today.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "table")]
        format: Format,
    },
    /// The IPS Grow reporting tool's measures for a quarter (definitions in the README).
    IpsGrow {
        /// The quarter, e.g. 2026Q3.
        #[arg(long)]
        quarter: String,
        #[arg(long, default_value = "csv")]
        format: Format,
    },
    /// One row per person on the caseload with MHSDS MHS004 fields. Holds NHS numbers: keep the file safe.
    EmploymentStatus {
        /// The month, e.g. 2026-10.
        #[arg(long)]
        month: String,
        #[arg(long, default_value = "csv")]
        format: Format,
    },
}

/// `report …`: reads the store (migrating it first, as `dlq` does) and prints.
pub async fn report(kind: ReportKind, settings: &Settings) -> anyhow::Result<()> {
    use ips_bridge::domain::reports::{
        Period, caseload::CaseloadLimit, fidelity, ips_grow, mhs004,
    };
    use ips_bridge::render::reports as out;
    let today = ips_bridge::engine::clock::now(&settings.clock).date();
    let store = ips_bridge::store::connect(&settings.store)
        .await
        .context("cannot open the store")?;
    store.migrate().await.context("migration failed")?;
    let snap = ips_bridge::store::team_snapshot(store.as_ref(), &settings.team.roster()).await?;
    let text = match kind {
        ReportKind::Fidelity { from, to, format } => {
            let p = ips_bridge::domain::reports::Period::of_dates(
                from.as_deref(),
                to.as_deref(),
                today,
            )?;
            let limit = CaseloadLimit(settings.team.caseload_limit());
            out::fidelity(&fidelity::report(&snap, p, limit), format)
        }
        ReportKind::IpsGrow { quarter, format } => {
            let p = Period::quarter(&quarter)?;
            out::ips_grow(&ips_grow::report(&snap, &quarter, p), format)
        }
        ReportKind::EmploymentStatus { month, format } => {
            let p = Period::month(&month)?;
            let mut snap = snap;
            let numbers: std::collections::HashMap<String, String> =
                store.case_nhs_numbers().await?.into_iter().collect();
            for c in &mut snap.cases {
                c.nhs_number = numbers.get(&c.id).cloned();
            }
            out::employment_status(&mhs004::rows(&snap, p), format)
        }
    };
    store.close().await;
    print!("{text}");
    Ok(())
}
