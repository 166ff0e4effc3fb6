//! The MESH API client (v2 JSON shapes): handshake, send (chunked over
//! `mesh.chunk_bytes`), tracking by local id, inbox list, download and
//! acknowledge.
//!
//! No request here is retried by the client itself: sends are made safe to
//! repeat by the sink (tracking first), and the outbox owns retry timing, so
//! a refusal is never turned into a storm of identical requests.

use super::auth;
use super::error::MeshError;
use crate::config::{ExposeSecret, MeshSettings, Secret};
use crate::engine::outbox::MeshSend;
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

const ACCEPT_V2: &str = "application/vnd.mesh.v2+json";

pub struct MeshClient {
    http: reqwest::Client,
    base: String,
    mailbox: String,
    password: Secret,
    shared_key: Secret,
    chunk_bytes: u64,
    max_bytes: u64,
    /// A client certificate is configured: a connection MESH drops may be
    /// its refusal of the certificate, which TLS does not name.
    cert_hint: bool,
}

/// What the tracking endpoint knows of a message the bridge sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub message_id: String,
    /// MESH's status word (`accepted`, `acknowledged`, `undeliverable`…), lower case.
    pub status: Option<String>,
}

/// A message downloaded from the bridge's inbox.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub message_id: String,
    /// Response headers, names in lower case (`mex-messagetype`, `mex-localid`…).
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

