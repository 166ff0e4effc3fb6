//! `private-key-jwt` FHIR authentication end to end: the real `FhirClient`
//! against `deploy/local/oidc-provider/token-endpoint.mjs`, a local token
//! endpoint that checks each client assertion with panva's `jose` (signature
//! against the public JWKS, alg, kid, iss/sub/aud, exp - iat ≤ 300 s, jti
//! replay) and guards a tiny FHIR resource with the tokens it issued.
//!
//! Keys are made per test with `openssl`; the JWKS is made from the public
//! keys by the endpoint's own `--print-jwks`, as an operator would make the
//! JWKS to register with an authorisation server.

use ips_bridge::config::Settings;
use ips_bridge::fhir::{FhirClient, FhirError};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CLIENT_ID: &str = "ips-bridge-test";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/local/oidc-provider/token-endpoint.mjs"
);

fn node() -> String {
    std::env::var("NODE").unwrap_or_else(|_| "node".into())
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A key pair in PEM files: the private key (PKCS#8) and its public key (SPKI).
struct KeyPair {
    private: PathBuf,
    public: PathBuf,
}

fn rsa_key(dir: &Path, name: &str) -> KeyPair {
    let private = dir.join(format!("{name}.pem"));
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private));
    public_of(dir, name, private)
}

