//! Before anything is timed: the bench's bodies must mean to the bridge what
//! they should; and `--print-sample` shows them.

use crate::fixtures;
use crate::setup::{self, Services};
use anyhow::{Context as _, bail};
use std::process::ExitCode;

/// Checks that the bench's bodies mean to the bridge what they should (a
/// referral, an appointment), before anything is timed.
pub fn check(svc: &Services) -> anyhow::Result<()> {
    use ips_bridge::engine::Command;
    use ips_bridge::ingest::Reading;
    use ips_bridge::ingest::classify::{Envelope, classify};
    let settings = setup::settings(&setup::bridge_env(
        svc,
        "sqlite::memory:",
        &svc.sandbox_url,
        &setup::Names::new("preflight"),
    ))?;
    let Reading { limits, rules } = Reading::from_settings(&settings);
    let env = Envelope {
        content_type: Some("application/fhir+json"),
        message_type: None,
    };
    let sample = fixtures::ingest_mix(2, "preflight")?;
    let kinds: Vec<&str> = sample
        .iter()
        .map(|m| {
            classify(&m.body, &env, &limits, &rules)
                .map(|c| c.kind())
                .map_err(|r| anyhow::anyhow!("{}: {}", r.code, r.reason))
        })
        .collect::<anyhow::Result<_>>()
        .context("the bridge rejects a benchmark body")?;
    if kinds != ["referral", "appointment"] {
        bail!("benchmark bodies classify as {kinds:?}, expected referral and appointment");
    }
    if !matches!(classify(&sample[0].body, &env, &limits, &rules), Ok(Command::Referral(r)) if r.version.nhs.valid().is_some())
    {
        bail!("the referral's NHS number is not valid to the bridge");
    }
    Ok(())
}

pub fn print_sample() -> ExitCode {
    match fixtures::ingest_mix(2, "sample") {
        Ok(sample) => {
            for m in sample {
                println!("{}", String::from_utf8_lossy(&m.body));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