impl MeshClient {
    pub fn new(s: &MeshSettings) -> Result<Self, MeshError> {
        let mut b = reqwest::Client::builder()
            .timeout(s.timeout)
            .connect_timeout(s.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("ips-bridge/", env!("CARGO_PKG_VERSION")));
        let with_identity = !s.client_cert_file.is_empty();
        if with_identity {
            let mut pem = read(&s.client_cert_file, "mesh.client_cert_file")?;
            // A certificate file without a final newline would run into
            // the key's BEGIN line, and the key would not be found.
            pem.push(b'\n');
            pem.extend(read(&s.client_key_file, "mesh.client_key_file")?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                MeshError::Config(format!(
                    "mesh.client_cert_file / mesh.client_key_file: {}",
                    transport(&e)
                ))
            })?;
            b = b.identity(id);
        }
        if !s.ca_cert_file.is_empty() {
            let pem = read(&s.ca_cert_file, "mesh.ca_cert_file")?;
            let ca = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| MeshError::Config(format!("mesh.ca_cert_file: {}", transport(&e))))?;
            b = b.add_root_certificate(ca);
        }
        let http = b.build().map_err(|e| {
            let setting = if with_identity {
                "mesh.client_cert_file / mesh.client_key_file (does the key match the certificate?)"
            } else {
                "[mesh]"
            };
            MeshError::Config(format!("{setting}: {}", transport(&e)))
        })?;
        let cert_hint = with_identity;
        Ok(MeshClient {
            http,
            base: s.url.trim_end_matches('/').to_owned(),
            mailbox: s.mailbox.clone(),
            password: s.password.clone(),
            shared_key: s.shared_key.clone(),
            chunk_bytes: s.chunk_bytes.max(1),
            max_bytes: s.max_message_bytes,
            cert_hint,
        })
    }

    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let nonce = uuid::Uuid::new_v4().to_string();
        let auth = auth::header(
            &self.mailbox,
            self.password.expose_secret(),
            self.shared_key.expose_secret(),
            &nonce,
            time::OffsetDateTime::now_utc(),
        );
        self.http
            .request(
                method,
                format!("{}/messageexchange/{}{path}", self.base, self.mailbox),
            )
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, ACCEPT_V2)
    }

    async fn call(&self, op: &'static str, req: RequestBuilder) -> Result<Response, MeshError> {
        let started = std::time::Instant::now();
        let res = req.send().await;
        let outcome = match &res {
            Ok(r) => r.status().as_str().to_owned(),
            Err(_) => "transport".to_owned(),
        };
        metrics::counter!("ips_mesh_requests_total", "op" => op, "status" => outcome).increment(1);
        metrics::histogram!("ips_mesh_request_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        res.map_err(|e| {
            let mut msg = transport(&e);
            if self.cert_hint && (e.is_connect() || msg.contains("close_notify")) {
                msg.push_str(" (if MESH refused the client certificate: check mesh.client_cert_file and mesh.ca_cert_file)");
            }
            MeshError::Transport(msg)
        })
    }

    /// Sorts a non-success response into a [`MeshError`].
    async fn refused(res: Response) -> MeshError {
        let status = res.status();
        let retry_after = res
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body: Value = res.json().await.unwrap_or(Value::Null);
        // v2: {"detail": [{"event", "code", "msg"}]}; v1: {"errorCode", …}.
        let code = body
            .pointer("/detail/0/code")
            .or_else(|| body.get("errorCode"))
            .or_else(|| body.get("error_code"))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .filter(|c| !c.is_empty());
        MeshError::from_status(status, code, retry_after)
    }

    /// `POST /messageexchange/{mailbox}`: proves the credentials and tells
    /// MESH who the client is.
    pub async fn handshake(&self) -> Result<(), MeshError> {
        let req = self
            .request(Method::POST, "")
            .header(
                "mex-ClientVersion",
                concat!("ips-bridge/", env!("CARGO_PKG_VERSION")),
            )
            .header("mex-OSName", std::env::consts::OS)
            .header("mex-OSVersion", std::env::consts::ARCH);
        let res = self.call("handshake", req).await?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(Self::refused(res).await)
        }
    }

    /// What MESH knows of a message sent with `local_id`; `None`: never sent.
    pub async fn track(&self, local_id: &str) -> Result<Option<Tracked>, MeshError> {
        // Local ids are the bridge's own (letters, digits and dashes).
        let path = format!("/outbox/tracking/{local_id}");
        let res = self.call("track", self.request(Method::GET, &path)).await?;
        match res.status() {
            StatusCode::NOT_FOUND => Ok(None),
            // 300: more than one message has this local id. They were
            // ours; sending yet another would only add to them.
            StatusCode::MULTIPLE_CHOICES => Ok(Some(Tracked {
                message_id: "(several)".into(),
                status: Some("multiple".into()),
            })),
            s if s.is_success() => {
                let body: Value = res
                    .json()
                    .await
                    .map_err(|e| MeshError::Protocol(format!("tracking body: {e}")))?;
                let first = match &body {
                    Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
                    v => v.clone(),
                };
                let message_id = ["message_id", "messageID", "messageId"]
                    .iter()
                    .find_map(|k| first.get(*k).and_then(Value::as_str))
                    .ok_or_else(|| MeshError::Protocol("tracking names no message id".into()))?;
                let status = ["status", "statusDescription"]
                    .iter()
                    .find_map(|k| first.get(*k).and_then(Value::as_str))
                    .map(str::to_ascii_lowercase);
                Ok(Some(Tracked {
                    message_id: message_id.to_owned(),
                    status,
                }))
            }
            _ => Err(Self::refused(res).await),
        }
    }

    /// Refuses a message over `mesh.max_message_bytes` before any request.
    pub fn check_size(&self, bytes: u64) -> Result<(), MeshError> {
        if bytes > self.max_bytes {
            return Err(MeshError::TooLarge {
                bytes,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Sends `m`; returns MESH's message id. Over `chunk_bytes` it goes in
    /// chunks (`mex-Chunk-Range`); over `max_message_bytes` it is not sent.
    pub async fn send(&self, m: &MeshSend) -> Result<String, MeshError> {
        let bytes = m.content.as_bytes();
        let len = bytes.len() as u64;
        self.check_size(len)?;
        let chunks: Vec<&[u8]> = bytes
            .chunks(usize::try_from(self.chunk_bytes).unwrap_or(usize::MAX))
            .collect();
        let total = chunks.len().max(1);
        let first = chunks.first().copied().unwrap_or_default();
        let mut req = self
            .request(Method::POST, "/outbox")
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header("mex-To", &m.to)
            .header("mex-WorkflowID", &m.workflow_id)
            .header("mex-LocalID", &m.local_id)
            .header("mex-Subject", &m.subject)
            .header("mex-FileName", &m.filename)
            .header(
                "mex-Content-Checksum",
                format!("SHA256:{}", hex::encode(Sha256::digest(bytes))),
            )
            .body(first.to_vec());
        if let Some(ct) = &m.content_type {
            req = req.header("mex-Content-Type", ct);
        }
        if total > 1 {
            req = req.header("mex-Chunk-Range", format!("1:{total}"));
        }
        let res = self.call("send", req).await?;
        if !res.status().is_success() {
            return Err(match Self::refused(res).await {
                MeshError::TooLarge { .. } => MeshError::TooLarge {
                    bytes: len,
                    limit: self.max_bytes,
                },
                e => e,
            });
        }
        let body: Value = res
            .json()
            .await
            .map_err(|e| MeshError::Protocol(format!("send reply: {e}")))?;
        let message_id = ["message_id", "messageID"]
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_str))
            .ok_or_else(|| MeshError::Protocol("the send reply names no message id".into()))?
            .to_owned();
        self.send_chunks(&message_id, &chunks, 2).await?;
        Ok(message_id)
    }

    /// Finishes a chunked message whose first request went through before
    /// a crash: uploads chunks 2..=N again (MESH overwrites a chunk sent
    /// twice, and the last one completes the message).
    pub async fn resume(&self, m: &MeshSend, message_id: &str) -> Result<(), MeshError> {
        let chunks: Vec<&[u8]> = m
            .content
            .as_bytes()
            .chunks(usize::try_from(self.chunk_bytes).unwrap_or(usize::MAX))
            .collect();
        self.send_chunks(message_id, &chunks, 2).await
    }

    /// Uploads chunks `from..=N` of a chunked message already started.
    pub async fn send_chunks(
        &self,
        message_id: &str,
        chunks: &[&[u8]],
        from: usize,
    ) -> Result<(), MeshError> {
        let total = chunks.len();
        for n in from..=total {
            let req = self
                .request(Method::POST, &format!("/outbox/{message_id}/{n}"))
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header("mex-Chunk-Range", format!("{n}:{total}"))
                .body(chunks[n - 1].to_vec());
            let res = self.call("send-chunk", req).await?;
            if !res.status().is_success() {
                return Err(Self::refused(res).await);
            }
        }
        Ok(())
    }

    /// The ids of messages waiting in the bridge's inbox (MESH lists up to 500).
    pub async fn inbox(&self) -> Result<Vec<String>, MeshError> {
        let res = self
            .call("inbox", self.request(Method::GET, "/inbox"))
            .await?;
        if !res.status().is_success() {
            return Err(Self::refused(res).await);
        }
        let body: Value = res
            .json()
            .await
            .map_err(|e| MeshError::Protocol(format!("inbox list: {e}")))?;
        let list = body.get("messages").unwrap_or(&body);
        Ok(list
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Downloads a message, every chunk of it.
    pub async fn download(&self, message_id: &str) -> Result<Incoming, MeshError> {
        let res = self
            .call(
                "download",
                self.request(Method::GET, &format!("/inbox/{message_id}")),
            )
            .await?;
        if !res.status().is_success() {
            return Err(Self::refused(res).await);
        }
        let headers: BTreeMap<String, String> = res
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned()))
            })
            .collect();
        let mut body = res
            .bytes()
            .await
            .map_err(|e| MeshError::Transport(transport(&e)))?
            .to_vec();
        let total = headers
            .get("mex-chunk-range")
            .and_then(|r| r.split_once(':'))
            .and_then(|(_, n)| n.trim().parse::<usize>().ok())
            .unwrap_or(1);
        for n in 2..=total {
            let res = self
                .call(
                    "download-chunk",
                    self.request(Method::GET, &format!("/inbox/{message_id}/{n}")),
                )
                .await?;
            if !res.status().is_success() {
                return Err(Self::refused(res).await);
            }
            body.extend_from_slice(
                &res.bytes()
                    .await
                    .map_err(|e| MeshError::Transport(transport(&e)))?,
            );
        }
        Ok(Incoming {
            message_id: message_id.to_owned(),
            headers,
            body,
        })
    }

    /// Tells MESH the message was taken: it leaves the inbox.
    pub async fn acknowledge(&self, message_id: &str) -> Result<(), MeshError> {
        let path = format!("/inbox/{message_id}/status/acknowledged");
        let res = self
            .call("acknowledge", self.request(Method::PUT, &path))
            .await?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(Self::refused(res).await)
        }
    }
}

fn read(path: &str, key: &str) -> Result<Vec<u8>, MeshError> {
    std::fs::read(path).map_err(|e| MeshError::Config(format!("{key}: cannot read {path}: {e}")))
}

/// The error and its causes (the URL names only the mailbox and message ids).
fn transport(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}
