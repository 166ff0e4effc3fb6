//! The MESH sandbox as a child process, and a small MESH client of the tests'
//! own that plays the GP practice.
//!
//! The sandbox is NHS England's `mesh-sandbox` (PyPI, pinned in
//! `deploy/local/mesh-sandbox/requirements.txt`, installed into
//! `deploy/local/.mesh-venv` by `tests/run.sh`), run as
//! `STORE_MODE=memory AUTH_MODE=full uvicorn mesh_sandbox.api:app`: the memory store is
//! the only one that keeps what is sent (the default `canned` store answers 202 and
//! drops the message), and `full` is the only auth mode that checks the NHSMESH HMAC.
//! Each test gets its own process on a free port, so tests never see each other's
//! messages, and its own log file, whose uvicorn access lines let a test count the
//! requests the bridge made (a resend after a crash shows up as a second
//! `POST …/outbox`).
//!
//! The client here is written from the sandbox's behaviour, not with the bridge's
//! MESH code: a test that used the bridge's client to read what the bridge's client
//! sent would pass however both were wrong in the same way.
#![allow(dead_code)]

mod admin;
mod auth;
mod process;
mod tls;
#[allow(unused_imports)] // auth_header_with: only the probe test uses it
pub use auth::{auth_header, auth_header_with};
use process::gunzip;
pub use tls::SandboxTls;

use hmac::{Hmac, Mac};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The HMAC key the sandbox is started with (`SHARED_KEY`). The sandbox's own default
/// is `Banana`; `deploy/local/services.sh` and these tests use this one.
pub const DEFAULT_SHARED_KEY: &str = "TestKey";
/// `Accept` for the v2 JSON shapes (`message_id`, `messages` + `links`, …). Without
/// it the sandbox answers in v1 (`messageID`, …).
pub const V2_JSON: &str = "application/vnd.mesh.v2+json";

/// A mailbox and its password. The sandbox knows X26ABC1 (ODS X26), X26ABC2 (ODS X26)
/// and X26ABC3 (ODS X27), all with password `password`; any other id is 403.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub id: &'static str,
    pub password: &'static str,
}

pub const X26ABC1: Mailbox = Mailbox {
    id: "X26ABC1",
    password: "password",
};
pub const X26ABC2: Mailbox = Mailbox {
    id: "X26ABC2",
    password: "password",
};
pub const X26ABC3: Mailbox = Mailbox {
    id: "X26ABC3",
    password: "password",
};

impl Mailbox {
    /// The same mailbox with another password (a wrong one gives 403).
    pub const fn with_password(self, password: &'static str) -> Mailbox {
        Mailbox {
            id: self.id,
            password,
        }
    }
}

