//! Latency from a message on the queue to the resource it causes in the
//! record, for the flows that write one: a DNA → the outreach `Flag`
//! (`outreach.rs`, issue 13) and a completed document → its
//! `DocumentReference` (`documents.rs`, issue 17).
//!
//! Every scenario has the same shape. The daemon (SQLite) runs; N cases are
//! opened by publishing N referrals (one distinct valid NHS number each) as a
//! backlog, and their case ids are read from the store; then a scenario may
//! publish untimed preparation per case (a VP's sections); nothing is timed
//! until every one of those is processed. Then one timed message per case is
//! published at the plan's rate, each publish time kept by NHS number, and
//! the resource's arrival is matched to it by `subject.identifier.value`:
//!
//! * HTTP sink (`sink.rs`): the wall time the `POST /fhir/{type}` request
//!   reached the handler (same clock as the publish times, µs resolution).
//! * FHIR sandbox: the resource's `meta.lastUpdated`, stamped by the sandbox
//!   from the same machine's clock as it stores it (ms resolution), read
//!   after the run with paged searches. The sandbox is one single-threaded
//!   Node process writing every resource, so this figure is for reference:
//!   past its write rate it measures its queue.

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

/// How long the untimed messages may take to be applied.
const OPEN_WAIT: Duration = Duration::from_secs(120);

/// One case the scenario's messages are about.
pub struct Case {
    pub nhs: String,
    pub case_id: String,
    /// The referral's identifier value: unique per case, used in message ids.
    pub value: String,
}

/// A flow whose latency is measured.
pub struct Scenario {
    /// "DNA → Flag": how the figure is named.
    pub name: &'static str,
    /// For queue, file and log names.
    pub tag: &'static str,
    /// The resource type whose arrival ends the measurement.
    pub resource: &'static str,
    /// A discharge rules file to run with, if any.
    pub rules: Option<&'static str>,
    /// Untimed messages per case once it is open.
    pub prepare: fn(&Case) -> anyhow::Result<Vec<Message>>,
    /// The timed message for a case.
    pub timed: fn(&Case) -> anyhow::Result<Message>,
    /// The routing key both are published with.
    pub key: &'static str,
}

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

    /// After the last timed message: the sink keeps up, the sandbox may
    /// have a backlog of writes to work through.
    fn drain_wait(self) -> Duration {
        match self {
            Target::Sink => Duration::from_secs(60),
            Target::Sandbox => Duration::from_secs(300),
        }
    }
}

