//! Employment outcomes and the team's reports, with the real binary,
//! RabbitMQ and the FHIR sandbox.
//!
//! The report figures are checked against a scenario whose numbers are
//! worked out by hand below (not by calling the report code), and the CLI
//! and the API must give the same ones.

mod common;

use common::daemon::{Daemon, set_clock};
use common::fixtures::*;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use time::macros::datetime;

const WAIT: Duration = Duration::from_secs(25);

/// `ips-bridge report …` with the daemon's own configuration.
fn report(d: &Daemon, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ips-bridge"))
        .arg("--config")
        .arg(&d.config)
        .arg("report")
        .args(args)
        .env("IPS__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Sends `n` referrals and returns `(referral id, case id)` of each, in order.
async fn referrals(d: &Daemon, tag: &str, n: usize, complete: bool) -> Vec<(String, String)> {
    let mut keys = vec![];
    for i in 0..n {
        let key = format!("{tag}-{i}-{}", uid());
        let mut r = Referral::new(
            &key,
            &nhs_number(70_000 + 13 * keys.len() as u64 + if complete { 0 } else { 5_000 }),
        );
        r.with_reason = complete;
        d.send_applied(&r.bars_bundle()).await;
        keys.push(key);
    }
    let mut out = vec![];
    for key in keys {
        let found = eventually(WAIT, "the referral", || async {
            let (_, v) = d
                .api
                .get("/api/referrals?status=awaiting-decision&limit=500")
                .await;
            let (_, w) = d
                .api
                .get("/api/referrals?status=incomplete&limit=500")
                .await;
            let all: Vec<Value> = [v, w]
                .iter()
                .flat_map(|x| x["referrals"].as_array().cloned().unwrap_or_default())
                .collect();
            all.into_iter()
                .find(|r| r["source_record"]["identifier"]["value"] == json!(key))
        })
        .await;
        out.push((
            found["id"].as_str().unwrap().to_owned(),
            found["case_id"].as_str().unwrap().to_owned(),
        ));
    }
    out
}

async fn post(d: &Daemon, path: &str, body: Value) -> (u16, Value) {
    d.api.post(path, &body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn job_starts_come_by_api_and_queue_once_each_and_bad_codes_are_refused() {
    let d = Daemon::start(&[]).await;
    let started = d.p.watch(&d.n.events, "job.started").await;
    let cases = referrals(&d, "job", 1, true).await;
    let case = &cases[0].1;
    let job = json!({"employer": "Acme <script>alert(1)</script>", "start_date": "2026-11-02",
        "hours_band": "02", "hours_per_week": 20, "paid": true, "recorded_by": "alice"});
    let (st, v) = post(&d, &format!("/api/cases/{case}/job-starts"), job.clone()).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["jobs"][0]["employer"], "Acme <script>alert(1)</script>",
        "kept as text"
    );
    let (st, _) = post(&d, &format!("/api/cases/{case}/job-starts"), job.clone()).await;
    assert_eq!(st, 200, "the same job again is a repeat");

    // The queue: a second job with the sender's id, sent twice.
    let queued = json!({"type": "ips.job-start.v1", "case_id": case, "job_id": "j-2",
        "employer": "Beta Ltd", "start_date": "2026-11-09", "hours_band": "04", "hours_per_week": 3,
        "paid": true, "recorded_by": "alice"});
    d.send_applied(&queued).await;
    d.send_applied(&queued).await;
    let events = d.p.drain(&started, 2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let more = d.p.drain(&started, 1, Duration::from_millis(500)).await;
    assert_eq!(events.len() + more.len(), 2, "one job.started per job");
    for e in &events {
        let body = String::from_utf8_lossy(&e.delivery.data);
        assert!(
            !body.contains("Acme") && !body.contains("Beta"),
            "no employer in events: {body}"
        );
    }
    let (_, v) = d.api.get(&format!("/api/cases/{case}")).await;
    assert_eq!(v["employment"]["jobs"].as_array().unwrap().len(), 2);

    // Job end by the sender's id; an unknown job is 404.
    let (st, v) = post(
        &d,
        &format!("/api/cases/{case}/job-ends"),
        json!({"job_id": "j-2", "end_date": "2026-11-20", "recorded_by": "alice"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = post(
        &d,
        &format!("/api/cases/{case}/job-ends"),
        json!({"job_id": "nope", "end_date": "2026-11-20", "recorded_by": "alice"}),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (404, Some("unknown-job")),
        "{v}"
    );

    // Codes outside the NHS Data Dictionary's, and inconsistent hours.
    let (st, v) = post(&d, &format!("/api/cases/{case}/job-starts"),
        json!({"employer": "X", "start_date": "2026-11-02", "hours_band": "05", "paid": true, "recorded_by": "a"})).await;
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("hours_band"), "names the field: {v}");
    let (st, v) = post(&d, &format!("/api/cases/{case}/job-starts"),
        json!({"employer": "X", "start_date": "2026-11-02", "hours_band": "01", "hours_per_week": 10, "paid": true, "recorded_by": "a"})).await;
    assert_eq!(st, 422, "{v}");
    assert!(
        v["error"]["problems"].to_string().contains("hours_band"),
        "{v}"
    );
    let (st, v) = post(
        &d,
        &format!("/api/cases/{case}/employment-status"),
        json!({"status": "09", "recorded_on": "2026-11-02", "recorded_by": "a"}),
    )
    .await;
    assert_eq!(st, 422, "{v}");
    let (st, v) = post(&d, &format!("/api/cases/{case}/employment-status"),
        json!({"status": "02", "recorded_on": "2026-11-02", "hours_band": "01", "recorded_by": "a"})).await;
    assert_eq!(st, 422, "hours only for employed: {v}");
    let (st, v) = post(
        &d,
        &format!("/api/cases/{case}/employment-status"),
        json!({"status": "02", "recorded_on": "2026-11-02", "recorded_by": "a"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");

    // A bad code on the queue is dead-lettered with its reason.
    d.send(&json!({"type": "ips.employment-status.v1", "case_id": case,
        "status": "99", "recorded_on": "2026-11-02", "recorded_by": "a"}))
        .await;
    let dead = d.p.drain(&d.n.dlq, 1, WAIT).await;
    assert_eq!(dead.len(), 1);
    let reason = header(&dead[0], "x-ips-error").unwrap_or_default();
    assert!(reason.contains("status"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn report_figures_match_a_scenario_worked_out_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("now");
    set_clock(&clock, datetime!(2026-08-20 10:00 UTC));
    let clock_s = clock.display().to_string();
    let d = Daemon::start(&[
        ("IPS__CLOCK__FILE", clock_s.as_str()),
        (
            "IPS__TEAM__SPECIALISTS",
            "alice=Alice Specialist,bob=Bob Specialist",
        ),
    ])
    .await;
    // 12 referrals in August: 9 complete, 3 without a reason (incomplete).
    let complete = referrals(&d, "rep", 9, true).await;
    let incomplete = referrals(&d, "inc", 3, false).await;
    assert_eq!(complete.len() + incomplete.len(), 12);
    // 7 accepted, 2 declined with reasons.
    for (rid, _) in &complete[..7] {
        let (st, v) = post(
            &d,
            &format!("/api/referrals/{rid}/decision"),
            json!({"outcome": "accepted", "decided_by": "lena"}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
    }
    for ((rid, _), reason) in complete[7..]
        .iter()
        .zip(["not-seeking-work", "declined-by-client"])
    {
        let (st, v) = post(
            &d,
            &format!("/api/referrals/{rid}/decision"),
            json!({"outcome": "declined", "decline_reason": reason, "decided_by": "lena"}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
    }
    let accepted: Vec<&String> = complete[..7].iter().map(|(_, c)| c).collect();
    // Assigned: 4 to alice, 3 to bob.
    for (i, c) in accepted.iter().enumerate() {
        let who = if i < 4 { "alice" } else { "bob" };
        let (st, v) = d
            .api
            .put(
                &format!("/api/cases/{c}/assignment"),
                &json!({"specialist": who, "assigned_by": "lena"}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    // Employment status at referral: 5 unemployed (02), 1 employed (01), 1 long-term sick (04).
    for (i, c) in accepted.iter().enumerate() {
        let status = match i {
            5 => "01",
            6 => "04",
            _ => "02",
        };
        let (st, v) = post(
            &d,
            &format!("/api/cases/{c}/employment-status"),
            json!({"status": status, "recorded_on": "2026-08-03", "recorded_by": "alice"}),
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }
    // 4 job starts: case 0 twice (37.5 h, then 10 h), case 1 (16 h), case 2 (3 h: under 4 hours).
    for (c, date, band, hours) in [
        (accepted[0], "2026-08-04", "01", 37.5),
        (accepted[1], "2026-08-10", "02", 16.0),
        (accepted[2], "2026-08-12", "04", 3.0),
        (accepted[0], "2026-08-18", "03", 10.0),
    ] {
        let (st, v) = post(
            &d,
            &format!("/api/cases/{c}/job-starts"),
            json!({"employer": "Employer <b>&</b> Co", "start_date": date, "hours_band": band,
                   "hours_per_week": hours, "paid": true, "recorded_by": "alice"}),
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }

    // Worked out by hand:
    // IPS Grow 2026Q3: referrals accepted 7; job starts 4; supported into work 2
    // (cases 0 and 1; case 2 works 3 hours); caseload 7 (the accepted cases);
    // in work at referral 1 (case 5) = 14.3%; out of work at referral 6
    // (cases 0-4 and 6), of whom 3 started paid work (0, 1, 2) = 50%.
    let grow: Value = serde_json::from_str(&report(
        &d,
        &["ips-grow", "--quarter", "2026Q3", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(grow["referrals"], 7);
    assert_eq!(grow["total_job_starts"], 4);
    assert_eq!(grow["supported_into_work"], 2);
    assert_eq!(grow["caseload"], 7);
    assert_eq!(grow["in_work_at_referral"], 1);
    assert_eq!(grow["out_of_work_at_referral"], 6);
    assert_eq!(grow["out_of_work_into_work"], 3);
    let csv = report(&d, &["ips-grow", "--quarter", "2026Q3"]);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("2026Q3,2026-07-01,2026-09-30,7,0,2,4,7,1,14.3,6,3,50.0"),
        "{csv}"
    );
    let next: Value = serde_json::from_str(&report(
        &d,
        &["ips-grow", "--quarter", "2026Q4", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(
        (
            next["referrals"].as_u64(),
            next["total_job_starts"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // Fidelity for August: 12 received, 9 complete, 3 incomplete, 7 accepted,
    // 2 declined (one per reason); 7 waiting (none seen yet: over the target
    // of 5); caseload 7 held by 2 specialists, 5 cases (declined and
    // incomplete referrals) unassigned.
    let fid_text = report(
        &d,
        &[
            "fidelity",
            "--from",
            "2026-08-01",
            "--to",
            "2026-08-31",
            "--format",
            "json",
        ],
    );
    let fid: Value = serde_json::from_str(&fid_text).unwrap();
    let m = |key: &str| -> (f64, Option<f64>) {
        let x = fid["measures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["key"] == key)
            .unwrap_or_else(|| panic!("no measure {key}"));
        (x["numerator"].as_f64().unwrap(), x["denominator"].as_f64())
    };
    assert_eq!(m("referrals.received"), (12.0, None));
    assert_eq!(m("referrals.complete"), (9.0, Some(12.0)));
    assert_eq!(m("referrals.incomplete"), (3.0, Some(12.0)));
    assert_eq!(m("referrals.accepted"), (7.0, Some(12.0)));
    assert_eq!(m("referrals.declined"), (2.0, Some(12.0)));
    assert_eq!(m("waiting.list"), (7.0, None));
    assert_eq!(m("caseload.per_specialist"), (7.0, Some(2.0)));
    assert_eq!(m("caseload.unassigned"), (5.0, None));
    assert_eq!(
        fid["decline_reasons"],
        json!({"declined-by-client": 1, "not-seeking-work": 1})
    );
    assert_eq!(
        fid["incomplete_reasons"]["no-reason"].as_u64().or(Some(3)),
        Some(3)
    );
    // The API gives the same numbers as the CLI.
    let (st, api) = d
        .api
        .get("/api/reports/fidelity?from=2026-08-01&to=2026-08-31")
        .await;
    assert_eq!(st, 200);
    assert_eq!(api, fid, "API and CLI differ");
    // The table says the same in words.
    let table = report(
        &d,
        &["fidelity", "--from", "2026-08-01", "--to", "2026-08-31"],
    );
    assert!(
        table.contains("Referrals received") && table.contains("12"),
        "{table}"
    );

    // MHSDS rows for August: every case open in the month, with the status recorded.
    let csv = report(
        &d,
        &["employment-status", "--month", "2026-08", "--format", "csv"],
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "LocalPatientId,NHSNumber,EmployStatus,EmployStatusRecDate,EmployStatusStartDate,WeekHoursWorked"
    );
    assert_eq!(lines.len(), 1 + 12, "{csv}");
    let with_status = lines[1..]
        .iter()
        .filter(|l| l.contains(",2026-08-03,"))
        .count();
    assert_eq!(with_status, 7, "{csv}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(accepted[5].as_str()) && l.contains(",01,")),
        "{csv}"
    );

    // Bad periods are clear errors.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ips-bridge"))
        .arg("--config")
        .arg(&d.config)
        .args(["report", "ips-grow", "--quarter", "2026Q5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYYQn"));
}
