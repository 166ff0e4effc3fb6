//! The real binary as a child process: `ips-bridge run --config <file>`.
//!
//! The in-process harness ([`super::Bridge`]) cannot show what a crash does
//! (aborting tasks leaves the process, its sockets and its runtime alive), and
//! its metrics come from a recorder shared by every test in the binary. Here
//! each test gets its own process: SIGKILL ends it mid-write as a crash
//! would, `/metrics` counts only what this process did, and its stderr lands
//! in a file the test can grep.

use super::{Api, Names, Pub, Sandbox, TOKEN, eventually, settings_env, temp_sqlite_url, uid};
use ips_bridge::config::LIST_KEYS;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts `ips-bridge --config CONFIG run` with stdout and stderr to `log`.
/// Only the config file speaks: nothing from the test's environment
/// overrides it. If the test process dies without running destructors, the
/// daemon dies too instead of consuming some later test's queue.
pub fn spawn_process(config: &std::path::Path, log: std::fs::File) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ips-bridge"));
    cmd.arg("--config")
        .arg(config)
        .args(["run", "--grace", "5s"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log);
    for (k, _) in std::env::vars() {
        if k.starts_with("IPS__") || k == "IPS_CONFIG" {
            cmd.env_remove(k);
        }
    }
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("start the ips-bridge binary")
}

/// A field of the start line (`ips-bridge started`) in a JSON log.
pub fn start_line_field(log: &str, field: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let v: Value = serde_json::from_str(l).ok()?;
        if v["fields"]["message"] != "ips-bridge started" {
            return None;
        }
        v["fields"][field].as_str().map(str::to_owned)
    })
}

/// Waits for the start line in `log` (for the HTTP address), then for
/// `/readyz` 200; fails at once if `child` exits first.
pub async fn wait_started(log: &std::path::Path, mut child: Option<&mut Child>) -> SocketAddr {
    let addr = eventually(Duration::from_secs(30), "the daemon's start line", || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(child) = child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("the daemon exited ({status}) before it started:\n{text}");
        }
        let addr = start_line_field(&text, "http_addr").and_then(|a| a.parse::<SocketAddr>().ok());
        async move { addr }
    })
    .await;
    eventually(Duration::from_secs(20), "daemon ready", || async move {
        let r = reqwest::get(format!("http://{addr}/readyz")).await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    addr
}

/// A bridge process with its own config file, store, sandbox and AMQP names.
/// Killed (SIGKILL) on drop.
pub struct Daemon {
    pub sb: Sandbox,
    pub n: Names,
    /// Store URL (a SQLite file in `dir`, or a PostgreSQL database).
    pub db: String,
    pub api: Api,
    pub addr: SocketAddr,
    pub p: Pub,
    pub config: PathBuf,
    dir: tempfile::TempDir,
    _db_dir: Option<tempfile::TempDir>,
    child: Option<Child>,
    runs: usize,
}

impl Daemon {
    /// SQLite store, the test's own names, settings overridden by `extra`.
    pub async fn start(extra: &[(&str, &str)]) -> Daemon {
        Self::start_with(Names::new(), None, extra).await
    }

    /// As [`Daemon::start`] with given AMQP names and store URL (`None`: a fresh SQLite file).
    pub async fn start_with(n: Names, db: Option<String>, extra: &[(&str, &str)]) -> Daemon {
        let sb = Sandbox::start();
        let (db_dir, db) = match db {
            Some(d) => (None, d),
            None => {
                let (d, u) = temp_sqlite_url();
                (Some(d), u)
            }
        };
        let dir = tempfile::tempdir().expect("temp dir for the daemon");
        let config = dir.path().join("ips-bridge.toml");
        // Logs at info in JSON: the start line names the HTTP address, and log
        // greps see everything the process says.
        // Gauges of stored state refreshed often, so assertions on them see
        // the last change within a poll.
        let mut all: Vec<(&str, &str)> = vec![
            ("IPS__LOG__FORMAT", "json"),
            ("IPS__LOG__LEVEL", "info"),
            ("IPS__HTTP__METRICS_REFRESH", "200ms"),
        ];
        all.extend_from_slice(extra);
        write_config(&config, &settings_env(&db, &sb.url, &n, &all));
        let p = Pub::connect(&n.url).await;
        let mut d = Daemon {
            sb,
            n,
            db,
            api: Api::new(SocketAddr::from(([127, 0, 0, 1], 0))),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            p,
            config,
            dir,
            _db_dir: db_dir,
            child: None,
            runs: 0,
        };
        d.spawn();
        d.wait_ready().await;
        d
    }

    fn log_path(&self, run: usize) -> PathBuf {
        self.dir.path().join(format!("run-{run}.log"))
    }

    /// Starts the process; stdout and stderr go to this run's log file.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).expect("log file");
        self.child = Some(spawn_process(&self.config, log));
    }

    /// Waits for the start line (for the HTTP address), then for `/readyz` 200.
    pub async fn wait_ready(&mut self) -> SocketAddr {
        let path = self.log_path(self.runs);
        let addr = wait_started(&path, self.child.as_mut()).await;
        self.addr = addr;
        self.api = Api::new(addr);
        addr
    }

    /// SIGKILL: no shutdown hook, no grace, no flush; then reaps the process.
    pub fn sigkill(&mut self) {
        let mut child = self.child.take().expect("the daemon is running");
        // `Child::kill` sends SIGKILL on Unix; the exit status proves it.
        child.kill().expect("SIGKILL the daemon");
        let status = child.wait().expect("reap the daemon");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    }

    /// SIGTERM and wait for a clean exit (in-flight work finishes within the grace).
    pub fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = child.wait().expect("reap the daemon");
        assert!(
            status.success(),
            "the daemon did not stop cleanly: {status}"
        );
    }

    /// Starts the process again on the same config file, store and names.
    pub async fn restart(&mut self) -> SocketAddr {
        if self.child.is_some() {
            self.terminate();
        }
        self.spawn();
        self.wait_ready().await
    }

    /// Everything every run of the process wrote to stdout and stderr.
    pub fn logs(&self) -> String {
        (1..=self.runs)
            .map(|r| std::fs::read_to_string(self.log_path(r)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("")
    }

    /// This process's own `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .expect("scrape /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of the series `name` whose labels are exactly `labels`
    /// (0 when the process never recorded it). Counters restart at zero with
    /// the process.
    pub async fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.metrics().await, name, labels).unwrap_or(0.0)
    }

    /// Publishes `v` as FHIR JSON to the inbound exchange with a fresh message id.
    pub async fn send(&self, v: &Value) {
        let body = serde_json::to_vec(v).expect("JSON");
        self.p
            .publish(&self.n.exchange, "test", &body, &uid(), super::FHIR_JSON)
            .await
            .expect("publish");
    }

    pub fn token(&self) -> &'static str {
        TOKEN
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Finds `name{labels} value` in Prometheus text, matching the label set exactly.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, got) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.strip_suffix('}')?)?),
                None => (series, BTreeMap::new()),
            };
            (n == name && got == want).then(|| value.parse().ok())?
        })
}

