//! A local OpenID Connect provider process for the staff pages' tests:
//! `deploy/local/oidc-provider/server.mjs` (panva's `oidc-provider`, which enforces PKCE).
//!
//! One confidential client (`ips-bridge`, `client_secret_basic`, code + PKCE S256) that may
//! redirect to `/auth/callback` on any loopback port; users and their claims (`name`,
//! `email`, `roles` — all in the ID token) from the JSON given to [`OidcProvider::start`].
//! The sign-in form asks for the username on every authorization request.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};

/// An OIDC provider process of our own, killed on drop.
pub struct OidcProvider {
    /// e.g. `http://127.0.0.1:43123` (no trailing slash; discovery is under it).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl OidcProvider {
    /// Starts the provider on a free port with these users:
    /// `{"alice": {"name": "Alice Specialist", "email": "…", "roles": ["specialist"]}, …}`.
    pub fn start(users: &Value) -> OidcProvider {
        assert!(
            users.is_object(),
            "users must be a JSON object keyed by username (sub)"
        );
        let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/local/oidc-provider/server.mjs"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let users_path = dir.path().join("users.json");
        std::fs::write(&users_path, serde_json::to_vec_pretty(users).unwrap()).expect("users file");
        let log_path = dir.path().join("oidc-provider.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let (client_id, client_secret) = ("ips-bridge", "ips-bridge-local-secret");
        let mut cmd = Command::new(node);
        cmd.arg(script)
            .args([
                "--port",
                "0",
                "--client-id",
                client_id,
                "--client-secret",
                client_secret,
            ])
            .arg("--users")
            .arg(&users_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        // If the test process dies without running destructors, the provider dies too.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect(
            "start the OIDC provider (is node installed and `npm ci` done in \
             deploy/local/oidc-provider? tests/run.sh does both)",
        );
        // Read on a thread of its own, with a deadline: a provider that hangs
        // at start fails the test with its log instead of hanging the run.
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_default();
        if !line.starts_with("http://") {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the OIDC provider did not print its issuer URL within 30 s (got {line:?}); its log:\n{}\n\
                 (run `npm ci` in deploy/local/oidc-provider, or tests/run.sh)",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        OidcProvider {
            issuer: line.trim().to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            child,
            dir,
        }
    }

    /// The four users of `deploy/local/oidc-provider/users.example.json`:
    /// alice and bob (specialist), lena (team-lead), ada (admin).
    pub fn example_users() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/local/oidc-provider/users.example.json"
        );
        serde_json::from_slice(&std::fs::read(path).expect("users.example.json")).unwrap()
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// What the provider wrote to stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("oidc-provider.log")).unwrap_or_default()
    }

    /// Replaces the claims of user `sub` (creating the user if absent), e.g.
    /// `json!({"name": "Lena Lead", "roles": ["team-lead", "admin"]})`; the next sign-in's
    /// tokens carry them. A test-only hook (`PUT /_test/users/{sub}`), not OIDC.
    pub async fn set_user(&self, sub: &str, claims: &Value) {
        let r = reqwest::Client::new()
            .put(format!("{}/_test/users/{}", self.issuer, urlencode(sub)))
            .json(claims)
            .send()
            .await
            .expect("PUT /_test/users");
        assert!(r.status().is_success(), "set_user {sub}: {}", r.status());
    }

    /// An authorization request URL for our client (code flow, PKCE S256, scopes
    /// `openid profile email roles`).
    pub fn authorize_url(&self, redirect_uri: &str, state: &str, code_challenge: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid profile email roles")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("nonce", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{}/auth?{query}", self.issuer)
    }

    /// Exchanges an authorization code at the token endpoint (client_secret_basic);
    /// returns the HTTP status and the JSON body (tokens, or `{"error": "invalid_grant"}`).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", code_verifier)
            .finish();
        let r = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token request");
        let status = r.status().as_u16();
        (status, r.json().await.expect("token response JSON"))
    }

    /// Signs `username` in without a browser: follows `authorize_url` (an authorization
    /// request to this provider, e.g. the `Location` of the daemon's `/auth/sign-in`),
    /// posts the sign-in form, and returns the URL the provider finally redirects to
    /// (the client's redirect URI with `code` and `state`), without following it.
    /// Cookies are kept by hand, for this provider only.
    pub async fn authorize_without_browser(&self, authorize_url: &str, username: &str) -> String {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut cookies: Vec<(String, String)> = vec![];
        let mut url = authorize_url.to_owned();
        let mut form: Option<String> = None;
        let mut posted = false;
        for _ in 0..20 {
            let cookie = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let req = match form.take() {
                Some(body) => http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body),
                None => http.get(&url),
            };
            let r = req
                .header("cookie", cookie)
                .send()
                .await
                .expect("provider request");
            for c in r.headers().get_all("set-cookie") {
                let pair = c.to_str().unwrap_or("").split(';').next().unwrap_or("");
                if let Some((k, v)) = pair.split_once('=') {
                    cookies.retain(|(name, _)| name != k.trim());
                    cookies.push((k.trim().to_owned(), v.trim().to_owned()));
                }
            }
            let status = r.status();
            if status.is_redirection() {
                let location = r.headers()["location"].to_str().unwrap().to_owned();
                let next = url::Url::parse(&url)
                    .unwrap()
                    .join(&location)
                    .unwrap()
                    .to_string();
                if !next.starts_with(&self.issuer) {
                    return next;
                }
                url = next;
                continue;
            }
            let html = r.text().await.unwrap_or_default();
            let action = html
                .split("<form method=\"post\" action=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next());
            match action {
                Some(action) if !posted && html.contains("id=\"sign-in\"") => {
                    url = url::Url::parse(&url)
                        .unwrap()
                        .join(action)
                        .unwrap()
                        .to_string();
                    form = Some(
                        url::form_urlencoded::Serializer::new(String::new())
                            .append_pair("login", username)
                            .finish(),
                    );
                    posted = true;
                }
                _ => panic!(
                    "sign-in of {username:?} without a browser stopped at {url} ({status}):\n{html}"
                ),
            }
        }
        panic!("sign-in of {username:?} without a browser: too many redirects");
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PKCE pair: (code_verifier, S256 code_challenge).
pub fn pkce_pair() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The claims of a JWT (no signature check: for asserting what a token carries).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
        .expect("JSON claims")
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
