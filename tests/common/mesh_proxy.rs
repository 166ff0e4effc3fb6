//! A forwarding proxy in front of the MESH sandbox, for the one fault the
//! sandbox cannot show: a send that MESH accepted whose reply is slow to
//! come back (the window in which a crash leaves the sender not knowing
//! whether its send went through). Everything is forwarded to the real
//! sandbox unchanged; while `hold_sends` is set, the reply to a send
//! (`POST …/outbox`) is held back after the sandbox has taken the message;
//! `fail_chunks(n)` answers the next `n` chunk uploads (`POST
//! …/outbox/{id}/{n}`) with 503 without passing them on (a connection lost
//! between the first chunk and the rest).
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Clone)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    hold: Arc<AtomicBool>,
    held_for: Duration,
    fail_chunks: Arc<AtomicUsize>,
}

pub struct MeshProxy {
    pub url: String,
    hold: Arc<AtomicBool>,
    fail_chunks: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl MeshProxy {
    pub async fn start(upstream: &str, held_for: Duration) -> MeshProxy {
        let hold = Arc::new(AtomicBool::new(false));
        let fail_chunks = Arc::new(AtomicUsize::new(0));
        let shared = Shared {
            fail_chunks: fail_chunks.clone(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            hold: hold.clone(),
            held_for,
        };
        let app = axum::Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MeshProxy {
            url: format!("http://{addr}"),
            hold,
            fail_chunks,
            task,
        }
    }

    pub fn hold_sends(&self, on: bool) {
        self.hold.store(on, Ordering::SeqCst);
    }

    pub fn fail_chunks(&self, n: usize) {
        self.fail_chunks.store(n, Ordering::SeqCst);
    }
}

impl Drop for MeshProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let is_chunk = method == Method::POST
        && uri.path().contains("/outbox/")
        && uri
            .path()
            .rsplit('/')
            .next()
            .is_some_and(|n| n.parse::<u32>().is_ok());
    if is_chunk
        && s.fail_chunks
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "injected: connection lost").into_response();
    }
    let mut req = s.http.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        format!("{}{path}", s.upstream),
    );
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let res = match req.body(body.to_vec()).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
    let mut out = HeaderMap::new();
    for (k, v) in res.headers() {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_str().as_bytes()),
            axum::http::HeaderValue::from_bytes(v.as_bytes()),
        ) && name != "content-length"
            && name != "transfer-encoding"
        {
            out.insert(name, value);
        }
    }
    let bytes = res.bytes().await.unwrap_or_default();
    if method == Method::POST && uri.path().ends_with("/outbox") && s.hold.load(Ordering::SeqCst) {
        // The sandbox has the message; the sender does not know yet.
        tokio::time::sleep(s.held_for).await;
    }
    (status, out, bytes).into_response()
}
