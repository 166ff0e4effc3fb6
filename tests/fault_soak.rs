//! Crash soak (issue 17): thousands of mixed messages for hundreds of
//! patients, published in bursts while the daemon process is SIGKILLed at
//! seeded random points and started again. Afterwards nothing is lost and
//! nothing duplicated: every message processed, every FHIR resource once
//! by business identifier, every event at least once under one message id,
//! the audit of each case complete and in the order its messages were sent,
//! and the durable timers (the "no contact" warnings after the clock jumps)
//! fired once per case across one more kill.
//! Real RabbitMQ, the FHIR sandbox, a SQLite store.

mod common;

use common::daemon::Daemon;
use common::soak::*;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(240);
/// Patients, and booked appointments each: 250 × ~21 messages ≈ 5,250.
const PATIENTS: usize = 250;
const BOOKED: usize = 17;
const BURST: usize = 250;

/// The daemon under test and what has been done to it.
struct Soak {
    d: Daemon,
    sender: Sender,
    rng: Rng,
    kills: usize,
}

impl Soak {
    /// Publishes `msgs` in bursts; after each burst the daemon is SIGKILLed
    /// with probability `1 / every` (seeded), after a random pause, and
    /// started again once the next burst is on the queue.
    async fn stream(&mut self, msgs: &[Msg], burst: usize, every: u64) {
        let mut down = false;
        for chunk in msgs.chunks(burst) {
            self.sender.send(&self.d.n, chunk).await;
            if down {
                self.d.restart().await;
                down = false;
            } else if self.rng.below(every) == 0 {
                tokio::time::sleep(Duration::from_millis(self.rng.below(1500))).await;
                self.kill_and_restart(false).await;
                down = true;
            }
        }
        if down {
            self.d.restart().await;
        }
    }

    /// SIGKILL; started again at once when `restart`.
    async fn kill_and_restart(&mut self, restart: bool) {
        self.d.sigkill();
        self.kills += 1;
        if restart {
            self.d.restart().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_soak_loses_and_duplicates_nothing_across_sigkills() {
    let started = Instant::now();
    let seed = Rng::seed();
    println!("crash soak: seed {seed} (IPS_SOAK_SEED={seed} repeats the kill points)");
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = SoakClock::start(dir.path());
    let (rules, clock_file) = (rules_file(dir.path()), clock.setting());
    let d = Daemon::start(&settings(&rules, &clock_file)).await;
    let events_q = watch_all(&d.p, &d.n).await;
    let plan = Plan::new("soak", 10_000, PATIENTS, BOOKED);
    let sender = Sender::connect(&d.n.url).await;
    let mut s = Soak {
        d,
        sender,
        rng: Rng(seed),
        kills: 0,
    };

    // The referrals in small bursts, at least one kill among them.
    s.stream(&plan.referrals(), 50, 3).await;
    if s.kills == 0 {
        s.kill_and_restart(true).await;
    }
    let ids = referral_ids(&plan, &s.d.db, WAIT).await;

    // Everything else, interleaved across patients, with kills.
    let before = s.kills;
    s.stream(&plan.rest(&ids), BURST, 4).await;
    while s.kills < before + 2 {
        // Fewer kills than the soak needs came out of the dice.
        s.kill_and_restart(true).await;
    }
    let d = &s.d;
    quiesce(&d.db, &d.n, s.sender.sent.len(), WAIT).await;

    // The clock jumps: the no-contact timers fall due; one more kill while they fire.
    let mut events = vec![];
    collect_events(&d.p, &events_q, Duration::from_secs(1), &mut events).await;
    clock.jump_days(JUMP_DAYS);
    tokio::time::sleep(Duration::from_millis(s.rng.below(600))).await;
    s.kill_and_restart(true).await;
    let d = &s.d;
    timers_fired(&plan, &d.db, WAIT).await;
    collect_until_quiet(&d.p, &events_q, &mut events).await;
    let counted = plan
        .check(&ids, &s.sender.sent, &d.db, &d.sb, &d.n, &events)
        .await;
    let (sent, kills) = (s.sender.sent.len(), s.kills);
    println!(
        "crash soak: {} messages, {kills} SIGKILLs, {:.0} s, {} FHIR resources counted, {} events ({} duplicate copies), seed {seed}",
        sent,
        started.elapsed().as_secs_f64(),
        counted.fhir,
        counted.events,
        counted.duplicate_events
    );
    assert!(sent >= 5_000, "the soak sends at least 5,000 messages");
    assert!(kills >= 3);
}
