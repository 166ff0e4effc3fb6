//! FHIR R4 HTTP client.
//!
//! Reads return raw JSON (kept for pass-through) plus the version. Writes are
//! effectively-once: creates are conditional on a business identifier
//! (`If-None-Exist`), updates are conditional on the version read
//! (`If-Match`). Only such idempotent requests are retried, with exponential
//! backoff and jitter (`backon`), honouring `Retry-After` on 429/503. A
//! circuit breaker stops hammering a server that keeps failing.
//!
//! It relies on no one server's quirks: `Location` may or may not carry
//! `/_history/N` (or be absent after a matched conditional create), so the id
//! and version are read from the body first, then `Location`, then `ETag`.

use super::auth::Auth;
use super::breaker::Breaker;
use super::error::{FhirError, outcome_summary};
pub(super) use super::reply::meta_version;
use super::reply::{
    Reply, identifier_query, parse_location, parse_retry_after, same_origin, status_class,
    strip_etag,
};
use crate::config::FhirSettings;
use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode, header};
use serde_json::Value;
use std::time::{Duration, Instant};

const FHIR_JSON: &str = "application/fhir+json";

pub struct FhirClient {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    breaker: Breaker,
    backoff: ExponentialBuilder,
}

/// A response body with its version (from `ETag` or `meta.versionId`).
#[derive(Debug, Clone)]
pub struct Versioned {
    pub body: Value,
    pub version: Option<String>,
}

/// What a write produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Written {
    pub resource_type: String,
    pub id: String,
    pub version: Option<String>,
    /// `false` when a conditional create found the resource already there.
    pub created: bool,
}

