//! Mutual TLS to MESH (`mesh.client_cert_file`, `mesh.client_key_file`,
//! `mesh.ca_cert_file`), against NHS England's MESH sandbox served over
//! HTTPS by uvicorn with `ssl.CERT_REQUIRED`, RabbitMQ and the real binary.
//!
//! The certificates are made here, at run time, with the `openssl` command
//! line: a CA, the sandbox's server certificate for `IP:127.0.0.1`, a client
//! certificate for the bridge's mailbox X26ABC1 and one for the practice's
//! X26ABC2 (the tests' own MESH client), all signed by the CA; and a rogue CA
//! with a client certificate for X26ABC1 that the sandbox does not trust.
//! Effects are counted where they land: messages in the practice's mailbox
//! (read through the sandbox with the harness's own mutual-TLS client), the
//! sandbox's access log, the delivery's send row in the case API and the
//! daemon's own metrics.

mod common;

use common::daemon::Daemon;
use common::fixtures::*;
use common::mesh::{DEFAULT_SHARED_KEY, MeshSandbox, X26ABC1, X26ABC2};
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(2500);

use common::mesh_flow::{self, WAIT, delivery, open_case, post_note, send_in};
use common::mesh_pki::Pki;

// --- the bridge and a case (tests/common/mesh_flow.rs), with a shorter MESH timeout ---

async fn bridge(mesh_url: &str, extra: &[(&str, String)]) -> Daemon {
    let mut all: Vec<(&str, &str)> = vec![("IPS__MESH__TIMEOUT", "10s")];
    all.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    mesh_flow::bridge(mesh_url, &all).await
}

/// Requests the bridge (mailbox X26ABC1) got through to the sandbox, by
/// status. The harness's own client is X26ABC2.
fn bridge_requests(mesh: &MeshSandbox) -> Vec<(String, String, u16)> {
    mesh.access_log()
        .into_iter()
        .filter(|l| l.path.starts_with("/messageexchange/X26ABC1"))
        .map(|l| (l.method, l.path, l.status))
        .collect()
}

/// A GET to the sandbox by a client of the test's own that trusts the CA and
/// presents `identity` (cert and key files) or nothing: the sandbox itself
/// refuses a client without a certificate it trusts.
async fn probe(pki: &Pki, url: &str, identity: Option<(&str, &str)>) -> Result<u16, String> {
    let ca = std::fs::read(pki.path("ca.pem")).unwrap();
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()]);
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(pki.path(cert)).unwrap();
        pem.extend(std::fs::read(pki.path(key)).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    let client = b.build().unwrap();
    match client.get(format!("{url}/health")).send().await {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(c) = src {
                s.push_str(": ");
                s.push_str(&c.to_string());
                src = c.source();
            }
            Err(s)
        }
    }
}

// --- the tests ---

