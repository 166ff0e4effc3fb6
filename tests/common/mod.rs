//! Test harness: real RabbitMQ, real PostgreSQL, a real FHIR sandbox process.
//!
//! Every test gets its own names (queues, exchanges, database, sandbox), so
//! tests run in parallel without seeing each other's messages.
#![allow(dead_code)]

pub mod browser;
pub mod daemon;
pub mod effects;
pub mod fixtures;
pub mod mesh;
pub mod mesh_flow;
pub mod mesh_pki;
pub mod mesh_proxy;
pub mod oidc;
pub mod soak;

use ips_bridge::config::Settings;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The broker for this test run: `tests/run.sh` gives each run a vhost of its
/// own (deleted at the end, so the many quorum queues the tests declare never
/// pile up on the broker); the default vhost otherwise.
pub fn amqp_url() -> String {
    std::env::var("IPS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const TOKEN: &str = "test-api-token";
/// The patient lookup key the tests' bridges use (`store.patient_key`).
pub const PATIENT_KEY: &str = "test-patient-key-0123456789abcdef0123456789";

pub fn uid() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A FHIR sandbox process of our own, killed on drop.
pub struct Sandbox {
    pub url: String,
    child: Child,
}

impl Sandbox {
    pub fn start() -> Sandbox {
        let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/local/fhir-sandbox/server.mjs"
        );
        let mut child = Command::new(node)
            .args([script, "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the FHIR sandbox (is node installed and `npm ci` done? tests/run.sh does both)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("sandbox URL line");
        assert!(
            line.starts_with("http://"),
            "sandbox did not print its URL: {line:?}"
        );
        Sandbox {
            url: line.trim().to_owned(),
            child,
        }
    }

    pub fn origin(&self) -> String {
        self.url.trim_end_matches("/fhir").to_owned()
    }

    pub async fn fault(&self, spec: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/__sandbox/faults", self.origin()))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "fault injection refused: {}",
            r.status()
        );
    }

    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/__sandbox/stats", self.origin()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every resource of a type matching a search (follows `next`).
    pub async fn search_all(&self, query: &str) -> Vec<Value> {
        let mut out = vec![];
        let mut next = Some(format!("{}/{}", self.url, query));
        while let Some(url) = next.take() {
            let b: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
            out.extend(
                b["entry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| e["resource"].clone()),
            );
            next = b["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["relation"] == "next")
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
        }
        out
    }

    pub async fn create(&self, resource: &Value) -> Value {
        let rt = resource["resourceType"].as_str().unwrap();
        let r = reqwest::Client::new()
            .post(format!("{}/{}", self.url, rt))
            .header("content-type", "application/fhir+json")
            .json(resource)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create {rt}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Reads `Type/id`.
    pub async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}/{}", self.url, path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn put(&self, resource: &Value) -> Value {
        let rt = resource["resourceType"].as_str().unwrap();
        let id = resource["id"].as_str().unwrap();
        let r = reqwest::Client::new()
            .put(format!("{}/{}/{}", self.url, rt, id))
            .header("content-type", "application/fhir+json")
            .json(resource)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "update {rt}: {}", r.status());
        r.json().await.unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Unique AMQP names for one test.
#[derive(Clone)]
pub struct Names {
    pub url: String,
    pub exchange: String,
    pub queue: String,
    pub dlx: String,
    pub dlq: String,
    pub events: String,
}

impl Names {
    pub fn new() -> Names {
        Self::on(&amqp_url())
    }

    pub fn on(url: &str) -> Names {
        let u = uid();
        Names {
            url: url.to_owned(),
            exchange: format!("t.{u}.clinical"),
            queue: format!("t.{u}.inbound"),
            dlx: format!("t.{u}.dlx"),
            dlq: format!("t.{u}.dlq"),
            events: format!("t.{u}.events"),
        }
    }
}

/// A fresh PostgreSQL database, for tests of the PostgreSQL store.
pub async fn fresh_pg_database() -> String {
    use sqlx::Connection as _;
    let name = format!("ips_test_{}", uid());
    let mut c = sqlx::PgConnection::connect(PG_ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (tests/run.sh starts it)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap();
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

pub fn temp_sqlite_url() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bridge.db").display());
    (dir, url)
}

/// Settings for a test: embedded defaults plus these overrides.
pub fn settings(store_url: &str, fhir_url: &str, n: &Names, extra: &[(&str, &str)]) -> Settings {
    let env = settings_env(store_url, fhir_url, n, extra);
    Settings::load_from(None, env).unwrap_or_else(|e| panic!("test settings invalid: {e}"))
}

/// The overrides behind [`settings`] as `IPS__SECTION__KEY` variables; the
/// process harness writes the same ones to a config file.
pub fn settings_env(
    store_url: &str,
    fhir_url: &str,
    n: &Names,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("IPS__STORE__URL".into(), store_url.into()),
        ("IPS__FHIR__BASE_URL".into(), fhir_url.into()),
        ("IPS__FHIR__RETRY_MIN_DELAY".into(), "50ms".into()),
        ("IPS__FHIR__RETRY_MAX_DELAY".into(), "1s".into()),
        ("IPS__AMQP__URL".into(), n.url.clone()),
        ("IPS__AMQP__INBOUND_EXCHANGE".into(), n.exchange.clone()),
        ("IPS__AMQP__INBOUND_QUEUE".into(), n.queue.clone()),
        ("IPS__AMQP__DEAD_LETTER_EXCHANGE".into(), n.dlx.clone()),
        ("IPS__AMQP__DEAD_LETTER_QUEUE".into(), n.dlq.clone()),
        ("IPS__AMQP__EVENTS_EXCHANGE".into(), n.events.clone()),
        ("IPS__AMQP__RECONNECT_MIN_DELAY".into(), "100ms".into()),
        ("IPS__AMQP__RECONNECT_MAX_DELAY".into(), "1s".into()),
        ("IPS__HTTP__LISTEN".into(), "127.0.0.1:0".into()),
        ("IPS__HTTP__API_TOKEN".into(), TOKEN.into()),
        ("IPS__HTTP__WEBHOOK_SECRET".into(), "hook-secret".into()),
        ("IPS__POLLER__ENABLED".into(), "false".into()),
        ("IPS__POLLER__INTERVAL".into(), "300ms".into()),
        ("IPS__OUTBOX__POLL_INTERVAL".into(), "50ms".into()),
        ("IPS__OUTBOX__RETRY__FHIR__MIN_DELAY".into(), "100ms".into()),
        (
            "IPS__OUTBOX__RETRY__EVENTS__MIN_DELAY".into(),
            "100ms".into(),
        ),
        ("IPS__TIMERS__POLL_INTERVAL".into(), "200ms".into()),
        ("IPS__LOG__LEVEL".into(), "warn".into()),
        ("IPS__INTAKE__BARS_SERVICE_IDS".into(), "2000072489".into()),
        ("IPS__STORE__PATIENT_KEY".into(), PATIENT_KEY.into()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// A publisher on a confirm channel.
pub struct Pub {
    _conn: Connection,
    pub ch: Channel,
}

impl Pub {
    pub async fn connect(url: &str) -> Pub {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("RabbitMQ at 127.0.0.1:5672");
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Pub { _conn: conn, ch }
    }

    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        message_id: &str,
        content_type: &str,
    ) -> lapin::Result<()> {
        let props = BasicProperties::default()
            .with_message_id(message_id.into())
            .with_content_type(content_type.into())
            .with_delivery_mode(2);
        self.ch
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await?
            .await?;
        Ok(())
    }

    /// Messages ready in `queue` (a passive declare).
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        self.ch
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .unwrap()
            .message_count()
    }

    /// A queue bound to `exchange` with `key`, to watch what the bridge publishes.
    pub async fn watch(&self, exchange: &str, key: &str) -> String {
        let q = format!("t.{}.watch", uid());
        self.ch
            .exchange_declare(
                exchange.into(),
                lapin::ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        self.ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        self.ch
            .queue_bind(
                q.as_str().into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        q
    }

    /// Takes every message currently in `queue` (waiting up to `wait` for `at_least`).
    pub async fn drain(
        &self,
        queue: &str,
        at_least: usize,
        wait: Duration,
    ) -> Vec<lapin::message::BasicGetMessage> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = vec![];
        loop {
            match self
                .ch
                .basic_get(
                    queue.into(),
                    lapin::options::BasicGetOptions { no_ack: true },
                )
                .await
                .unwrap()
            {
                Some(m) => out.push(m),
                None if out.len() >= at_least || tokio::time::Instant::now() > deadline => {
                    return out;
                }
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

pub fn header(m: &lapin::message::BasicGetMessage, key: &str) -> Option<String> {
    let h = m.delivery.properties.headers().as_ref()?;
    match h.inner().get(key)? {
        lapin::types::AMQPValue::LongString(s) => {
            Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
        }
        other => Some(format!("{other:?}")),
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A bearer-authenticated API client for a running bridge.
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(addr: std::net::SocketAddr) -> Api {
        Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{}", self.base, path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, body).await
    }
    async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

/// Starts the bridge and waits until its consumer holds a broker connection
/// (so the test's exchanges and queues exist before it publishes).
pub async fn start_ready(s: ips_bridge::config::Settings) -> ips_bridge::app::Running {
    let app = ips_bridge::app::start(s).await.expect("bridge starts");
    let addr = app.http_addr;
    eventually(Duration::from_secs(15), "bridge ready", || async {
        let r = reqwest::get(format!("http://{addr}/readyz")).await.ok()?;
        let body: Value = r.json().await.ok()?;
        (body["checks"]["broker"]["status"] == "up").then_some(())
    })
    .await;
    app
}

pub const FHIR_JSON: &str = "application/fhir+json";

/// A running bridge with everything a test talks to: its own sandbox, AMQP
/// names, store, API client and publisher.
pub struct Bridge {
    pub sb: Sandbox,
    pub n: Names,
    pub db: String,
    _dir: Option<tempfile::TempDir>,
    pub app: ips_bridge::app::Running,
    pub api: Api,
    pub p: Pub,
}

impl Bridge {
    /// SQLite store, the test's own names, settings overridden by `extra`.
    pub async fn start(extra: &[(&str, &str)]) -> Bridge {
        Self::start_with(Names::new(), None, extra).await
    }

    /// As [`Bridge::start`] with given AMQP names and store URL (`None`: a fresh SQLite file).
    pub async fn start_with(n: Names, db: Option<String>, extra: &[(&str, &str)]) -> Bridge {
        let sb = Sandbox::start();
        let (dir, db) = match db {
            Some(d) => (None, d),
            None => {
                let (d, u) = temp_sqlite_url();
                (Some(d), u)
            }
        };
        let app = start_ready(settings(&db, &sb.url, &n, extra)).await;
        let api = Api::new(app.http_addr);
        let p = Pub::connect(&n.url).await;
        Bridge {
            sb,
            n,
            db,
            _dir: dir,
            app,
            api,
            p,
        }
    }

    pub fn store(&self) -> std::sync::Arc<dyn ips_bridge::store::Store> {
        self.app.engine.store.clone()
    }

    /// Publishes `v` as FHIR JSON to the inbound exchange with a fresh message id.
    pub async fn send(&self, v: &Value) {
        let body = serde_json::to_vec(v).unwrap();
        self.p
            .publish(&self.n.exchange, "test", &body, &uid(), FHIR_JSON)
            .await
            .unwrap();
    }

    /// Stops the bridge (with `grace` for in-flight work) and starts a new one on the same store and names.
    pub async fn restart(self, grace: Duration, extra: &[(&str, &str)]) -> Bridge {
        self.halt(grace).await.resume(extra).await
    }

    /// Stops the bridge but keeps its sandbox, names and store for [`Halted::resume`].
    pub async fn halt(self, grace: Duration) -> Halted {
        let Bridge {
            sb,
            n,
            db,
            _dir,
            app,
            p,
            ..
        } = self;
        app.stop(grace).await;
        Halted { sb, n, db, _dir, p }
    }

    pub async fn stop(self) {
        self.app.stop(Duration::from_secs(5)).await;
    }

    pub async fn queue_depth(&self, queue: &str) -> u32 {
        self.p.queue_depth(queue).await
    }
}

/// A stopped [`Bridge`]: its peers are still up.
pub struct Halted {
    pub sb: Sandbox,
    pub n: Names,
    pub db: String,
    _dir: Option<tempfile::TempDir>,
    pub p: Pub,
}

impl Halted {
    pub async fn resume(self, extra: &[(&str, &str)]) -> Bridge {
        let Halted { sb, n, db, _dir, p } = self;
        let app = start_ready(settings(&db, &sb.url, &n, extra)).await;
        Bridge {
            api: Api::new(app.http_addr),
            sb,
            n,
            db,
            _dir,
            app,
            p,
        }
    }
}

/// Runs `ips-bridge` with the test's names and store; returns stdout.
///
/// Async, not a blocking wait: the bridge under test runs on this test's
/// runtime, and a runtime thread blocked on the child stopped it mid-way,
/// perhaps inside a store transaction the child then waited for ("database
/// is locked" after the busy timeout, seen once in CI).
pub async fn cli(n: &Names, db: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ips-bridge"))
        .args(args)
        .env("IPS__STORE__URL", db)
        .env("IPS__AMQP__URL", &n.url)
        .env("IPS__AMQP__INBOUND_EXCHANGE", &n.exchange)
        .env("IPS__AMQP__INBOUND_QUEUE", &n.queue)
        .env("IPS__AMQP__DEAD_LETTER_EXCHANGE", &n.dlx)
        .env("IPS__AMQP__DEAD_LETTER_QUEUE", &n.dlq)
        .env("IPS__AMQP__EVENTS_EXCHANGE", &n.events)
        .env("IPS__LOG__LEVEL", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