/// One response, whole. Header names are lower case (`mex-localid`).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON (`Null` when it is not JSON, e.g. an empty v2 200).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One line of uvicorn's access log: `… - "POST /messageexchange/X26ABC1/outbox HTTP/1.1" 202 Accepted`.
/// `path` includes the query string. The harness's own requests are logged too, so
/// filter by the bridge's mailbox in the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine {
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// A `mesh-sandbox` process of this test's own, killed (SIGKILL) on drop.
pub struct MeshSandbox {
    /// `http://127.0.0.1:PORT`; MESH paths are under `{url}/messageexchange/`.
    pub url: String,
    pub shared_key: String,
    log: PathBuf,
    child: Child,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl MeshSandbox {
    /// Starts a sandbox with [`DEFAULT_SHARED_KEY`] and waits until it answers.
    pub async fn start() -> MeshSandbox {
        Self::start_with_key(DEFAULT_SHARED_KEY).await
    }

    pub async fn start_with_key(shared_key: &str) -> MeshSandbox {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            // The sandbox closes the connection after a 500 (a gzip chunk it cannot
            // decompress); a fresh connection a request keeps that from failing the next one.
            .pool_max_idle_per_host(0)
            .build()
            .expect("HTTP client");
        Self::launch(shared_key, http, None).await
    }

    /// A request to `{url}{path}` with exactly these headers (no auth added).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                HeaderValue::from_str(v).expect("header value"),
            );
        }
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.url, path))
            .headers(map);
        if let Some(b) = body {
            req = req.body(b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path} to the MESH sandbox: {e}"));
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// `{url}/messageexchange/{mb.id}{rest}` as `mb` (fresh NHSMESH header,
    /// `Accept: application/vnd.mesh.v2+json`); `headers` add to or replace those.
    pub async fn request(
        &self,
        method: Method,
        mb: Mailbox,
        rest: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let auth = auth_header(mb.id, mb.password, &self.shared_key);
        let mut all: Vec<(&str, &str)> =
            vec![("authorization", auth.as_str()), ("accept", V2_JSON)];
        for &(k, v) in headers {
            all.retain(|(d, _)| !d.eq_ignore_ascii_case(k));
            all.push((k, v));
        }
        self.raw(
            method,
            &format!("/messageexchange/{}{}", mb.id, rest),
            &all,
            body,
        )
        .await
    }

    // --- the MESH API, as a GP practice's client uses it ---

    /// `POST /messageexchange/{mb}` with the three `mex-` headers the sandbox requires.
    /// 200 with an empty body in v2 (`{"mailboxId"}` in v1); 403 for a wrong password.
    pub async fn handshake(&self, mb: Mailbox) -> Resp {
        self.request(
            Method::POST,
            mb,
            "",
            &[
                ("mex-ClientVersion", "ips-bridge-tests==1"),
                ("mex-OSName", "Linux"),
                ("mex-OSVersion", "tests"),
            ],
            None,
        )
        .await
    }

    /// Message ids waiting in `mb`'s inbox (accepted, not yet acknowledged), oldest
    /// first; follows `links.next`.
    pub async fn inbox(&self, mb: Mailbox) -> Vec<String> {
        let mut out = vec![];
        let mut path = "/inbox".to_owned();
        loop {
            let r = self.request(Method::GET, mb, &path, &[], None).await;
            assert_eq!(r.status, 200, "inbox of {}: {}", mb.id, r.text());
            let v = r.json();
            out.extend(
                v["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str().map(str::to_owned)),
            );
            match v["links"]["next"].as_str() {
                Some(next) => {
                    let prefix = format!("/messageexchange/{}", mb.id);
                    path = next.strip_prefix(&prefix).unwrap_or(next).to_owned();
                }
                None => return out,
            }
        }
    }

    /// Polls `mb`'s inbox until it holds at least `n` messages (the bridge sends in
    /// the background); panics after `timeout`.
    pub async fn wait_for_inbox(&self, mb: Mailbox, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ids = self.inbox(mb).await;
            if ids.len() >= n {
                return ids;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {n} message(s) in {}'s inbox (has {})",
                mb.id,
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Downloads a whole message: chunk 1 (`GET inbox/{id}`), then `inbox/{id}/{n}` up
    /// to `mex-Total-Chunks`, concatenated. Returns chunk 1's headers (lower-case names:
    /// `mex-localid`, `mex-from`, `mex-workflowid`, `mex-messagetype` DATA/REPORT,
    /// `mex-chunk-range` `1:N`, `mex-linkedmsgid` on reports, …) and the bytes as the
    /// sender meant them.
    ///
    /// Gzip: when the sender uploaded with `Content-Encoding: gzip`, the sandbox
    /// stores the bytes as sent and un-gzips each chunk on its own for a client that
    /// does not accept gzip — which fails (500) when one gzip stream was split into
    /// chunks, as MESH clients do. So a HEAD first: for a gzip message the chunks are
    /// fetched raw with `Accept-Encoding: gzip`, joined, and un-gzipped here (by the
    /// sandbox's own Python: no gzip crate in Cargo.toml); the returned headers then
    /// keep `content-encoding: gzip`, telling the test the sender compressed. Other
    /// messages are fetched with `Accept-Encoding: identity`, as the sandbox would
    /// otherwise gzip a v2 download itself.
    pub async fn download(&self, mb: Mailbox, id: &str) -> (BTreeMap<String, String>, Vec<u8>) {
        let head = self
            .request(Method::HEAD, mb, &format!("/inbox/{id}"), &[], None)
            .await;
        assert_eq!(head.status, 200, "HEAD inbox/{id} as {}", mb.id);
        let gzipped = head.header("content-encoding") == Some("gzip");
        let accept = [("accept-encoding", if gzipped { "gzip" } else { "identity" })];
        let first = self
            .request(Method::GET, mb, &format!("/inbox/{id}"), &accept, None)
            .await;
        assert!(
            first.status == 200 || first.status == 206,
            "download {id} as {}: {} {}",
            mb.id,
            first.status,
            first.text()
        );
        let total: usize = first
            .header("mex-total-chunks")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1);
        let mut body = first.body.clone();
        for n in 2..=total {
            let r = self
                .request(Method::GET, mb, &format!("/inbox/{id}/{n}"), &accept, None)
                .await;
            assert!(
                r.status == 200 || r.status == 206,
                "download {id} chunk {n}/{total} as {}: {} {}",
                mb.id,
                r.status,
                r.text()
            );
            body.extend_from_slice(&r.body);
        }
        if first.header("content-encoding") == Some("gzip") {
            body = gunzip(&body).await;
        }
        (first.headers, body)
    }

    /// `PUT inbox/{id}/status/acknowledged`: the message leaves the inbox list (it can
    /// still be downloaded) and the sender's tracking says `Acknowledged`.
    pub async fn acknowledge(&self, mb: Mailbox, id: &str) {
        let r = self
            .request(
                Method::PUT,
                mb,
                &format!("/inbox/{id}/status/acknowledged"),
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "acknowledge {id} as {}: {}", mb.id, r.text());
    }

    /// `POST outbox` from `from` to `to`; `extra_headers` e.g. `("mex-LocalID", …)`,
    /// `("mex-FileName", …)`, `("mex-Subject", …)`, `("Content-Type", …)`.
    pub async fn try_send(
        &self,
        from: Mailbox,
        to: &str,
        workflow_id: &str,
        body: &[u8],
        extra_headers: &[(&str, &str)],
    ) -> Resp {
        let mut h = vec![("mex-To", to), ("mex-WorkflowID", workflow_id)];
        h.extend_from_slice(extra_headers);
        self.request(Method::POST, from, "/outbox", &h, Some(body.to_vec()))
            .await
    }

    /// As [`MeshSandbox::try_send`], asserting 202; returns the new `message_id`.
    pub async fn send(
        &self,
        from: Mailbox,
        to: Mailbox,
        workflow_id: &str,
        body: &[u8],
        extra_headers: &[(&str, &str)],
    ) -> String {
        let r = self
            .try_send(from, to.id, workflow_id, body, extra_headers)
            .await;
        assert_eq!(r.status, 202, "send {} -> {}: {}", from.id, to.id, r.text());
        r.json()["message_id"]
            .as_str()
            .expect("message_id in the send response")
            .to_owned()
    }

    /// Sends `chunks` as one chunked message: `POST outbox` with
    /// `mex-Chunk-Range: 1:N` and chunk 1, then `POST outbox/{id}/{n}` for the rest.
    pub async fn send_chunked(
        &self,
        from: Mailbox,
        to: Mailbox,
        workflow_id: &str,
        chunks: &[&[u8]],
        extra_headers: &[(&str, &str)],
    ) -> String {
        let total = chunks.len();
        assert!(total >= 1, "at least one chunk");
        let range = format!("1:{total}");
        let mut h = vec![("mex-Chunk-Range", range.as_str())];
        h.extend_from_slice(extra_headers);
        let id = self.send(from, to, workflow_id, chunks[0], &h).await;
        let encoding: Vec<(&str, &str)> = extra_headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-encoding"))
            .copied()
            .collect();
        for (i, chunk) in chunks.iter().enumerate().skip(1) {
            let s = self
                .upload_chunk(from, &id, i + 1, total, chunk, &encoding)
                .await;
            assert_eq!(s, 202, "chunk {}/{total} of {id}", i + 1);
        }
        id
    }

    /// `POST outbox/{id}/{n}` with `mex-Chunk-Range: n:total`; returns the status:
    /// 202; 417 for a range that is not `n:total` with 1 <= n <= total, or a
    /// `Content-Encoding` other than the first POST's; 403 not the sender; 404 unknown
    /// id; 423 the message is no longer uploading (its last chunk came already); 406
    /// n beyond the message's chunk count. Uploading the last chunk completes the
    /// message even if a middle one never came (that chunk's download is then 404).
    pub async fn upload_chunk(
        &self,
        from: Mailbox,
        id: &str,
        n: usize,
        total: usize,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> u16 {
        let range = format!("{n}:{total}");
        let mut h = vec![("mex-Chunk-Range", range.as_str())];
        h.extend_from_slice(headers);
        self.request(
            Method::POST,
            from,
            &format!("/outbox/{id}/{n}"),
            &h,
            Some(body.to_vec()),
        )
        .await
        .status
    }

    /// `GET outbox/tracking/{local_id}` as the sender: 200 with the v1 tracking object
    /// (`messageId`, `localId`, `status` `Uploading`/`Accepted`/`Acknowledged`/`Error`,
    /// `statusSuccess`, `downloadTimestamp`, `chunkCount`, `fileSize`, …), 404 when no
    /// message has that local id, 300 when several have.
    pub async fn tracking(&self, mb: Mailbox, local_id: &str) -> (u16, Value) {
        let r = self
            .request(
                Method::GET,
                mb,
                &format!("/outbox/tracking/{local_id}"),
                &[],
                None,
            )
            .await;
        (r.status, r.json())
    }

    /// `GET outbox/tracking?messageID={id}` as the sender (v2 object: `message_id`,
    /// `local_id`, `status` lower case, `status_success` bool, …); 404 when unknown
    /// or not the sender's.
    pub async fn tracking_by_id(&self, mb: Mailbox, message_id: &str) -> (u16, Value) {
        let r = self
            .request(
                Method::GET,
                mb,
                &format!("/outbox/tracking?messageID={message_id}"),
                &[],
                None,
            )
            .await;
        (r.status, r.json())
    }

    /// `GET /messageexchange/endpointlookup/{ods}/{workflow}` (no auth), v2:
    /// `{"results": [{"mailbox_id", "mailbox_name"}]}`.
    pub async fn endpoint_lookup(&self, ods: &str, workflow_id: &str) -> Value {
        self.raw(
            Method::GET,
            &format!("/messageexchange/endpointlookup/{ods}/{workflow_id}"),
            &[("accept", V2_JSON)],
            None,
        )
        .await
        .json()
    }
}