impl FhirClient {
    pub fn new(s: &FhirSettings) -> Result<Self, FhirError> {
        let http = reqwest::Client::builder()
            .timeout(s.timeout)
            .connect_timeout(s.connect_timeout)
            .user_agent(concat!("ips-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FhirError::Transport(format!("cannot build HTTP client: {e}")))?;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(s.retry_min_delay)
            .with_max_delay(s.retry_max_delay)
            .with_max_times(s.max_attempts.saturating_sub(1) as usize)
            .with_jitter();
        Ok(FhirClient {
            http,
            base: s.base_url.trim_end_matches('/').to_owned(),
            auth: Auth::from_settings(&s.auth)?,
            breaker: Breaker::new(s.breaker_threshold, s.breaker_cooldown),
            backoff,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Reads `Type/id`; `Ok(None)` for 404 and 410.
    pub async fn read(&self, reference: &str) -> Result<Option<Versioned>, FhirError> {
        let url = format!("{}/{}", self.base, reference);
        match self.retrying(Method::GET, &url, None, &[]).await {
            Ok(r) => {
                let body = r.json();
                Ok(Some(Versioned {
                    version: r.etag.or_else(|| meta_version(&body)),
                    body,
                }))
            }
            Err(FhirError::Status {
                status: 404 | 410, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GETs an absolute URL (a `next` link) or a path relative to the base.
    /// Absolute URLs must be under the configured base: a server cannot send
    /// the bridge, and its credentials, elsewhere.
    pub async fn get(&self, url_or_path: &str) -> Result<Value, FhirError> {
        let url = if url_or_path.starts_with("http://") || url_or_path.starts_with("https://") {
            if !same_origin(url_or_path, &self.base) {
                return Err(FhirError::InvalidResponse(format!(
                    "link {url_or_path} leaves the configured FHIR server"
                )));
            }
            url_or_path.to_owned()
        } else {
            format!("{}/{}", self.base, url_or_path.trim_start_matches('/'))
        };
        Ok(self.retrying(Method::GET, &url, None, &[]).await?.json())
    }

    /// One quick, unretried request for `/readyz`. While the breaker is open
    /// it answers from the breaker without a request, so a readiness probe
    /// polled every few seconds adds nothing to an outage; its outcome counts
    /// like any other request's.
    pub async fn probe(&self) -> Result<(), FhirError> {
        self.breaker
            .check(Instant::now())
            .map_err(FhirError::CircuitOpen)?;
        let url = format!("{}/metadata", self.base);
        let result = match self
            .http
            .get(&url)
            .header(header::ACCEPT, FHIR_JSON)
            .timeout(Duration::from_secs(3))
            .send()
            .await
        {
            Err(e) => Err(FhirError::Transport(e.without_url().to_string())),
            Ok(resp) if resp.status().is_server_error() || resp.status() == 429 => {
                Err(FhirError::Status {
                    status: resp.status().as_u16(),
                    retry_after: resp
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after),
                    detail: "metadata".into(),
                })
            }
            Ok(_) => Ok(()),
        };
        self.record(&result);
        result
    }

    fn record<T>(&self, result: &Result<T, FhirError>) {
        let failure = result.as_ref().err();
        let ok = !failure.is_some_and(FhirError::counts_against_server);
        let retry_after = failure.and_then(|e| match e {
            FhirError::Status {
                status: 429 | 503,
                retry_after,
                ..
            } => *retry_after,
            _ => None,
        });
        let open = self.breaker.record(ok, retry_after, Instant::now());
        metrics::gauge!("ips_fhir_breaker_open").set(if open { 1.0 } else { 0.0 });
    }

    /// Creates `resource` unless one with `identifier` (`system|value`) exists.
    pub async fn create_conditional(
        &self,
        resource: &Value,
        system: &str,
        value: &str,
    ) -> Result<Written, FhirError> {
        let rt = resource_type(resource)?;
        self.create_conditional_raw(rt, json_body(resource)?, system, value)
            .await
    }

    /// [`create_conditional`](Self::create_conditional) of a resource of
    /// type `rt` already serialised (the outbox keeps creates as JSON text).
    pub async fn create_conditional_raw(
        &self,
        rt: &str,
        body: bytes::Bytes,
        system: &str,
        value: &str,
    ) -> Result<Written, FhirError> {
        let url = format!("{}/{}", self.base, rt);
        let condition = identifier_query(system, value);
        let reply = self
            .precondition(
                Method::POST,
                &url,
                body,
                ("If-None-Exist", condition.as_str()),
                || FhirError::MultipleMatches {
                    resource_type: rt.to_owned(),
                    identifier: format!("{system}|{value}"),
                },
            )
            .await?;
        let created = reply.status == StatusCode::CREATED;
        match written_from(rt, &reply, created) {
            Some(w) => Ok(w),
            // A matched conditional create may answer 200 with no body and no
            // Location: find the existing resource by its identifier.
            None => {
                let bundle = self.get(&format!("{rt}?{condition}")).await?;
                let found = bundle["entry"]
                    .get(0)
                    .map(|e| &e["resource"])
                    .cloned()
                    .unwrap_or(Value::Null);
                let id = found["id"].as_str().ok_or_else(|| {
                    FhirError::InvalidResponse(format!(
                        "conditional create of {rt} returned no id and the search found none"
                    ))
                })?;
                Ok(Written {
                    resource_type: rt.to_owned(),
                    id: id.to_owned(),
                    version: meta_version(&found),
                    created,
                })
            }
        }
    }

    /// Updates `Type/id` only if the server still holds `version`.
    pub async fn update_if_match(
        &self,
        resource: &Value,
        version: &str,
    ) -> Result<Written, FhirError> {
        let rt = resource_type(resource)?;
        let id = resource["id"]
            .as_str()
            .ok_or_else(|| FhirError::InvalidResponse("update needs resource.id".into()))?;
        let url = format!("{}/{}/{}", self.base, rt, id);
        let etag = format!("W/\"{version}\"");
        let reply = self
            .precondition(
                Method::PUT,
                &url,
                json_body(resource)?,
                ("If-Match", etag.as_str()),
                || FhirError::VersionConflict {
                    resource: format!("{rt}/{id}"),
                    expected: version.to_owned(),
                },
            )
            .await?;
        Ok(
            written_from(rt, &reply, reply.status == StatusCode::CREATED).unwrap_or(Written {
                resource_type: rt.to_owned(),
                id: id.to_owned(),
                version: None,
                created: false,
            }),
        )
    }

    /// `PUT Type/id` with no precondition: an update, or a create with the
    /// id the bridge chose where the server allows update-as-create. Safe to
    /// repeat (same id, same content), which is why it is retried.
    pub async fn put(&self, resource: &Value) -> Result<Written, FhirError> {
        let rt = resource_type(resource)?;
        let id = resource["id"]
            .as_str()
            .ok_or_else(|| FhirError::InvalidResponse("a PUT needs resource.id".into()))?;
        let url = format!("{}/{}/{}", self.base, rt, id);
        let reply = self
            .retrying(Method::PUT, &url, Some(json_body(resource)?), &[])
            .await?;
        Ok(
            written_from(rt, &reply, reply.status == StatusCode::CREATED).unwrap_or(Written {
                resource_type: rt.to_owned(),
                id: id.to_owned(),
                version: None,
                created: reply.status == StatusCode::CREATED,
            }),
        )
    }

    /// Posts a `transaction` Bundle. Retried like the other writes, which
    /// is safe only because every entry the bridge puts in one is itself
    /// conditional (`ifNoneExist`, `ifMatch`). Returns the number of entries
    /// in the response.
    pub async fn transaction(&self, bundle: &Value) -> Result<usize, FhirError> {
        if bundle["type"].as_str() != Some("transaction") {
            return Err(FhirError::InvalidResponse(
                "a transaction needs a Bundle of type transaction".into(),
            ));
        }
        let base = self.base.clone();
        let reply = self
            .retrying(Method::POST, &base, Some(json_body(bundle)?), &[])
            .await?;
        Ok(reply.json()["entry"].as_array().map_or(0, Vec::len))
    }

    /// A conditional write: a 412 means the condition failed, which each
    /// caller names in its own terms (`failed`).
    async fn precondition(
        &self,
        method: Method,
        url: &str,
        body: bytes::Bytes,
        condition: (&str, &str),
        failed: impl FnOnce() -> FhirError,
    ) -> Result<Reply, FhirError> {
        match self.retrying(method, url, Some(body), &[condition]).await {
            Err(FhirError::Status { status: 412, .. }) => Err(failed()),
            other => other,
        }
    }

    async fn retrying(
        &self,
        method: Method,
        url: &str,
        body: Option<bytes::Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, FhirError> {
        let attempt = || async { self.once(method.clone(), url, body.clone(), headers).await };
        attempt
            .retry(self.backoff)
            .when(FhirError::is_retryable)
            .adjust(|e, planned| planned.map(|d| e.retry_after().unwrap_or(d)))
            .notify(|e, d| tracing::debug!(error = %e, delay = ?d, "retrying FHIR request"))
            .await
    }

    async fn once(
        &self,
        method: Method,
        url: &str,
        body: Option<bytes::Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, FhirError> {
        self.breaker
            .check(Instant::now())
            .map_err(FhirError::CircuitOpen)?;
        let result = self.send(method.clone(), url, body, headers).await;
        let label = match &result {
            Ok(r) => status_class(r.status.as_u16()),
            Err(FhirError::Status { status, .. }) => status_class(*status),
            Err(_) => "error",
        };
        metrics::counter!("ips_fhir_requests_total", "method" => method.as_str().to_owned(), "status" => label).increment(1);
        self.record(&result);
        result
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<bytes::Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, FhirError> {
        let mut retried_auth = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url)
                .header(header::ACCEPT, FHIR_JSON);
            if let Some(auth) = self.auth.header(&self.http).await? {
                req = req.header(header::AUTHORIZATION, auth);
            }
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = &body {
                // Serialised once by the caller; each attempt shares it.
                req = req.header(header::CONTENT_TYPE, FHIR_JSON).body(b.clone());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| FhirError::Transport(e.without_url().to_string()))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED
                && !retried_auth
                && !matches!(self.auth, Auth::None)
            {
                // A cached token may have been revoked early: fetch a new one once.
                self.auth.invalidate().await;
                retried_auth = true;
                continue;
            }
            let h = resp.headers();
            let etag = h
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(strip_etag);
            let location = h
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let retry_after = h
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let body = resp
                .bytes()
                .await
                .map_err(|e| FhirError::Transport(e.without_url().to_string()))?;
            let reply = Reply {
                status,
                etag,
                location,
                body,
            };
            if !status.is_success() {
                return Err(FhirError::Status {
                    status: status.as_u16(),
                    retry_after,
                    detail: outcome_summary(&reply.json(), status),
                });
            }
            return Ok(reply);
        }
    }
}

/// A request body, serialised once for every attempt.
fn json_body(v: &Value) -> Result<bytes::Bytes, FhirError> {
    serde_json::to_vec(v)
        .map(bytes::Bytes::from)
        .map_err(|e| FhirError::InvalidResponse(e.to_string()))
}

fn resource_type(resource: &Value) -> Result<&str, FhirError> {
    resource["resourceType"]
        .as_str()
        .ok_or_else(|| FhirError::InvalidResponse("resource has no resourceType".into()))
}

fn written_from(rt: &str, reply: &Reply, created: bool) -> Option<Written> {
    let from_body = reply.stamp();
    let from_location = reply.location.as_deref().and_then(parse_location);
    let (id, version) = from_body.or(from_location)?;
    Some(Written {
        resource_type: rt.to_owned(),
        id,
        version: version.or_else(|| reply.etag.clone()),
        created,
    })
}