fn parse_labels(s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (k, after) = rest.split_once("=\"")?;
        let end = after.find('"')?; // label values here are codes: no escaped quotes
        out.insert(
            k.trim_start_matches(',').to_owned(),
            after[..end].to_owned(),
        );
        rest = &after[end + 1..];
    }
    Some(out)
}

/// Writes the settings the in-process harness would use as a TOML file.
pub fn write_config(path: &std::path::Path, env: &[(String, String)]) {
    let mut root = toml::Table::new();
    for (var, value) in env {
        let key = var
            .strip_prefix("IPS__")
            .expect("IPS__ variable")
            .to_ascii_lowercase()
            .replace("__", ".");
        let v = if LIST_KEYS.contains(&key.as_str()) {
            toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            )
        } else if let Ok(b) = value.parse::<bool>() {
            toml::Value::Boolean(b)
        } else if let Ok(i) = value.parse::<i64>() {
            toml::Value::Integer(i)
        } else {
            toml::Value::String(value.clone())
        };
        let mut parts: Vec<&str> = key.split('.').collect();
        let leaf = parts.pop().expect("key");
        let mut table = &mut root;
        for p in parts {
            table = table
                .entry(p)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("section");
        }
        table.insert(leaf.to_owned(), v);
    }
    std::fs::write(path, toml::to_string(&root).expect("TOML")).expect("write the config file");
    // The file must mean what the in-process harness means: load it the way `run` does.
    if let Err(e) = ips_bridge::config::Settings::load_from(Some(path), Vec::new()) {
        panic!("daemon config {} invalid: {e}", path.display());
    }
}

impl Daemon {
    /// Sends `v` and waits until the bridge has applied it (its inbox grew).
    pub async fn send_applied(&self, v: &Value) {
        let before = super::effects::inbox_count(&self.db, "amqp").await;
        self.send(v).await;
        eventually(Duration::from_secs(25), "message applied", || async {
            (super::effects::inbox_count(&self.db, "amqp").await > before).then_some(())
        })
        .await;
    }
}

/// Writes the test clock file (`clock.file`) the daemon reads as "now".
pub fn set_clock(path: &std::path::Path, t: time::OffsetDateTime) {
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 instant");
    std::fs::write(path, text).expect("write the clock file");
}

/// Resources of `rt` in the sandbox about the patient with this NHS number
/// (`Task.for`, otherwise `subject`).
pub async fn about(sb: &Sandbox, rt: &str, nhs: &str) -> Vec<Value> {
    sb.search_all(rt)
        .await
        .into_iter()
        .filter(|r| {
            let subject = if rt == "Task" {
                &r["for"]
            } else {
                &r["subject"]
            };
            subject["identifier"]["value"] == nhs
        })
        .collect()
}
