//! No patient data in logs or dead-letter headers: the daemon runs as a
//! process (JSON and pretty logs captured from its output), the FHIR server
//! answers a Task write with a 400 whose OperationOutcome echoes the NHS
//! number (as real servers' validation messages do), and two bad ES events
//! hold an NHS number in a wrongly typed field (serde quotes such values in
//! its messages). The number must appear nowhere: not in stdout, stderr, or
//! the DLQ's `x-ips-error` headers. What is logged instead is checked too, so
//! the test cannot pass by logging nothing.

mod common;

use common::fixtures::*;
use common::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const DECISION: &str = "ips.referral-decision.v1";

async fn publish_event(p: &Pub, exchange: &str, body: &Value) {
    let props = lapin::BasicProperties::default()
        .with_message_id(uid().as_str().into())
        .with_type(DECISION.into())
        .with_content_type("application/json".into());
    p.ch.basic_publish(
        exchange.into(),
        "es.decision".into(),
        Default::default(),
        &serde_json::to_vec(body).unwrap(),
        props,
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn wait_for_log(out: &std::path::Path, err: &std::path::Path, needle: &str, times: usize) {
    eventually(
        WAIT,
        &format!("{needle:?} logged {times} time(s)"),
        || async {
            let all = read(out) + &read(err);
            (all.matches(needle).count() >= times).then_some(())
        },
    )
    .await;
}

async fn run_with_log_format(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start();
    let n = Names::new();
    let db = format!("sqlite://{}", dir.path().join("b.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let env = settings_env(
        &db,
        &sb.url,
        &n,
        &[
            ("IPS__LOG__FORMAT", format),
            ("IPS__LOG__LEVEL", "info,ips_bridge=trace"),
            ("IPS__HTTP__LISTEN", &listen),
        ],
    );
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ips-bridge"))
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    eventually(WAIT, "daemon ready", || async {
        let r = reqwest::get(format!("{base}/readyz")).await.ok()?;
        let body: Value = r.json().await.ok()?;
        (body["checks"]["broker"]["status"] == "up").then_some(())
    })
    .await;

    let nhs = nhs_number(u64::from_str_radix(&uid()[..8], 16).unwrap());
    let echo = format!("Patient with NHS number {nhs} is not known to this server");
    sb.fault(json!({
        "status": 400, "count": 10,
        "match": {"method": "POST", "pathPrefix": "Task"},
        "outcome": {"resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": "invalid", "diagnostics": echo,
            "details": {"text": echo}, "expression": ["Task.for.identifier"]
        }]}
    }))
    .await;

    let p = Pub::connect(&n.url).await;
    let r = Referral::new(&uid(), &nhs);
    p.publish(
        &n.exchange,
        "bars",
        &serde_json::to_vec(&r.bars_bundle()).unwrap(),
        &uid(),
        FHIR_JSON,
    )
    .await
    .unwrap();
    let api = Api::new(listen.parse().unwrap());
    let id = eventually(WAIT, "referral awaiting decision", || async {
        let (_, b) = api.get("/api/referrals?status=awaiting-decision").await;
        b["referrals"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    // A valid decision: its Task write meets the 400 that echoes the number.
    publish_event(
        &p,
        &n.exchange,
        &json!({"referral_id": id, "outcome": "accepted"}),
    )
    .await;
    wait_for_log(&out_path, &err_path, "parked as failed", 1).await;

    // Two bad events: the number as a wrongly typed id, and as an unknown outcome.
    let as_number: u64 = nhs.parse().unwrap();
    publish_event(
        &p,
        &n.exchange,
        &json!({"referral_id": as_number, "outcome": "accepted"}),
    )
    .await;
    publish_event(&p, &n.exchange, &json!({"referral_id": id, "outcome": nhs})).await;
    let dead = p.drain(&n.dlq, 2, WAIT).await;
    assert_eq!(dead.len(), 2, "both bad events dead-lettered");
    wait_for_log(&out_path, &err_path, "dead-lettering inbound message", 2).await;

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = child.wait();

    let logs = read(&out_path) + &read(&err_path);
    assert!(
        !logs.contains(&nhs),
        "{format} logs contain the NHS number:\n{logs}"
    );
    assert!(!logs.contains("is not known to this server"), "{logs}");
    // What is logged instead: the issue code and path, the serde path.
    assert!(
        logs.contains("invalid at Task.for.identifier"),
        "{format}: {logs}"
    );
    assert!(logs.contains("referral_id"), "{format}: {logs}");
    assert!(logs.contains("outcome"), "{format}: {logs}");
    if format == "json" {
        for line in logs.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                serde_json::from_str::<Value>(line).is_ok(),
                "not a JSON log line: {line}"
            );
        }
    }
    for m in &dead {
        let reason = header(m, "x-ips-error").unwrap_or_default();
        assert!(
            !reason.contains(&nhs),
            "DLQ header holds the number: {reason}"
        );
        assert_eq!(
            header(m, "x-ips-error-code").as_deref(),
            Some("invalid-event")
        );
    }
}

#[tokio::test]
async fn no_nhs_number_in_json_logs_or_dead_letter_headers() {
    run_with_log_format("json").await;
}

#[tokio::test]
async fn no_nhs_number_in_pretty_logs_or_dead_letter_headers() {
    run_with_log_format("pretty").await;
}
