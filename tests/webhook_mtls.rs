//! The FHIR rest-hook behind mutual TLS (`[http.webhook_tls]`), against the
//! real daemon process: only a client whose certificate chains to the
//! configured CA gets a TLS session, the shared secret is still checked
//! inside it, and the plain listener no longer serves the hook.

mod common;

use common::daemon::{Daemon, metric_value, start_line_field};
use common::mesh_pki::Pki;
use std::time::Duration;

const SECRET: &str = "hook-secret-for-tests";

/// The hook's TLS address from the start line.
fn hook_addr(d: &Daemon) -> String {
    start_line_field(&d.logs(), "webhook_tls_addr")
        .expect("the start line names the rest-hook's TLS address")
}

/// A client trusting the test CA for the server, with `identity` (cert, key) if any.
fn client(pki: &Pki, identity: Option<(&str, &str)>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki.path("ca.pem")).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(pki.path(cert)).unwrap();
        pem.push(b'\n');
        pem.extend(std::fs::read(pki.path(key)).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

async fn notify(c: &reqwest::Client, url: &str, secret: &str) -> Result<u16, reqwest::Error> {
    c.post(url)
        .bearer_auth(secret)
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType":"Bundle","type":"history"}"#)
        .send()
        .await
        .map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_hook_takes_only_clients_with_a_certificate_from_the_configured_ca() {
    let pki = Pki::new();
    let (cert, key, ca) = (
        pki.file("server.pem"),
        pki.file("server.key"),
        pki.file("ca.pem"),
    );
    let d = Daemon::start(&[
        ("IPS__HTTP__WEBHOOK_SECRET", SECRET),
        ("IPS__HTTP__WEBHOOK_TLS__LISTEN", "127.0.0.1:0"),
        ("IPS__HTTP__WEBHOOK_TLS__CERT_FILE", &cert),
        ("IPS__HTTP__WEBHOOK_TLS__KEY_FILE", &key),
        ("IPS__HTTP__WEBHOOK_TLS__CLIENT_CA_FILE", &ca),
    ])
    .await;
    let url = format!("https://{}/fhir/notify", hook_addr(&d));

    // The FHIR server's certificate, issued by the CA: accepted, and the secret still counts.
    let trusted = client(&pki, Some(("client.pem", "client.key")));
    assert_eq!(notify(&trusted, &url, SECRET).await.unwrap(), 202);
    assert_eq!(notify(&trusted, &url, "not-the-secret").await.unwrap(), 401);
    // An RSA client certificate from the same CA works too.
    let rsa = client(&pki, Some(("client-rsa.pem", "client-rsa.key")));
    assert_eq!(notify(&rsa, &url, SECRET).await.unwrap(), 202);

    // No certificate, or one from another CA: no TLS session, whatever the secret.
    let anonymous = client(&pki, None);
    let rogue = client(&pki, Some(("rogue-client.pem", "rogue-client.key")));
    for (who, c) in [("no certificate", &anonymous), ("a rogue CA's", &rogue)] {
        match notify(c, &url, SECRET).await {
            Ok(status) => panic!("a client with {who} got HTTP {status}"),
            Err(e) => assert!(!e.is_status(), "{who}: {e}"),
        }
    }
    let refused = metric_value(&d.metrics().await, "ips_webhook_tls_refused_total", &[]);
    assert!(
        refused.is_some_and(|n| n >= 2.0),
        "refused handshakes are counted: {refused:?}"
    );

    // The plain listener no longer serves the hook, so the certificate cannot be walked around.
    let plain = reqwest::Client::new()
        .post(format!("http://{}/fhir/notify", d.addr))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 404);
    // Probes stay on the plain listener.
    assert_eq!(d.api.get("/readyz").await.0, 200);
}

#[test]
fn check_config_names_every_missing_tls_file() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ips-bridge"))
        .args(["check-config"])
        .env("IPS__HTTP__WEBHOOK_TLS__LISTEN", "127.0.0.1:0")
        .env(
            "IPS__HTTP__WEBHOOK_TLS__CERT_FILE",
            "/nonexistent/server.pem",
        )
        .env(
            "IPS__STORE__PATIENT_KEY",
            "0123456789abcdef0123456789abcdef",
        )
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for key in [
        "http.webhook_tls.cert_file",
        "http.webhook_tls.key_file",
        "http.webhook_tls.client_ca_file",
        "http.webhook_secret",
    ] {
        assert!(text.contains(key), "{key} named in:\n{text}");
    }
}
