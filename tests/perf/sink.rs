//! A minimal FHIR server for the write path: conditional create and nothing
//! else, answering as fast as the machine allows, so the figure measures the
//! client side (the bridge's dispatcher, or raw reqwest) and not a server.
//!
//! `POST /fhir/{type}` stores the body with a new id and answers 201 with
//! `Location: <base>/{type}/{id}/_history/1`, `ETag: W/"1"` and the resource
//! (id and `meta.versionId` filled in). A request whose `If-None-Exist` was
//! seen before answers 200 with the resource created then.
//!
//! For the outreach latency figure it also notes, per `Flag` it creates, the
//! wall time the request arrived and the subject's NHS number: that is the
//! "Flag delivered" instant, taken before any work the sink itself does.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

const FHIR_JSON: &str = "application/fhir+json";

#[derive(Default)]
struct Inner {
    base: String,
    /// `{type}?{If-None-Exist}` → the resource created for it.
    by_condition: Mutex<HashMap<String, Value>>,
    created: AtomicU64,
    matched: AtomicU64,
    /// `(subject NHS number, arrival wall ms)` of each Flag created.
    /// `(resource type, subject NHS number, wall ms)` of each create whose
    /// resource names its subject by NHS number (Flags, DocumentReferences).
    arrivals: Mutex<Vec<(String, String, f64)>>,
}

pub struct Sink {
    pub base: String,
    inner: Arc<Inner>,
    server: JoinHandle<()>,
}

impl Sink {
    pub async fn start() -> anyhow::Result<Sink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}/fhir", listener.local_addr()?);
        let inner = Arc::new(Inner {
            base: base.clone(),
            ..Default::default()
        });
        let app = Router::new()
            .route("/fhir/metadata", get(metadata))
            .route("/fhir/{rtype}", post(create))
            .route("/fhir/{rtype}/{id}", put(update))
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("sink server failed: {e}");
            }
        });
        Ok(Sink {
            base,
            inner,
            server,
        })
    }

    /// `(created, matched)` so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.inner.created.load(Ordering::Relaxed),
            self.inner.matched.load(Ordering::Relaxed),
        )
    }
}

impl Sink {
    /// `(subject NHS number, arrival wall ms)` of every Flag created so far.
    /// `(subject NHS number, wall ms)` of every `rtype` created so far.
    pub fn arrivals(&self, rtype: &str) -> Vec<(String, f64)> {
        self.inner
            .arrivals
            .lock()
            .map(|a| {
                a.iter()
                    .filter(|(t, _, _)| t == rtype)
                    .map(|(_, nhs, at)| (nhs.clone(), *at))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn metadata() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, FHIR_JSON)],
        json!({"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1"})
            .to_string(),
    )
}

async fn create(
    State(s): State<Arc<Inner>>,
    Path(rtype): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = crate::setup::wall_ms();
    let mut resource = match json_object(&body) {
        Ok(v) => v,
        Err(refused) => return refused.into_response(),
    };
    let condition = headers
        .get("if-none-exist")
        .and_then(|v| v.to_str().ok())
        .map(|c| format!("{rtype}?{c}"));
    if let Some(key) = &condition {
        let existing = s.by_condition.lock().ok().and_then(|m| m.get(key).cloned());
        if let Some(found) = existing {
            s.matched.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, FHIR_JSON)],
                found.to_string(),
            )
                .into_response();
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    if let Some(obj) = resource.as_object_mut() {
        obj.insert("id".into(), json!(id));
        let meta = obj.entry("meta").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("versionId".into(), json!("1"));
        }
    }
    if let (Some(nhs), Ok(mut arrivals)) = (
        resource["subject"]["identifier"]["value"].as_str(),
        s.arrivals.lock(),
    ) {
        arrivals.push((rtype.clone(), nhs.to_owned(), arrived));
    }
    let text = resource.to_string();
    if let (Some(key), Ok(mut map)) = (condition, s.by_condition.lock()) {
        map.insert(key, resource);
    }
    s.created.fetch_add(1, Ordering::Relaxed);
    let location = format!("{}/{rtype}/{id}/_history/1", s.base);
    (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, FHIR_JSON.to_owned()),
            (header::LOCATION, location),
            (header::ETAG, "W/\"1\"".to_owned()),
        ],
        text,
    )
        .into_response()
}

/// `PUT` with a chosen id (the document's `Binary`): stored as sent.
async fn update(Path((_rtype, id)): Path<(String, String)>, body: Bytes) -> Response {
    let mut resource = match json_object(&body) {
        Ok(v) => v,
        Err(refused) => return refused.into_response(),
    };
    resource["id"] = json!(id);
    resource["meta"] = json!({"versionId": "1"});
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, FHIR_JSON)],
        resource.to_string(),
    )
        .into_response()
}

/// The request body as a JSON object, or the 400 that refuses it.
fn json_object(body: &[u8]) -> Result<Value, (StatusCode, &'static str)> {
    match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err((StatusCode::BAD_REQUEST, "body is not a JSON object")),
    }
}