fn ec_p384_key(dir: &Path, name: &str) -> KeyPair {
    let sec1 = dir.join(format!("{name}.sec1.pem"));
    let private = dir.join(format!("{name}.pem"));
    run(Command::new("openssl")
        .args(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out"])
        .arg(&sec1));
    run(Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-in"])
        .arg(&sec1)
        .arg("-out")
        .arg(&private));
    public_of(dir, name, private)
}

fn public_of(dir: &Path, name: &str, private: PathBuf) -> KeyPair {
    let public = dir.join(format!("{name}.pub.pem"));
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    KeyPair { private, public }
}

/// The token endpoint process, killed on drop.
struct TokenEndpoint {
    base: String,
    child: Child,
    log: PathBuf,
    http: reqwest::Client,
}

impl TokenEndpoint {
    /// Builds the JWKS of `keys` (kid, alg, public key) with `--print-jwks`,
    /// then starts the endpoint on a free port with that JWKS.
    fn start(dir: &Path, keys: &[(&str, &str, &KeyPair)], expires_in: u64) -> TokenEndpoint {
        let mut print = Command::new(node());
        print.arg(SCRIPT).arg("--print-jwks");
        for (kid, alg, pair) in keys {
            print
                .arg("--key")
                .arg(format!("{kid}={alg}:{}", pair.public.display()));
        }
        let jwks = run(&mut print).stdout;
        let parsed: Value = serde_json::from_slice(&jwks).expect("JWKS JSON");
        for k in parsed["keys"].as_array().expect("keys") {
            assert!(k.get("d").is_none(), "the JWKS must hold public keys only");
        }
        let jwks_path = dir.join("jwks.json");
        std::fs::write(&jwks_path, &jwks).expect("write JWKS");

        let log = dir.join("token-endpoint.log");
        let mut cmd = Command::new(node());
        cmd.arg(SCRIPT)
            .args(["--port", "0", "--client-id", CLIENT_ID, "--expires-in"])
            .arg(expires_in.to_string())
            .arg("--jwks")
            .arg(&jwks_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        // If the test process dies without running destructors, the endpoint dies too.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .expect("start the token endpoint (node, and `npm ci` in deploy/local/oidc-provider)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("base URL line");
        if !line.starts_with("http://") {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the token endpoint did not print its URL (got {line:?}); its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        TokenEndpoint {
            base: line.trim().to_owned(),
            child,
            log,
            http: reqwest::Client::new(),
        }
    }

    async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/stats", self.base))
            .send()
            .await
            .expect("GET /stats")
            .json()
            .await
            .expect("stats JSON")
    }

    async fn revoke_all(&self) {
        let r = self
            .http
            .post(format!("{}/_test/revoke", self.base))
            .send()
            .await
            .expect("revoke");
        assert!(r.status().is_success());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bridge's settings as an operator would write them (through
/// `Settings::load_from`, so `check()` runs), pointing at the endpoint.
fn settings(
    ep: &TokenEndpoint,
    key: &Path,
    alg: &str,
    kid: &str,
    extra: &[(&str, &str)],
) -> Settings {
    let mut env: Vec<(String, String)> = vec![
        ("IPS__FHIR__BASE_URL".into(), format!("{}/fhir", ep.base)),
        ("IPS__FHIR__MAX_ATTEMPTS".into(), "1".into()),
        ("IPS__FHIR__AUTH__KIND".into(), "private-key-jwt".into()),
        (
            "IPS__FHIR__AUTH__TOKEN_URL".into(),
            format!("{}/token", ep.base),
        ),
        ("IPS__FHIR__AUTH__CLIENT_ID".into(), CLIENT_ID.into()),
        ("IPS__FHIR__AUTH__SCOPE".into(), "system/*.read".into()),
        (
            "IPS__FHIR__AUTH__KEY_FILE".into(),
            key.display().to_string(),
        ),
        ("IPS__FHIR__AUTH__ALGORITHM".into(), alg.into()),
        ("IPS__FHIR__AUTH__KID".into(), kid.into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load_from(None, env).unwrap_or_else(|e| panic!("settings invalid: {e}"))
}

/// `GET {fhir}/Patient/{n}`: 200 only with a token the endpoint issued and still honours.
async fn read_patient(c: &FhirClient, n: u32) -> Result<(), FhirError> {
    let v = c.read(&format!("Patient/p{n}")).await?.expect("a resource");
    assert_eq!(v.body["resourceType"], "Patient");
    assert_eq!(v.body["id"], format!("p{n}"));
    Ok(())
}

fn count(stats: &Value, path: &str) -> u64 {
    stats.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

#[tokio::test]
async fn rs512_assertion_gets_a_token_that_reaches_the_protected_resource() {
    let dir = tempfile::tempdir().unwrap();
    let key = rsa_key(dir.path(), "rsa");
    let ep = TokenEndpoint::start(dir.path(), &[("rsa-1", "RS512", &key)], 300);
    let s = settings(&ep, &key.private, "RS512", "rsa-1", &[]);
    let c = FhirClient::new(&s.fhir).unwrap();

    read_patient(&c, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ep.log()));
    let meta = c.get("metadata").await.unwrap();
    assert_eq!(meta["resourceType"], "CapabilityStatement");

    let st = ep.stats().await;
    assert_eq!(count(&st, "/tokens_issued"), 1, "{st}");
    assert_eq!(count(&st, "/resource/ok"), 2, "{st}");
    assert_eq!(count(&st, "/resource/unauthorized"), 0, "{st}");
    assert_eq!(st["refusals"], serde_json::json!({}), "{st}");
    let a = &st["assertions"][0];
    assert_eq!(a["alg"], "RS512");
    assert_eq!(a["kid"], "rsa-1");
    let lifetime = a["exp"].as_u64().unwrap() - a["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 300, "the default assertion_lifetime is 5m");
    let jti = a["jti"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(jti).unwrap().get_version_num(), 4);
}

#[tokio::test]
async fn es384_assertion_gets_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let key = ec_p384_key(dir.path(), "ec");
    let ep = TokenEndpoint::start(dir.path(), &[("ec-1", "ES384", &key)], 300);
    let s = settings(
        &ep,
        &key.private,
        "ES384",
        "ec-1",
        &[("IPS__FHIR__AUTH__ASSERTION_LIFETIME", "2m")],
    );
    let c = FhirClient::new(&s.fhir).unwrap();

    read_patient(&c, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", ep.log()));

    let st = ep.stats().await;
    assert_eq!(count(&st, "/tokens_issued"), 1, "{st}");
    assert_eq!(count(&st, "/resource/ok"), 1, "{st}");
    let a = &st["assertions"][0];
    assert_eq!(a["alg"], "ES384");
    assert_eq!(a["kid"], "ec-1");
    assert_eq!(a["exp"].as_u64().unwrap() - a["iat"].as_u64().unwrap(), 120);
}

#[tokio::test]
async fn an_assertion_signed_with_an_unregistered_key_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let registered = rsa_key(dir.path(), "registered");
    let other = rsa_key(dir.path(), "other");
    let ep = TokenEndpoint::start(dir.path(), &[("rsa-1", "RS512", &registered)], 300);
    // The right kid, the wrong private key: only the signature can tell.
    let s = settings(&ep, &other.private, "RS512", "rsa-1", &[]);
    let c = FhirClient::new(&s.fhir).unwrap();

    let err = read_patient(&c, 1).await.expect_err("a refused assertion");
    assert!(matches!(err, FhirError::Auth(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("400") && msg.contains("invalid_client"),
        "{msg}"
    );
    assert!(
        !msg.contains("eyJ0eXAi") && !msg.contains("eyJhbGci"),
        "the error quotes a JWT: {msg}"
    );

    let st = ep.stats().await;
    assert_eq!(count(&st, "/refusals/signature"), 1, "{st}");
    assert_eq!(count(&st, "/tokens_issued"), 0, "{st}");
    assert_eq!(count(&st, "/resource/ok"), 0, "{st}");

    // An unknown kid is refused as well, before any signature check.
    let s = settings(&ep, &registered.private, "RS512", "rsa-unknown", &[]);
    let c = FhirClient::new(&s.fhir).unwrap();
    let err = read_patient(&c, 2).await.expect_err("an unknown kid");
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert_eq!(count(&ep.stats().await, "/refusals/unknown_kid"), 1);
}

#[tokio::test]
async fn tokens_are_cached_and_refreshed_before_expiry_with_a_fresh_jti_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let key = rsa_key(dir.path(), "rsa");
    // Tokens live 3 s; refreshed 2 s early, so each is used for about 1 s.
    let ep = TokenEndpoint::start(dir.path(), &[("rsa-1", "RS512", &key)], 3);
    let s = settings(
        &ep,
        &key.private,
        "RS512",
        "rsa-1",
        &[("IPS__FHIR__AUTH__REFRESH_BEFORE", "2s")],
    );
    let c = FhirClient::new(&s.fhir).unwrap();

    // Ten requests, five at a time: one token request between them.
    for round in 0..2 {
        let reads = (0..5).map(|i| read_patient(&c, round * 5 + i));
        for r in futures_util::future::join_all(reads).await {
            r.unwrap_or_else(|e| panic!("{e}\n{}", ep.log()));
        }
    }
    let st = ep.stats().await;
    assert_eq!(count(&st, "/tokens_issued"), 1, "{st}");
    assert_eq!(count(&st, "/resource/ok"), 10, "{st}");

    // Past expires_in - refresh_before but before expiry: a new token, not a 401.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    read_patient(&c, 11).await.unwrap();
    let st = ep.stats().await;
    assert_eq!(count(&st, "/tokens_issued"), 2, "{st}");
    assert_eq!(
        count(&st, "/resource/unauthorized"),
        0,
        "refreshed before expiry: {st}"
    );

    // A token the server stops honouring early: one 401, a new token, the request succeeds.
    ep.revoke_all().await;
    read_patient(&c, 12).await.unwrap();
    let st = ep.stats().await;
    assert_eq!(count(&st, "/tokens_issued"), 3, "{st}");
    assert_eq!(count(&st, "/resource/unauthorized"), 1, "{st}");

    // Every assertion had its own jti (and the endpoint refused no replay).
    let jtis: HashSet<&str> = st["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["jti"].as_str().unwrap())
        .collect();
    assert_eq!(jtis.len(), 3, "{st}");
    assert_eq!(st["refusals"], serde_json::json!({}), "{st}");
}

#[tokio::test]
async fn the_key_never_appears_in_debug_output_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key = rsa_key(dir.path(), "rsa");
    let other = rsa_key(dir.path(), "other");
    let ep = TokenEndpoint::start(dir.path(), &[("rsa-1", "RS512", &key)], 300);
    let pem = std::fs::read_to_string(&other.private).unwrap();
    // A line from the middle of the base64 body.
    let body_line = pem.lines().nth(5).unwrap().to_owned();
    assert!(body_line.len() >= 60, "{body_line}");

    let s = settings(&ep, &other.private, "RS512", "rsa-1", &[]);
    let c = FhirClient::new(&s.fhir).unwrap();
    let err = read_patient(&c, 1).await.expect_err("refused");

    let signing_key =
        ips_bridge::fhir::auth::SigningKey::from_pem(&pem, ips_bridge::config::JwtAlgorithm::RS512)
            .unwrap();
    for shown in [
        format!("{:?}", s.fhir.auth),
        format!("{:?}", s.fhir),
        s.redacted_toml(),
        format!("{err:?}"),
        err.to_string(),
        format!("{signing_key:?}"),
        format!(
            "{:?}",
            ips_bridge::fhir::auth::Auth::from_settings(&s.fhir.auth).unwrap()
        ),
    ] {
        assert!(!shown.contains(&body_line), "key material shown: {shown}");
        assert!(!shown.contains("PRIVATE KEY"), "key shown: {shown}");
        // A JWT's header, base64url of `{"typ":` or `{"alg":`.
        assert!(
            !shown.contains("eyJ0eXAi") && !shown.contains("eyJhbGci"),
            "an assertion shown: {shown}"
        );
    }
    assert!(format!("{signing_key:?}").contains("<redacted>"));
}

#[tokio::test]
async fn check_config_names_a_key_that_does_not_fit_the_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = rsa_key(dir.path(), "rsa");
    let ec = ec_p384_key(dir.path(), "ec");
    let ep = TokenEndpoint::start(dir.path(), &[("rsa-1", "RS512", &rsa)], 300);
    let sec1 = dir.path().join("ec.sec1.pem");

    for (key, alg, expected) in [
        (&rsa.private, "ES384", "suits algorithm RS512"),
        (&ec.private, "RS512", "suits algorithm ES384"),
        (&sec1, "ES384", "PKCS#8"),
        (&rsa.public, "RS512", "not the private key"),
    ] {
        let env = vec![
            (
                "IPS__FHIR__BASE_URL".to_string(),
                format!("{}/fhir", ep.base),
            ),
            ("IPS__FHIR__AUTH__KIND".into(), "private-key-jwt".into()),
            (
                "IPS__FHIR__AUTH__TOKEN_URL".into(),
                format!("{}/token", ep.base),
            ),
            ("IPS__FHIR__AUTH__CLIENT_ID".into(), CLIENT_ID.into()),
            (
                "IPS__FHIR__AUTH__KEY_FILE".into(),
                key.display().to_string(),
            ),
            ("IPS__FHIR__AUTH__ALGORITHM".into(), alg.into()),
            ("IPS__FHIR__AUTH__KID".into(), "k".into()),
        ];
        let errs = Settings::load_from(None, env).expect_err("a key for the other algorithm");
        let shown = errs.to_string();
        assert!(
            shown.contains("fhir.auth.key_file") && shown.contains(expected),
            "{key:?} with {alg}: {shown}"
        );
        assert!(!shown.contains("PRIVATE KEY-----"), "{shown}");
    }
}
