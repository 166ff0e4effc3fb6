//! The binary's command line: `check-config` lists every problem, redacts secrets.

use std::process::Command;

fn bridge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ips-bridge"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

#[test]
fn check_config_names_every_problem_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        "[amqp]\nprefech = 10\n\n[fhir]\nbase_url = \"htp//not a url\"\n",
    )
    .unwrap();
    let out = bridge()
        .args(["check-config", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("amqp.prefech") && err.contains("unknown key"),
        "{err}"
    );
    assert!(
        err.contains("fhir.base_url") && err.contains("expected a URL"),
        "{err}"
    );
    assert!(err.contains("2 problem(s)"), "{err}");
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let out = bridge()
        .args(["check-config"])
        .env("IPS__HTTP__API_TOKEN", "very-secret-token")
        .env(
            "IPS__AMQP__URL",
            "amqp://bridge:amqp-password@broker:5672/%2f",
        )
        .env("IPS__AMQP__PREFETCH", "2000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("prefetch = 2000"), "{text}");
    assert!(
        !text.contains("very-secret-token") && !text.contains("amqp-password"),
        "{text}"
    );
    assert!(text.contains("<redacted>"), "{text}");
}

#[test]
fn help_explains_each_command() {
    let out = bridge().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check-config", "migrate"] {
        assert!(text.contains(cmd), "{text}");
    }
}

/// `run` stops cleanly on SIGTERM (exit 0), as systemd and Kubernetes expect.
#[test]
fn run_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let u = uuid::Uuid::new_v4().simple().to_string();
    let mut child = bridge()
        .arg("run")
        .env(
            "IPS__STORE__URL",
            format!("sqlite://{}", dir.path().join("b.db").display()),
        )
        .env("IPS__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "IPS__AMQP__URL",
            std::env::var("IPS_TEST_AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        )
        .env("IPS__AMQP__INBOUND_QUEUE", format!("t.{u}.in"))
        .env("IPS__AMQP__DEAD_LETTER_QUEUE", format!("t.{u}.dlq"))
        .env("IPS__POLLER__ENABLED", "false")
        .env(
            "IPS__STORE__PATIENT_KEY",
            "cli-test-patient-key-0123456789abcdef",
        )
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the bridge did not start listening"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit within 20 s of SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("ips-bridge stopped"), "{log}");
}

/// `run` refuses to start without a patient lookup key, and says how to make one;
/// `check-config` accepts its absence but never prints a configured key.
#[test]
fn run_refuses_to_start_without_a_patient_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = bridge()
        .arg("run")
        .env(
            "IPS__STORE__URL",
            format!("sqlite://{}", dir.path().join("b.db").display()),
        )
        .env("IPS__HTTP__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("store.patient_key is not set") && err.contains("openssl rand"),
        "{err}"
    );
    assert!(
        !dir.path().join("b.db").exists(),
        "refused before touching the store"
    );

    let key = dir.path().join("patient.key");
    std::fs::write(&key, "cli-patient-key-0123456789abcdef0123456789\n").unwrap();
    let out = bridge()
        .arg("check-config")
        .env("IPS__STORE__PATIENT_KEY_FILE", &key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("patient_key = \"<redacted>\""), "{text}");
    assert!(!text.contains("cli-patient-key"), "{text}");
}

/// A rules file with two bad rules: `check-config` names both rules and every
/// problem, and `run` refuses to start on it.
#[test]
fn check_config_lists_every_problem_of_the_discharge_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("discharge-rules.toml");
    std::fs::write(
        &rules,
        r#"
[[rule]]
id = "gp-two-dnas"
name = "GP: 2 consecutive DNAs"
kind = "consecutive_dna"
threshold = 2
warn_before = { dnas = 2 }

[[rule]]
id = "cmht-window"
name = "CMHT: 3 DNAs in 90 days"
kind = "dna_within"
threshold = 3
days = 0
warn_before = { days = 7 }
applies_to = { organisation = ["RX4E2"] }
"#,
    )
    .unwrap();
    let out = bridge()
        .arg("check-config")
        .env("IPS__OUTREACH__RULES_FILE", &rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "outreach.rules_file: rule gp-two-dnas: warn_before.dnas must be less than threshold",
        "outreach.rules_file: rule cmht-window: days must be at least 1",
        "outreach.rules_file: rule cmht-window: warn_before.days does not apply to dna_within",
        "outreach.rules_file: rule cmht-window: unknown key `applies_to.organisation`",
        "4 problem(s)",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }

    let out = bridge()
        .arg("run")
        .env("IPS__OUTREACH__RULES_FILE", &rules)
        .env(
            "IPS__STORE__URL",
            format!("sqlite://{}", dir.path().join("b.db").display()),
        )
        .env("IPS__HTTP__LISTEN", "127.0.0.1:0")
        .env(
            "IPS__STORE__PATIENT_KEY",
            "cli-test-patient-key-0123456789abcdef",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rule gp-two-dnas"), "{err}");
    assert!(
        !dir.path().join("b.db").exists(),
        "refused before touching the store"
    );
}

/// A questionnaires directory with a broken VP and no IWSP: `check-config`
/// names each file and problem; `render-sample` prints a well-formed document
/// from the built-in ones.
#[test]
fn check_config_names_every_problem_of_the_questionnaires() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vocational-profile.json"),
        r#"{"resourceType": "Questionnaire", "item": [{"linkId": "work-goal", "type": "choice", "text": "Goal"}, {"type": "text"}]}"#,
    )
    .unwrap();
    let out = bridge()
        .arg("check-config")
        .env("IPS__DOCUMENTS__QUESTIONNAIRES_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "documents.questionnaires_dir: ",
        "vocational-profile.json: url is missing",
        "item \"work-goal\" has type choice",
        "item[1] has no linkId",
        "in-work-support-plan.json: No such file",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }

    let out = bridge().args(["render-sample", "iwsp"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xhtml = String::from_utf8(out.stdout).unwrap();
    assert!(xhtml.starts_with("<?xml") && xhtml.contains("<h1>In-work support plan</h1>"));
    assert!(
        xhtml.contains("Who to contact"),
        "headings from the built-in IWSP"
    );
}
