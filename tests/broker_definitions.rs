//! `deploy/rabbitmq/definitions.json` is the topology the daemon expects.
//!
//! The file is imported into a fresh vhost of the real broker
//! (`rabbitmqctl import_definitions`), its users renamed for the test, and
//! then:
//! - the daemon declares its own topology over it and the broker agrees
//!   (a queue argument that differed would be PRECONDITION_FAILED);
//! - the daemon runs as the file's least-privilege user with
//!   `amqp.declare_topology = false`: a referral goes through to its event,
//!   a bad message to the dead-letter queue with its reason;
//! - that user cannot declare anything, nor read or write names not its own;
//! - with a queue missing, the daemon stays not-ready and its log names it.

mod common;

use common::daemon::Daemon;
use common::effects::{queue_counts, rabbitmqctl, settle_queue};
use common::fixtures::{Referral, nhs_number};
use common::*;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;
use std::time::Duration;

const PASSWORD: &str = "defs-test-password";

/// The file imported into a vhost of its own; deleted with its users on drop.
struct Imported {
    vhost: String,
    bridge_user: String,
    ops_user: String,
    _file: tempfile::NamedTempFile,
}

impl Imported {
    fn new() -> Imported {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/rabbitmq/definitions.json"
        );
        let mut defs: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .expect("definitions.json is JSON");
        let u = uid();
        let vhost = format!("t-defs-{u}");
        let bridge_user = format!("ips-bridge-{u}");
        let ops_user = format!("ips-bridge-ops-{u}");
        rename(&mut defs, "ips", &vhost, &bridge_user, &ops_user);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), serde_json::to_vec_pretty(&defs).unwrap()).unwrap();
        // The broker reads it as its own user.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        // import_definitions wants an absolute path (DESIGN §9).
        let abs = file.path().canonicalize().unwrap();
        rabbitmqctl(&["import_definitions", abs.to_str().unwrap()]);
        let imported = Imported {
            vhost,
            bridge_user,
            ops_user,
            _file: file,
        };
        // The file ships users without passwords: the platform team sets them.
        rabbitmqctl(&["change_password", &imported.bridge_user, PASSWORD]);
        // The test itself publishes and watches as the broker's admin.
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            &imported.vhost,
            "guest",
            ".*",
            ".*",
            ".*",
        ]);
        imported
    }

    fn url(&self, user: &str, password: &str) -> String {
        format!("amqp://{user}:{password}@127.0.0.1:5672/{}", self.vhost)
    }

    /// The shipped names (config/default.toml) on this vhost, as guest.
    fn names(&self) -> Names {
        Names {
            url: self.url("guest", "guest"),
            exchange: "clinical.events".into(),
            queue: "ips-bridge.inbound".into(),
            dlx: "ips-bridge.dlx".into(),
            dlq: "ips-bridge.inbound.dlq".into(),
            events: "ips-bridge.events".into(),
        }
    }
}

impl Drop for Imported {
    fn drop(&mut self) {
        for args in [
            vec!["delete_vhost", self.vhost.as_str()],
            vec!["delete_user", self.bridge_user.as_str()],
            vec!["delete_user", self.ops_user.as_str()],
        ] {
            let _ = std::process::Command::new("rabbitmqctl")
                .args(&args)
                .output();
        }
    }
}