/// With the mailbox's certificate and key (PKCS#8 P-256) and the CA of the
/// server's certificate, a note for a patient of a practice routed to MESH is
/// exactly one message in the practice's mailbox, sent over a TLS connection
/// the server accepted only because the bridge presented that certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_mailbox_certificate_a_note_reaches_the_practice_once() {
    let pki = Pki::new();
    let mesh = MeshSandbox::start_tls(&pki.sandbox()).await;
    assert!(mesh.url.starts_with("https://127.0.0.1:"), "{}", mesh.url);
    // The sandbox refuses a client without a certificate, or with one from
    // another CA, and takes one signed by its CA.
    let none = probe(&pki, &mesh.url, None).await;
    assert!(none.is_err(), "no client certificate: {none:?}");
    let rogue = probe(
        &pki,
        &mesh.url,
        Some(("rogue-client.pem", "rogue-client.key")),
    )
    .await;
    assert!(rogue.is_err(), "a rogue client certificate: {rogue:?}");
    let good = probe(&pki, &mesh.url, Some(("client.pem", "client.key"))).await;
    assert_eq!(good, Ok(200));

    let d = bridge(
        &mesh.url,
        &pki.settings("client.pem", "client.key", "ca.pem"),
    )
    .await;
    let case = open_case(&d, &nhs_number(7100)).await;
    let doc = post_note(&d, &case, "n-tls").await;

    let ids = mesh.wait_for_inbox(X26ABC2, 1, WAIT).await;
    assert_eq!(ids.len(), 1);
    let (headers, body) = mesh.download(X26ABC2, &ids[0]).await;
    assert_eq!(headers["mex-from"], X26ABC1.id);
    assert_eq!(headers["mex-workflowid"], "GPCONNECT_SEND_DOCUMENT");
    assert_eq!(headers["mex-localid"], format!("ips-doc-{doc}"));
    let text = String::from_utf8(body).expect("UTF-8");
    assert!(text.contains("<Bundle"), "{text}");
    let v = send_in(&d, &case, "done").await;
    assert_eq!(v["send"]["attempts"], 1, "{v}");
    assert!(
        v["send"]["result"].as_str().unwrap().starts_with("mesh:"),
        "{v}"
    );
    assert_eq!(v["mailbox"], X26ABC2.id, "{v}");

    tokio::time::sleep(QUIET).await;
    assert_eq!(mesh.inbox(X26ABC2).await.len(), 1, "still one message");
    let reqs = bridge_requests(&mesh);
    let count = |method: &str, path: &str, status: u16| {
        reqs.iter()
            .filter(|(m, p, s)| m == method && p == path && *s == status)
            .count()
    };
    assert_eq!(
        count("POST", "/messageexchange/X26ABC1/outbox", 202),
        1,
        "{reqs:?}"
    );
    // Everything else the bridge does goes over the same mutual TLS: the
    // handshake at start and the looks at its own inbox.
    assert_eq!(
        count("POST", "/messageexchange/X26ABC1", 200),
        1,
        "{reqs:?}"
    );
    assert!(
        count("GET", "/messageexchange/X26ABC1/inbox", 200) >= 1,
        "{reqs:?}"
    );
    // Tracking before the send: 404, never sent before. Nothing else refused.
    let tracking = format!("/messageexchange/X26ABC1/outbox/tracking/ips-doc-{doc}");
    assert_eq!(count("GET", &tracking, 404), 1, "{reqs:?}");
    assert!(
        reqs.iter().all(|(_, p, s)| *s < 400 || *p == tracking),
        "no request refused: {reqs:?}"
    );
    let transport = d
        .counter(
            "ips_mesh_requests_total",
            &[("op", "send"), ("status", "transport")],
        )
        .await;
    assert_eq!(transport, 0.0);
}

/// The other key forms a mailbox's key file comes in work as well: the same
/// EC key as SEC1 (`BEGIN EC PRIVATE KEY`), and RSA 2048 as PKCS#1
/// (`BEGIN RSA PRIVATE KEY`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec1_ec_and_pkcs1_rsa_client_keys_work_too() {
    let pki = Pki::new();
    for (cert, key) in [
        ("client.pem", "client-sec1.key"),
        ("client-rsa.pem", "client-rsa.key"),
    ] {
        let mesh = MeshSandbox::start_tls(&pki.sandbox()).await;
        let d = bridge(&mesh.url, &pki.settings(cert, key, "ca.pem")).await;
        let case = open_case(&d, &nhs_number(7200)).await;
        post_note(&d, &case, "n-key").await;
        let ids = mesh.wait_for_inbox(X26ABC2, 1, WAIT).await;
        assert_eq!(ids.len(), 1, "{key}");
        send_in(&d, &case, "done").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(mesh.inbox(X26ABC2).await.len(), 1, "{key}");
    }
}

