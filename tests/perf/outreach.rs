//! Assertive outreach latency (issue 13): a DNA published on the queue →
//! the outreach `Flag` written at the FHIR server.
//!
//! The daemon (SQLite) runs with a rules file holding only "2 consecutive
//! DNAs, warn after the first", so the first DNA of an open case is what
//! creates the outreach episode and its Flag. First N cases are opened by
//! publishing N referrals (one distinct valid NHS number each) as a backlog
//! and waiting until `/metrics` shows all N processed; nothing is timed then,
//! because referrals write nothing to FHIR. Then one `noshow` Appointment per
//! case is published at the plan's rate, each publish time kept by NHS number,
//! and the Flag's arrival is matched to it by `subject.identifier.value`:
//!
//! * HTTP sink (`sink.rs`): the wall time the `POST /fhir/Flag` request
//!   reached the handler (same clock as the publish times, µs resolution).
//! * FHIR sandbox: the Flag's `meta.lastUpdated`, which the sandbox stamps
//!   from the same machine's clock as it stores the resource (ms resolution),
//!   read after the run with paged searches. A later update of the Flag would
//!   move it (none happens here: one DNA per case). The sandbox is one
//!   single-threaded Node process writing every Flag and Task, so this figure
//!   is for reference: past its write rate it measures its queue.

use crate::broker::Amqp;
use crate::daemon::{Daemon, free_addr};
use crate::fixtures::{self, Message, NhsNumbers};
use crate::latency::{self, Percentiles, Plan};
use crate::report::{self, Goal, Row};
use crate::setup::{self, Cleanup, Names, Services};
use crate::sink::Sink;
use anyhow::{Context as _, bail};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The only discharge rule the daemon is given: the first DNA warns.
const RULES: &str = r#"[[rule]]
id = "bench-2-consecutive-dna"
name = "Benchmark: discharged after 2 consecutive DNAs"
kind = "consecutive_dna"
threshold = 2
warn_before = { dnas = 1 }
"#;

/// How long the N referrals may take to be applied.
const OPEN_WAIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Sink,
    Sandbox,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Sink => "HTTP sink",
            Target::Sandbox => "FHIR sandbox",
        }
    }

    /// After the last DNA is published: the sink keeps up, the sandbox may
    /// have a backlog of two writes (Flag and Task) per DNA to work through.
    fn drain_wait(self) -> Duration {
        match self {
            Target::Sink => Duration::from_secs(60),
            Target::Sandbox => Duration::from_secs(300),
        }
    }
}

/// Adds the p50 and p99 rows for both targets (an error row when one fails).
pub async fn rows(svc: &Services, cleanup: &Cleanup, plan: &Plan, rows: &mut Vec<Row>) {
    for target in [Target::Sink, Target::Sandbox] {
        // The sandbox writes one request at a time (a Flag and a Task per
        // DNA): at 200/s it falls minutes behind and the figure would only
        // measure its queue. It is a reference, so it gets a rate it keeps up with.
        let plan = match target {
            Target::Sink => Plan {
                rate: plan.rate,
                duration: plan.duration,
                settle: plan.settle,
            },
            Target::Sandbox => Plan {
                rate: plan.rate.min(20.0),
                duration: plan.duration.min(std::time::Duration::from_secs(30)),
                settle: plan.settle,
            },
        };
        let plan = &plan;
        let at = format!(
            "{:.0} msg/s for {:.0} s",
            plan.rate,
            plan.duration.as_secs_f64()
        );
        let figure = |p: &str| format!("latency DNA → Flag at {}, {p} ({at})", target.label());
        match run(svc, cleanup, plan, target).await {
            Ok(f) => {
                let p99_goal = match target {
                    Target::Sink => Goal::Below(1000.0),
                    Target::Sandbox => Goal::Reference,
                };
                rows.push(Row::measured(
                    figure("p50"),
                    f.p50,
                    None,
                    Goal::None,
                    report::millis,
                ));
                rows.push(Row::measured(
                    figure("p99"),
                    f.p99,
                    None,
                    p99_goal,
                    report::millis,
                ));
            }
            Err(e) => rows.push(Row::error(figure("p50/p99"), &e)),
        }
    }
}