/// Points every `vhost` field at `vhost` and renames the two users.
fn rename(v: &mut Value, from_vhost: &str, vhost: &str, bridge: &str, ops: &str) {
    match v {
        Value::Object(o) => {
            for (k, val) in o.iter_mut() {
                match (k.as_str(), val.as_str()) {
                    ("vhost", Some(s)) if s == from_vhost => *val = vhost.into(),
                    ("name" | "user", Some("ips-bridge")) => *val = bridge.into(),
                    ("name" | "user", Some("ips-bridge-ops")) => *val = ops.into(),
                    _ => rename(val, from_vhost, vhost, bridge, ops),
                }
            }
            if o.len() == 1
                && let Some(Value::String(name)) = o.get_mut("name")
                && name == from_vhost
            {
                *name = vhost.into();
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|x| rename(x, from_vhost, vhost, bridge, ops)),
        _ => {}
    }
}

/// What the daemon declares (queue arguments included) is what the file
/// made: a differing argument would fail the declare with PRECONDITION_FAILED.
#[tokio::test]
async fn the_daemons_own_declarations_match_the_file() {
    let defs = Imported::new();
    let n = defs.names();
    let settings = settings("sqlite::memory:", "http://127.0.0.1:9", &n, &[]);
    let conn = Connection::connect(&n.url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ips_bridge::amqp::topology::declare(&ch, &settings.amqp)
        .await
        .expect("the daemon's declarations agree with deploy/rabbitmq/definitions.json");
    // And the check it makes with declaration off passes too.
    let off = common::settings(
        "sqlite::memory:",
        "http://127.0.0.1:9",
        &n,
        &[("IPS__AMQP__DECLARE_TOPOLOGY", "false")],
    );
    ips_bridge::amqp::topology::declare(&ch, &off.amqp)
        .await
        .unwrap();
}

/// The daemon as the file's own user, declaring nothing: a referral is
/// processed and its event published; a message that is not JSON is
/// dead-lettered with its reason.
#[tokio::test]
async fn the_daemon_runs_as_the_least_privilege_user_without_declaring() {
    let defs = Imported::new();
    let n = defs.names();
    let bridge_url = defs.url(&defs.bridge_user, PASSWORD);
    let d = Daemon::start_with(
        n,
        None,
        &[
            ("IPS__AMQP__URL", bridge_url.as_str()),
            ("IPS__AMQP__DECLARE_TOPOLOGY", "false"),
        ],
    )
    .await;
    let events = d.p.watch(&d.n.events, "referral.received").await;
    let referral =
        serde_json::to_vec(&Referral::new(&uid(), &nhs_number(7)).bars_bundle()).unwrap();
    d.p.publish(
        &d.n.exchange,
        "bars.referral",
        &referral,
        "defs-1",
        FHIR_JSON,
    )
    .await
    .unwrap();
    d.p.publish(
        &d.n.exchange,
        "bars.referral",
        b"not json",
        "defs-2",
        FHIR_JSON,
    )
    .await
    .unwrap();
    let got = d.p.drain(&events, 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "one referral.received event");
    let dead = d.p.drain(&d.n.dlq, 1, Duration::from_secs(20)).await;
    assert_eq!(dead.len(), 1, "one dead letter");
    assert_eq!(
        header(&dead[0], "x-ips-error-code").as_deref(),
        Some("invalid-json")
    );
    settle_queue(&d.n.url, &d.n.queue, Duration::from_secs(10)).await;
    assert_eq!(queue_counts(&d.n.url, &d.n.queue), (0, 0), "all acked");
    assert_eq!(effects::audit_count(&d.db, "referral.received").await, 1);
}

/// The file's user may only consume its queue and publish its events and
/// dead letters.
#[tokio::test]
async fn the_bridge_user_has_no_rights_beyond_its_own_names() {
    let defs = Imported::new();
    let url = defs.url(&defs.bridge_user, PASSWORD);
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let refused = |r: lapin::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert!(e.to_string().contains("ACCESS_REFUSED"), "{what}: {e}");
    };
    let ch = conn.create_channel().await.unwrap();
    refused(
        ch.queue_declare(
            "someone-elses".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .map(|_| ()),
        "declare a queue",
    );
    // With confirms on, the publish's confirm is pending when the broker
    // closes the channel, so it carries the reason. (Without them, a call
    // made after the refusal met the channel already closing, "invalid
    // channel state: Closing", and the reason was lost; seen once.)
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let publish = ch
        .basic_publish(
            "clinical.events".into(),
            "x".into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default(),
        )
        .await;
    let closed = match publish {
        Err(e) => Err(e),
        Ok(confirm) => confirm.await.map(|_| ()),
    };
    refused(closed, "publish to the clinical systems' exchange");
}

/// With declaration off and the dead-letter queue missing, the daemon does
/// not pretend to be ready, and its log names what is missing.
#[tokio::test]
async fn a_missing_queue_is_named_and_keeps_the_daemon_not_ready() {
    let defs = Imported::new();
    rabbitmqctl(&["delete_queue", "-p", &defs.vhost, "ips-bridge.inbound.dlq"]);
    let n = defs.names();
    let (_db_dir, db) = temp_sqlite_url();
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ips-bridge.toml");
    let bridge_url = defs.url(&defs.bridge_user, PASSWORD);
    let env = settings_env(
        &db,
        &sb.url,
        &n,
        &[
            ("IPS__AMQP__URL", bridge_url.as_str()),
            ("IPS__AMQP__DECLARE_TOPOLOGY", "false"),
            ("IPS__LOG__FORMAT", "json"),
            ("IPS__LOG__LEVEL", "info"),
        ],
    );
    common::daemon::write_config(&config, &env);
    let log = dir.path().join("run.log");
    let mut child = common::daemon::spawn_process(&config, std::fs::File::create(&log).unwrap());
    let said = eventually(Duration::from_secs(30), "the log names the queue", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        async move {
            text.lines()
                .find(|l| {
                    l.contains("declare_topology is off") && l.contains("ips-bridge.inbound.dlq")
                })
                .map(str::to_owned)
        }
    })
    .await;
    assert!(said.contains("definitions.json"), "{said}");
    let addr = eventually(Duration::from_secs(30), "the start line", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        async move { common::daemon::start_line_field(&text, "http_addr") }
    })
    .await;
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let _ = child.kill();
    let _ = child.wait();
}