/// A client certificate from a CA the server does not trust, no client
/// certificate at all, or a server certificate not signed by
/// `mesh.ca_cert_file`: no request gets through and nothing reaches the
/// practice. The send stays pending with the TLS failure as its error and is
/// tried again at the outbox's pace (transport errors are retried, not
/// parked); once the certificates are right (config fixed, daemon
/// restarted), that pending send goes through, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_certificate_the_peer_trusts_nothing_gets_through_and_the_send_waits() {
    // The words of the error each case must show (any one of them), in
    // rustls's and hyper's terms. A server refusing the client's certificate
    // (TLS 1.3: after the client's handshake is done) shows on the client as
    // the connection closing under its first request ("peer closed
    // connection without sending TLS close_notify" from this sandbox); a
    // server the bridge does not trust fails in the handshake.
    let cases: [(&str, [&str; 3], &[&str]); 3] = [
        (
            "a client certificate from an untrusted CA",
            ["rogue-client.pem", "rogue-client.key", "ca.pem"],
            &["alert", "UnknownCA", "connection", "certificate"],
        ),
        (
            "no client certificate",
            ["", "", "ca.pem"],
            &["alert", "CertificateRequired", "connection", "certificate"],
        ),
        (
            "a server certificate from another CA",
            ["client.pem", "client.key", "rogue-ca.pem"],
            &["invalid peer certificate: UnknownIssuer"],
        ),
    ];
    let pki = Pki::new();
    for (what, [cert, key, ca], words) in cases {
        let settings = pki.settings(cert, key, ca);
        let mesh = MeshSandbox::start_tls(&pki.sandbox()).await;
        let mut d = bridge(&mesh.url, &settings).await;
        let nhs = nhs_number(7300);
        let case = open_case(&d, &nhs).await;
        let doc = post_note(&d, &case, "n-refused").await;

        let first = eventually(WAIT, "the first failed attempt", || async {
            let v = delivery(&d, &case).await;
            (v["send"]["attempts"].as_i64() >= Some(1) && v["send"]["error"].is_string())
                .then_some(v)
        })
        .await;
        assert_eq!(first["send"]["status"], "pending", "{what}: {first}");
        // `sent` is the delivery's first state: handed to the outbox, no
        // acknowledgement yet (the send row says whether it left).
        assert_eq!(first["state"], "sent", "{what}: {first}");
        let error = first["send"]["error"].as_str().unwrap();
        eprintln!("{what}: {error}");
        assert!(error.starts_with("cannot reach MESH"), "{what}: {error}");
        assert!(
            words.iter().any(|w| error.contains(w)),
            "{what}: the error names no TLS problem: {error}"
        );
        assert!(!error.contains(&nhs), "no patient data: {error}");

        // Retried, at the outbox's pace: with `min_delay` 200ms doubling
        // (with jitter) to `max_delay` 1s, the waits are at least 0.2, 0.4,
        // 0.8, 1, 1… s, so 4 s hold at most 6 more attempts; a retry storm
        // would be hundreds.
        let a0 = first["send"]["attempts"].as_i64().unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let later = delivery(&d, &case).await;
        let a1 = later["send"]["attempts"].as_i64().unwrap();
        assert!(a1 > a0, "{what}: not retried: {a0} then {later}");
        assert!(a1 - a0 <= 6, "{what}: retried too fast: {a0} then {later}");
        assert_eq!(later["send"]["status"], "pending", "{what}: {later}");
        // Each attempt is one failed connection (tracking comes first, and
        // it never got through), and nothing was parked.
        let failures = d
            .counter("ips_mesh_send_failures_total", &[("reason", "transport")])
            .await;
        assert!(
            failures >= a1 as f64 && failures <= (a1 + 1) as f64,
            "{what}: {failures} transport failures for {a1} attempts"
        );
        let parked = d
            .counter("ips_outbox_parked_total", &[("kind", "mesh-send")])
            .await;
        assert_eq!(parked, 0.0, "{what}");

        // Nothing reached MESH: no request of the bridge's in the access log
        // (the handshake failed before HTTP), nothing in the practice's inbox.
        assert_eq!(bridge_requests(&mesh), vec![], "{what}");
        assert_eq!(mesh.inbox(X26ABC2).await.len(), 0, "{what}");

        // The certificates put right: the pending send goes, once.
        set_mesh_files(&d.config, &pki, "client.pem", "client.key", "ca.pem");
        d.restart().await;
        let v = send_in(&d, &case, "done").await;
        assert!(
            v["send"]["result"].as_str().unwrap().starts_with("mesh:"),
            "{what}: {v}"
        );
        let ids = mesh.wait_for_inbox(X26ABC2, 1, WAIT).await;
        tokio::time::sleep(QUIET).await;
        assert_eq!(ids.len(), 1, "{what}");
        assert_eq!(mesh.inbox(X26ABC2).await.len(), 1, "{what}");
        assert_eq!(
            mesh.requests("POST", "/messageexchange/X26ABC1/outbox"),
            1,
            "{what}"
        );
        let (headers, _) = mesh.download(X26ABC2, &ids[0]).await;
        assert_eq!(headers["mex-localid"], format!("ips-doc-{doc}"));
    }
}

