//! Two replicas on one PostgreSQL store (issue 17): two daemon processes
//! with the same config file (same queue, database and FHIR sandbox) share
//! a stream of a few hundred patients' mixed messages; one is SIGKILLed in
//! the middle and started again. Afterwards each effect happened once (the
//! checker of tests/common/soak), each case's messages were applied in the
//! order they were sent, and each durable "no contact" timer fired once
//! although both replicas run timers: one Flag, one Task, one event per case.
//!
//! The rolling restart (issue 18, what `kubectl rollout restart` does to the
//! two-replica Deployment): while messages flow, each replica in turn is
//! SIGTERMed, must exit cleanly, and is started again; nothing is lost or
//! duplicated.

mod common;

use common::daemon::{Daemon, spawn_process, wait_started};
use common::fresh_pg_database;
use common::soak::*;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(240);

/// A second `ips-bridge run` on another daemon's config file. SIGKILLed on drop.
struct Replica {
    config: std::path::PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    runs: usize,
}

impl Replica {
    async fn start(config: &Path) -> Replica {
        let mut r = Replica {
            config: config.to_owned(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            runs: 0,
        };
        r.spawn().await;
        r
    }

    async fn spawn(&mut self) -> SocketAddr {
        self.runs += 1;
        let log_path = self.dir.path().join(format!("run-{}.log", self.runs));
        let log = std::fs::File::create(&log_path).expect("log file");
        self.child = Some(spawn_process(&self.config, log));
        wait_started(&log_path, self.child.as_mut()).await
    }

    /// SIGTERM, as Kubernetes or systemd stops a pod or unit: the replica
    /// must finish in-flight work and exit 0 within its grace.
    fn terminate(&mut self) {
        let mut child = self.child.take().expect("the replica is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = child.wait().expect("reap the replica");
        assert!(
            status.success(),
            "the replica did not stop cleanly: {status}"
        );
    }

    fn sigkill(&mut self) {
        let mut child = self.child.take().expect("the replica is running");
        child.kill().expect("SIGKILL the replica");
        child.wait().expect("reap the replica");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_work_once() {
    let started = Instant::now();
    let seed = Rng::seed();
    let mut rng = Rng(seed);
    println!("two replicas: seed {seed}");
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = SoakClock::start(dir.path());
    let (rules, clock_file) = (rules_file(dir.path()), clock.setting());
    let db = fresh_pg_database().await;
    let d = Daemon::start_with(
        common::Names::new(),
        Some(db),
        &settings(&rules, &clock_file),
    )
    .await;
    let mut second = Replica::start(&d.config).await;
    let events_q = watch_all(&d.p, &d.n).await;
    // 200 patients × ~8 messages.
    let plan = Plan::new("rep", 30_000, 200, 4);
    let mut sender = Sender::connect(&d.n.url).await;
    sender.send(&d.n, &plan.referrals()).await;
    let ids = referral_ids(&plan, &d.db, WAIT).await;

    // The rest in bursts; the second replica is killed after a random
    // burst in the first half and started again two bursts later.
    let rest = plan.rest(&ids);
    let bursts: Vec<&[Msg]> = rest.chunks(100).collect();
    let kill_at = rng.below((bursts.len() / 2).max(1) as u64) as usize;
    for (b, chunk) in bursts.iter().enumerate() {
        sender.send(&d.n, chunk).await;
        if b == kill_at {
            tokio::time::sleep(Duration::from_millis(rng.below(800))).await;
            second.sigkill();
        }
        if b == kill_at + 2 {
            second.spawn().await;
        }
    }
    if second.child.is_none() {
        second.spawn().await;
    }
    quiesce(&d.db, &d.n, sender.sent.len(), WAIT).await;

    // Both replicas run timers: each case's no-contact warning fires once.
    clock.jump_days(JUMP_DAYS);
    timers_fired(&plan, &d.db, WAIT).await;
    let mut events = vec![];
    loop {
        let before = events.len();
        collect_events(&d.p, &events_q, Duration::from_secs(2), &mut events).await;
        if events.len() == before {
            break;
        }
    }
    let counted = plan
        .check(&ids, &sender.sent, &d.db, &d.sb, &d.n, &events)
        .await;
    println!(
        "two replicas: {} messages, 1 SIGKILL, {:.0} s, {} FHIR resources counted, {} events ({} duplicate copies), seed {seed}",
        sender.sent.len(),
        started.elapsed().as_secs_f64(),
        counted.fhir,
        counted.events,
        counted.duplicate_events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_and_repeats_nothing() {
    let started = Instant::now();
    let seed = Rng::seed();
    let mut rng = Rng(seed);
    println!("rolling restart: seed {seed}");
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = SoakClock::start(dir.path());
    let (rules, clock_file) = (rules_file(dir.path()), clock.setting());
    let db = fresh_pg_database().await;
    let mut d = Daemon::start_with(
        common::Names::new(),
        Some(db),
        &settings(&rules, &clock_file),
    )
    .await;
    let mut second = Replica::start(&d.config).await;
    let events_q = watch_all(&d.p, &d.n).await;
    let plan = Plan::new("roll", 40_000, 120, 4);
    let mut sender = Sender::connect(&d.n.url).await;
    sender.send(&d.n, &plan.referrals()).await;
    let ids = referral_ids(&plan, &d.db, WAIT).await;

    // One replica at a time, as a Deployment with maxUnavailable 1 does:
    // the second after a random burst, then the first (the one consuming,
    // under single-active-consumer, unless the broker already moved it).
    let rest = plan.rest(&ids);
    let bursts: Vec<&[Msg]> = rest.chunks(60).collect();
    let first_at = rng.below((bursts.len() / 3).max(1) as u64) as usize;
    let second_at = first_at + 1 + bursts.len() / 3;
    for (b, chunk) in bursts.iter().enumerate() {
        sender.send(&d.n, chunk).await;
        if b == first_at {
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            second.terminate();
            second.spawn().await;
        }
        if b == second_at {
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            // SIGTERM, a clean exit (asserted), then the same config again.
            d.restart().await;
        }
    }
    quiesce(&d.db, &d.n, sender.sent.len(), WAIT).await;
    clock.jump_days(JUMP_DAYS);
    timers_fired(&plan, &d.db, WAIT).await;
    let mut events = vec![];
    loop {
        let before = events.len();
        collect_events(&d.p, &events_q, Duration::from_secs(2), &mut events).await;
        if events.len() == before {
            break;
        }
    }
    let counted = plan
        .check(&ids, &sender.sent, &d.db, &d.sb, &d.n, &events)
        .await;
    println!(
        "rolling restart: {} messages, 2 SIGTERMs, {:.0} s, {} FHIR resources counted, {} events ({} duplicate copies), seed {seed}",
        sender.sent.len(),
        started.elapsed().as_secs_f64(),
        counted.fhir,
        counted.events,
        counted.duplicate_events
    );
}