/// Adds the p50 and p99 rows for both targets (an error row when one fails).
pub async fn rows(
    svc: &Services,
    cleanup: &Cleanup,
    scenario: &Scenario,
    plan: &Plan,
    rows: &mut Vec<Row>,
) {
    for target in [Target::Sink, Target::Sandbox] {
        // The sandbox writes one request at a time: at 200/s it falls
        // minutes behind and the figure would only measure its queue. It is a
        // reference, so it gets a rate it keeps up with.
        let plan = match target {
            Target::Sink => Plan {
                rate: plan.rate,
                duration: plan.duration,
                settle: plan.settle,
            },
            Target::Sandbox => Plan {
                rate: plan.rate.min(20.0),
                duration: plan.duration.min(Duration::from_secs(30)),
                settle: plan.settle,
            },
        };
        let plan = &plan;
        let at = format!(
            "{:.0} msg/s for {:.0} s",
            plan.rate,
            plan.duration.as_secs_f64()
        );
        let figure = |p: &str| {
            format!(
                "latency {} at {}, {p} ({at})",
                scenario.name,
                target.label()
            )
        };
        match run(svc, cleanup, scenario, plan, target).await {
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

/// One run against `target`: p50/p99 of publish → resource delivered (ms).
pub async fn run(
    svc: &Services,
    cleanup: &Cleanup,
    scenario: &Scenario,
    plan: &Plan,
    target: Target,
) -> anyhow::Result<Percentiles> {
    let n = (plan.rate * plan.duration.as_secs_f64()).round() as usize;
    let run_id = setup::uid();
    let sink = match target {
        Target::Sink => Some(Sink::start().await?),
        Target::Sandbox => None,
    };
    let fhir = sink
        .as_ref()
        .map_or(svc.sandbox_url.clone(), |s| s.base.clone());
    let names = Names::new(scenario.tag);
    let db = format!(
        "sqlite://{}",
        svc.dir
            .join(format!("{}-{run_id}.db", scenario.tag))
            .display()
    );
    let mut env = setup::bridge_env(svc, &db, &fhir, &names);
    if let Some(rules) = scenario.rules {
        let path = svc
            .dir
            .join(format!("{}-rules-{run_id}.toml", scenario.tag));
        std::fs::write(&path, rules)?;
        env.push((
            "IPS__OUTREACH__RULES_FILE".into(),
            path.display().to_string(),
        ));
    }
    let settings = setup::settings(&env)?;
    let amqp = Amqp::connect(&svc.amqp_url, "ips-bench-publisher").await?;
    cleanup.names(&names);
    ips_bridge::amqp::topology::declare(&amqp.ch, &settings.amqp).await?;
    // Resources written before this instant are not this run's (sandbox only).
    let since = OffsetDateTime::now_utc();
    let log = svc.dir.join(format!(
        "daemon-{}-{}.log",
        scenario.tag,
        target.label().replace(' ', "-")
    ));
    let mut daemon = Daemon::spawn(&svc.daemon, &env, free_addr()?, &log)?;
    let run = Run {
        scenario,
        amqp: &amqp,
        names: &names,
        db: &db,
    };
    let published = run.drive(&mut daemon, n, &run_id, plan).await;
    amqp.close().await;
    let published = match published {
        Ok(p) => p,
        Err(e) => {
            let _ = daemon.stop().await;
            return Err(e);
        }
    };
    let arrived = match wait_arrivals(svc, scenario, &sink, since, &published, target).await {
        Ok(a) => a,
        Err(e) => {
            let _ = daemon.stop().await;
            return Err(e);
        }
    };
    daemon.stop().await?;
    let samples = published
        .iter()
        .map(|(nhs, sent)| arrived[nhs] - sent)
        .collect();
    eprintln!(
        "{}/{}: {n} {}s measured",
        scenario.tag,
        target.label(),
        scenario.resource
    );
    Percentiles::of(samples)
}

struct Run<'a> {
    scenario: &'a Scenario,
    amqp: &'a Amqp,
    names: &'a Names,
    db: &'a str,
}

impl Run<'_> {
    /// Opens the cases and prepares them (untimed), then publishes the
    /// timed messages at the plan's rate and waits until the daemon has
    /// processed every message. Returns each timed publish's wall time (ms)
    /// by NHS number.
    async fn drive(
        &self,
        daemon: &mut Daemon,
        n: usize,
        run_id: &str,
        plan: &Plan,
    ) -> anyhow::Result<HashMap<String, f64>> {
        daemon.wait_ready(Duration::from_secs(30)).await?;
        let mut numbers = NhsNumbers::default();
        let mut referrals = Vec::with_capacity(n);
        let mut opened = Vec::with_capacity(n);
        for i in 0..n {
            let nhs = numbers.next();
            let value = format!("{run_id}-{i:06}");
            referrals.push(Message {
                id: format!("{value}-msg"),
                body: serde_json::to_vec(&fixtures::bars_referral(&value, &nhs))?,
                referral_value: Some(value.clone()),
            });
            opened.push((value, nhs));
        }
        let mut done = referrals.len() as u64;
        self.amqp
            .publish_all(
                &self.names.exchange,
                "bars.servicerequest-request",
                &referrals,
            )
            .await?;
        processed(daemon, done, OPEN_WAIT)
            .await
            .context("opening the cases")?;
        let cases = case_ids(self.db, opened).await?;
        let mut prepared = vec![];
        for c in &cases {
            prepared.extend((self.scenario.prepare)(c)?);
        }
        if !prepared.is_empty() {
            done += prepared.len() as u64;
            self.amqp
                .publish_all(&self.names.exchange, self.scenario.key, &prepared)
                .await?;
            processed(daemon, done, OPEN_WAIT)
                .await
                .context("preparing the cases")?;
        }
        eprintln!(
            "{}: {n} cases ready; publishing at {}/s",
            self.scenario.tag, plan.rate
        );
        let timed = cases
            .iter()
            .map(self.scenario.timed)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let times = latency::paced_publish(
            self.amqp,
            &self.names.exchange,
            self.scenario.key,
            &timed,
            plan.rate,
        )
        .await?;
        done += timed.len() as u64;
        processed(daemon, done, OPEN_WAIT)
            .await
            .context("processing the timed messages")?;
        Ok(cases.into_iter().map(|c| c.nhs).zip(times).collect())
    }
}

/// The case each referral opened, read from the daemon's store (untimed).
async fn case_ids(db: &str, opened: Vec<(String, String)>) -> anyhow::Result<Vec<Case>> {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(db).await?;
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT referral_key, case_id FROM referrals")
            .fetch_all(&mut c)
            .await?;
    let by_value: HashMap<&str, &str> = rows
        .iter()
        .filter_map(|(key, case)| Some((key.rsplit('|').next()?, case.as_deref()?)))
        .collect();
    opened
        .into_iter()
        .map(|(value, nhs)| {
            let case_id = by_value
                .get(value.as_str())
                .with_context(|| format!("no case for referral {value}"))?
                .to_string();
            Ok(Case {
                nhs,
                case_id,
                value,
            })
        })
        .collect()
}

/// Waits until every timed message's resource has arrived; the first
/// arrival by NHS number.
async fn wait_arrivals(
    svc: &Services,
    scenario: &Scenario,
    sink: &Option<Sink>,
    since: OffsetDateTime,
    published: &HashMap<String, f64>,
    target: Target,
) -> anyhow::Result<HashMap<String, f64>> {
    let wanted: HashSet<&str> = published.keys().map(String::as_str).collect();
    let deadline = tokio::time::Instant::now() + target.drain_wait();
    loop {
        let seen = match sink {
            Some(s) => s.arrivals(scenario.resource),
            None => sandbox_arrivals(&svc.sandbox_url, scenario.resource, since).await?,
        };
        let mut first: HashMap<String, f64> = HashMap::new();
        for (nhs, at) in seen
            .into_iter()
            .filter(|(k, _)| wanted.contains(k.as_str()))
        {
            let e = first.entry(nhs).or_insert(at);
            *e = e.min(at);
        }
        if first.len() >= wanted.len() {
            return Ok(first);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{} of {} {}s reached the {} within {:?} of the last message",
                first.len(),
                wanted.len(),
                scenario.resource,
                target.label(),
                target.drain_wait()
            );
        }
        // The sandbox is asked for every resource each time: poll it gently.
        let pause = if sink.is_some() { 50 } else { 2000 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
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

/// Every `rtype` the sandbox stored since `since`: `(subject NHS number,
/// meta.lastUpdated in wall ms)`, following the search's `next` links.
async fn sandbox_arrivals(
    base: &str,
    rtype: &str,
    since: OffsetDateTime,
) -> anyhow::Result<Vec<(String, f64)>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    // Whole milliseconds, `Z` (a literal `+` in a query is a space).
    let since = since.replace_nanosecond(u32::from(since.millisecond()) * 1_000_000)?;
    let mut url = format!(
        "{base}/{rtype}?_lastUpdated=ge{}&_sort=_lastUpdated&_count=1000",
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
            .with_context(|| format!("searching the sandbox's {rtype}s"))?
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
                .with_context(|| format!("{rtype} meta.lastUpdated {at:?}"))?;
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