/// Rewrites the daemon's config file with these three MESH files.
fn set_mesh_files(config: &Path, pki: &Pki, cert: &str, key: &str, ca: &str) {
    let mut root: toml::Table = std::fs::read_to_string(config)
        .unwrap()
        .parse()
        .expect("the daemon's config file");
    let mesh = root["mesh"].as_table_mut().expect("[mesh]");
    for (k, f) in [
        ("client_cert_file", cert),
        ("client_key_file", key),
        ("ca_cert_file", ca),
    ] {
        mesh.insert(k.into(), toml::Value::String(pki.file(f)));
    }
    std::fs::write(config, toml::to_string(&root).unwrap()).unwrap();
}

/// `run` with a MESH file it cannot use refuses to start, naming the setting
/// and the file, before it touches the store (no broker, no sandbox needed:
/// the MESH client is built first).
#[test]
fn a_mesh_tls_file_that_cannot_be_used_stops_the_daemon_at_start() {
    let pki = Pki::new();
    let missing = pki.file("nowhere/client.pem");
    let cases = [
        (
            "a client certificate file that does not exist",
            (missing.clone(), pki.file("client.key"), pki.file("ca.pem")),
            vec!["mesh.client_cert_file", missing.as_str()],
        ),
        (
            "a client key file that does not exist",
            (pki.file("client.pem"), missing.clone(), pki.file("ca.pem")),
            vec!["mesh.client_key_file", missing.as_str()],
        ),
        (
            "a CA file that does not exist",
            (
                pki.file("client.pem"),
                pki.file("client.key"),
                missing.clone(),
            ),
            vec!["mesh.ca_cert_file", missing.as_str()],
        ),
        (
            "a key file holding a certificate, not a key",
            (
                pki.file("client.pem"),
                pki.file("ca.pem"),
                pki.file("ca.pem"),
            ),
            vec!["mesh.client_key_file", "holds no PEM PRIVATE KEY"],
        ),
        (
            "a key that is not the certificate's",
            (
                pki.file("client.pem"),
                pki.file("server.key"),
                pki.file("ca.pem"),
            ),
            vec![
                "cannot build the MESH client",
                "does the key match the certificate?",
            ],
        ),
    ];
    for (what, (cert, key, ca), words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bridge.db");
        let log = dir.path().join("run.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ips-bridge"))
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("IPS__STORE__URL", format!("sqlite://{}", db.display()))
            .env("IPS__STORE__PATIENT_KEY", PATIENT_KEY)
            .env("IPS__HTTP__LISTEN", "127.0.0.1:0")
            .env("IPS__HTTP__API_TOKEN", TOKEN)
            .env("IPS__MESH__ENABLED", "true")
            .env("IPS__MESH__URL", "https://127.0.0.1:9")
            .env("IPS__MESH__MAILBOX", X26ABC1.id)
            .env("IPS__MESH__PASSWORD", "password")
            .env("IPS__MESH__SHARED_KEY", DEFAULT_SHARED_KEY)
            .env("IPS__MESH__CLIENT_CERT_FILE", &cert)
            .env("IPS__MESH__CLIENT_KEY_FILE", &key)
            .env("IPS__MESH__CA_CERT_FILE", &ca)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the ips-bridge binary");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what}: `run` did not refuse within 30 s:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let err = std::fs::read_to_string(&log).unwrap();
        assert!(!status.success(), "{what}: {status}\n{err}");
        // A file that is missing or holds the wrong thing is a configuration
        // problem (`check-config` lists it too); a key that does not match
        // its certificate is found when the client is built.
        assert!(
            err.contains("cannot build the MESH client") || err.contains("problem(s)"),
            "{what}: {err}"
        );
        for w in &words {
            assert!(err.contains(w), "{what}: no {w:?} in:\n{err}");
        }
        assert!(!db.exists(), "{what}: refused before touching the store");
    }
}
