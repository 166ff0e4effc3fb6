//! The daemon under test: the release `ips-bridge run` binary as a child
//! process, configured only through `IPS__…` environment variables, observed
//! only from outside (HTTP probes, `/metrics`, `/proc`).

use anyhow::{Context as _, bail};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct Daemon {
    child: Child,
    pid: u32,
    pub base: String,
    log: PathBuf,
    http: reqwest::Client,
}

/// A free local port for the daemon's HTTP server. The daemon cannot report
/// the port it bound with `:0`, so one is reserved here and released just
/// before the daemon binds it.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

impl Daemon {
    /// Starts `bin run` with exactly `env` as its `IPS__…` configuration
    /// (inherited `IPS*` variables are removed); stdout and stderr go to `log`.
    pub fn spawn(
        bin: &Path,
        env: &[(String, String)],
        listen: SocketAddr,
        log: &Path,
    ) -> anyhow::Result<Daemon> {
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--grace", "10s"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("IPS")) {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.env("IPS__HTTP__LISTEN", listen.to_string());
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().context("the daemon exited at once")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Daemon {
            child,
            pid,
            base: format!("http://{listen}"),
            log: log.to_owned(),
            http,
        })
    }

    /// Fails (with the end of the daemon's log) when it has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the daemon exited ({status}); its log ends with:\n{}",
                self.log_tail()
            );
        }
        Ok(())
    }

    /// Waits until `GET /readyz` answers 200 (store, broker and FHIR up).
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let ok = self
                .http
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the daemon was not ready within {timeout:?}; its log ends with:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// AMQP message outcomes so far, from `/metrics`.
    pub async fn outcomes(&mut self) -> anyhow::Result<Outcomes> {
        Ok(Outcomes::parse(&self.metrics().await?))
    }

    /// The daemon's `/metrics` text.
    pub async fn metrics(&mut self) -> anyhow::Result<String> {
        self.check_alive()?;
        Ok(self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// Resident and peak resident memory, from `/proc/<pid>/status`.
    pub fn memory(&mut self) -> anyhow::Result<Memory> {
        self.check_alive()?;
        Memory::of(self.pid)
    }

    /// Stops the daemon as an orchestrator would (SIGTERM, then SIGKILL after 20 s).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
                .await
                .is_err()
            {
                self.child.kill().await?;
                bail!("the daemon did not stop within 20 s of SIGTERM; killed");
            }
        }
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// `ips_messages_total{source="amqp"}` by outcome.
#[derive(Debug, Default, Clone)]
pub struct Outcomes(pub BTreeMap<String, u64>);

impl Outcomes {
    /// Adds another process's counts.
    pub fn add(&mut self, other: &Outcomes) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_insert(0) += v;
        }
    }

    pub fn parse(metrics: &str) -> Outcomes {
        let mut by = BTreeMap::new();
        for line in metrics
            .lines()
            .filter(|l| l.starts_with("ips_messages_total{") && l.contains(r#"source="amqp""#))
        {
            let outcome = line
                .split(r#"outcome=""#)
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or("?");
            let value = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            *by.entry(outcome.to_owned()).or_insert(0) += value as u64;
        }
        Outcomes(by)
    }

    /// Messages the bridge is finished with (committed, or dead-lettered);
    /// `requeued` batches went back to the queue and will be counted again.
    pub fn finished(&self) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.as_str() != "requeued")
            .map(|(_, v)| v)
            .sum()
    }

    pub fn get(&self, outcome: &str) -> u64 {
        self.0.get(outcome).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(" "))
    }
}

/// Memory of a process in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_amqp_outcomes_only() {
        let text = "# TYPE ips_messages_total counter\n\
            ips_messages_total{source=\"amqp\",outcome=\"processed\"} 10\n\
            ips_messages_total{outcome=\"duplicate\",source=\"amqp\"} 2\n\
            ips_messages_total{source=\"amqp\",outcome=\"requeued\"} 5\n\
            ips_messages_total{source=\"fhir-poll\",outcome=\"processed\"} 7\n";
        let o = Outcomes::parse(text);
        assert_eq!(o.finished(), 12);
        assert_eq!(o.get("processed"), 10);
    }
}
