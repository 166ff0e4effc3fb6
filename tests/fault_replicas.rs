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

/// Two replicas on a fresh PostgreSQL database, a plan of `patients`
/// patients' mixed messages, the referrals already through.
struct Pair {
    started: Instant,
    seed: u64,
    rng: Rng,
    _dir: tempfile::TempDir,
    clock: SoakClock,
    d: Daemon,
    second: Replica,
    events_q: String,
    plan: Plan,
    sender: Sender,
    ids: Vec<Ids>,
}

impl Pair {
    async fn start(name: &str, first_nhs: u64, patients: usize) -> Pair {
        let started = Instant::now();
        let seed = Rng::seed();
        println!("{name}: seed {seed}");
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
        let second = Replica::start(&d.config).await;
        let events_q = watch_all(&d.p, &d.n).await;
        let plan = Plan::new(name, first_nhs, patients, 4);
        let mut sender = Sender::connect(&d.n.url).await;
        sender.send(&d.n, &plan.referrals()).await;
        let ids = referral_ids(&plan, &d.db, WAIT).await;
        Pair {
            started,
            seed,
            rng: Rng(seed),
            _dir: dir,
            clock,
            d,
            second,
            events_q,
            plan,
            sender,
            ids,
        }
    }

    /// Everything processed; both replicas run timers, so each case's
    /// no-contact warning must fire once; then every effect is counted.
    async fn finish(self, what: &str) {
        let d = &self.d;
        quiesce(&d.db, &d.n, self.sender.sent.len(), WAIT).await;
        self.clock.jump_days(JUMP_DAYS);
        timers_fired(&self.plan, &d.db, WAIT).await;
        let mut events = vec![];
        collect_until_quiet(&d.p, &self.events_q, &mut events).await;
        let counted = self
            .plan
            .check(&self.ids, &self.sender.sent, &d.db, &d.sb, &d.n, &events)
            .await;
        println!(
            "{what}: {} messages, {:.0} s, {} FHIR resources counted, {} events ({} duplicate copies), seed {}",
            self.sender.sent.len(),
            self.started.elapsed().as_secs_f64(),
            counted.fhir,
            counted.events,
            counted.duplicate_events,
            self.seed
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_work_once() {
    // 200 patients × ~8 messages.
    let mut p = Pair::start("rep", 30_000, 200).await;
    // The rest in bursts; the second replica is killed after a random
    // burst in the first half and started again two bursts later.
    let rest = p.plan.rest(&p.ids);
    let bursts: Vec<&[Msg]> = rest.chunks(100).collect();
    let kill_at = p.rng.below((bursts.len() / 2).max(1) as u64) as usize;
    for (b, chunk) in bursts.iter().enumerate() {
        p.sender.send(&p.d.n, chunk).await;
        if b == kill_at {
            tokio::time::sleep(Duration::from_millis(p.rng.below(800))).await;
            p.second.sigkill();
        }
        if b == kill_at + 2 {
            p.second.spawn().await;
        }
    }
    if p.second.child.is_none() {
        p.second.spawn().await;
    }
    p.finish("two replicas, 1 SIGKILL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_and_repeats_nothing() {
    let mut p = Pair::start("roll", 40_000, 120).await;
    // One replica at a time, as a Deployment with maxUnavailable 0 does:
    // the second after a random burst, then the first (the one consuming,
    // under single-active-consumer, unless the broker already moved it).
    let rest = p.plan.rest(&p.ids);
    let bursts: Vec<&[Msg]> = rest.chunks(60).collect();
    let first_at = p.rng.below((bursts.len() / 3).max(1) as u64) as usize;
    let second_at = first_at + 1 + bursts.len() / 3;
    for (b, chunk) in bursts.iter().enumerate() {
        p.sender.send(&p.d.n, chunk).await;
        if b == first_at {
            tokio::time::sleep(Duration::from_millis(p.rng.below(300))).await;
            p.second.terminate();
            p.second.spawn().await;
        }
        if b == second_at {
            tokio::time::sleep(Duration::from_millis(p.rng.below(300))).await;
            // SIGTERM, a clean exit (asserted), then the same config again.
            p.d.restart().await;
        }
    }
    p.finish("rolling restart, 2 SIGTERMs").await;
}
