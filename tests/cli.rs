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
        .env("IPS__AMQP__PREFETCH", "420")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("prefetch = 420"), "{text}");
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