pub fn note(plan: &Plan) -> String {
    format!(
        "DNA → Flag: the daemon (SQLite) with one rule, 2 consecutive DNAs warned after the first; N = {:.0} cases opened by \
         referrals first (untimed), then one noshow Appointment per case published at {:.0} msg/s for {:.0} s. Latency = Flag \
         arrival − publish time, matched by the Flag's subject NHS number. Sink: wall time the POST /fhir/Flag reached the \
         sink's handler. FHIR sandbox: the Flag's meta.lastUpdated (stamped by the sandbox on write, same clock, 1 ms \
         resolution), read with paged searches after the run; the sandbox writes one request at a time (a Flag and a Task per \
         DNA), so past its write rate this figure includes its queue (reference only).",
        plan.rate * plan.duration.as_secs_f64(),
        plan.rate,
        plan.duration.as_secs_f64()
    )
}

/// One run against `target`: p50/p99 of DNA publish → Flag delivered (ms).
pub async fn run(
    svc: &Services,
    cleanup: &Cleanup,
    plan: &Plan,
    target: Target,
) -> anyhow::Result<Percentiles> {
    let n = (plan.rate * plan.duration.as_secs_f64()).round() as usize;
    let run_id = setup::uid();
    let (referrals, dnas) = messages(n, &run_id)?;
    let sink = match target {
        Target::Sink => Some(Sink::start().await?),
        Target::Sandbox => None,
    };
    let fhir = sink
        .as_ref()
        .map_or(svc.sandbox_url.clone(), |s| s.base.clone());
    let rules = svc.dir.join(format!("outreach-rules-{run_id}.toml"));
    std::fs::write(&rules, RULES)?;
    let names = Names::new("outreach");
    let db = svc.dir.join(format!("outreach-{run_id}.db"));
    let mut env = setup::bridge_env(svc, &format!("sqlite://{}", db.display()), &fhir, &names);
    env.push((
        "IPS__OUTREACH__RULES_FILE".into(),
        rules.display().to_string(),
    ));
    let settings = setup::settings(&env)?;
    let amqp = Amqp::connect(&svc.amqp_url, "ips-bench-publisher").await?;
    cleanup.names(&names);
    ips_bridge::amqp::topology::declare(&amqp.ch, &settings.amqp).await?;
    // Flags written before this instant are not this run's (sandbox only).
    let since = OffsetDateTime::now_utc();
    let log = svc.dir.join(format!(
        "daemon-outreach-{}.log",
        target.label().replace(' ', "-")
    ));
    let mut daemon = Daemon::spawn(&svc.daemon, &env, free_addr()?, &log)?;
    let published = drive(&mut daemon, &amqp, &names, &referrals, &dnas, plan).await;
    amqp.close().await;
    let published = match published {
        Ok(p) => p,
        Err(e) => {
            let _ = daemon.stop().await;
            return Err(e);
        }
    };
    let wanted: HashSet<&str> = published.keys().map(String::as_str).collect();
    let deadline = tokio::time::Instant::now() + target.drain_wait();
    let arrived = loop {
        let flags = match &sink {
            Some(s) => s.flags(),
            None => sandbox_flags(&svc.sandbox_url, since).await?,
        };
        let mut first: HashMap<String, f64> = HashMap::new();
        for (nhs, at) in flags
            .into_iter()
            .filter(|(k, _)| wanted.contains(k.as_str()))
        {
            let e = first.entry(nhs).or_insert(at);
            *e = e.min(at);
        }
        if first.len() >= n {
            break first;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = daemon.stop().await;
            bail!(
                "{} of {n} Flags reached the {} within {:?} of the last DNA",
                first.len(),
                target.label(),
                target.drain_wait()
            );
        }
        // The sandbox is asked for every Flag each time: poll it gently.
        let pause = if sink.is_some() { 50 } else { 2000 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    };
    daemon.stop().await?;
    let samples = published
        .iter()
        .map(|(nhs, sent)| arrived[nhs] - sent)
        .collect();
    eprintln!("outreach/{}: {n} Flags measured", target.label());
    Percentiles::of(samples)
}

/// A DNA Appointment and the NHS number its Flag will carry.
type Dna = (String, Message);

/// `n` referral Bundles and one `noshow` Appointment (started in the past)
/// for each one's patient, with distinct valid NHS numbers.
fn messages(n: usize, run: &str) -> anyhow::Result<(Vec<Message>, Vec<Dna>)> {
    let mut nhs = NhsNumbers::default();
    let mut referrals = Vec::with_capacity(n);
    let mut dnas = Vec::with_capacity(n);
    for i in 0..n {
        let number = nhs.next();
        let value = format!("{run}-{i:06}");
        referrals.push(Message {
            id: format!("{value}-msg"),
            body: serde_json::to_vec(&fixtures::bars_referral(&value, &number))?,
            referral_value: Some(value.clone()),
        });
        let body = serde_json::to_vec(&fixtures::appointment(&value, &number, "noshow"))?;
        dnas.push((
            number,
            Message {
                id: format!("{value}-dna"),
                body,
                referral_value: None,
            },
        ));
    }
    Ok((referrals, dnas))
}

/// Opens the cases (untimed), then publishes the DNAs at the plan's rate and
/// waits until the daemon has processed every message. Returns each DNA's
/// publish time (wall ms) by NHS number.
async fn drive(
    daemon: &mut Daemon,
    amqp: &Amqp,
    names: &Names,
    referrals: &[Message],
    dnas: &[Dna],
    plan: &Plan,
) -> anyhow::Result<HashMap<String, f64>> {
    daemon.wait_ready(Duration::from_secs(30)).await?;
    let key = "bars.servicerequest-request";
    amqp.publish_all(&names.exchange, key, referrals).await?;
    processed(daemon, referrals.len() as u64, OPEN_WAIT)
        .await
        .context("opening the cases")?;
    eprintln!(
        "outreach: {} cases open; publishing DNAs at {}/s",
        referrals.len(),
        plan.rate
    );
    let bodies: Vec<Message> = dnas.iter().map(|(_, m)| m.clone()).collect();
    let times =
        latency::paced_publish(amqp, &names.exchange, "appointment", &bodies, plan.rate).await?;
    processed(daemon, (referrals.len() + dnas.len()) as u64, OPEN_WAIT)
        .await
        .context("processing the DNAs")?;
    Ok(dnas.iter().map(|(nhs, _)| nhs.clone()).zip(times).collect())
}

/// Waits until the daemon has finished `n` messages, all of them processed.
async fn processed(daemon: &mut Daemon, n: u64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let o = daemon.outcomes().await?;
        if o.finished() >= n {
            if o.get("processed") != n {
                bail!("expected {n} messages processed, the daemon reports {o}");
            }
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("only {o} of {n} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every Flag the sandbox stored since `since`: `(subject NHS number,
/// meta.lastUpdated in wall ms)`, following the search's `next` links.
async fn sandbox_flags(base: &str, since: OffsetDateTime) -> anyhow::Result<Vec<(String, f64)>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    // Whole milliseconds, `Z` (a literal `+` in a query is a space).
    let since = since.replace_nanosecond(u32::from(since.millisecond()) * 1_000_000)?;
    let mut url = format!(
        "{base}/Flag?_lastUpdated=ge{}&_sort=_lastUpdated&_count=1000",
        since.format(&Rfc3339)?
    );
    let mut out = vec![];
    loop {
        let page: Value = http
            .get(&url)
            .header("Accept", "application/fhir+json")
            .send()
            .await?
            .error_for_status()
            .context("searching the sandbox's Flags")?
            .json()
            .await?;
        for r in page["entry"].as_array().into_iter().flatten() {
            let r = &r["resource"];
            let (Some(nhs), Some(at)) = (
                r["subject"]["identifier"]["value"].as_str(),
                r["meta"]["lastUpdated"].as_str(),
            ) else {
                continue;
            };
            let at = OffsetDateTime::parse(at, &Rfc3339)
                .with_context(|| format!("Flag meta.lastUpdated {at:?}"))?;
            out.push((nhs.to_owned(), at.unix_timestamp_nanos() as f64 / 1e6));
        }
        let next = page["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str());
        match next {
            Some(n) => url = n.to_owned(),
            None => return Ok(out),
        }
    }
}
