//! The sandbox process: found in the venv, started on a free port (over
//! mutual TLS when asked), killed on drop and with the test process.

use super::*;

impl MeshSandbox {
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the sandbox said so far (its own log and uvicorn's access log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every request served so far, in order. A line is written before the response
    /// goes out, so it is there once the client has its answer.
    pub fn access_log(&self) -> Vec<AccessLine> {
        self.log().lines().filter_map(parse_access_line).collect()
    }

    /// How many requests with this method (case-insensitive) had a path containing
    /// `path_contains`. `requests("POST", "/messageexchange/X26ABC1/outbox")` counts
    /// sends from X26ABC1 *and* its chunk uploads (`…/outbox/{id}/{n}`); use
    /// [`MeshSandbox::access_log`] for exact paths or statuses.
    pub fn requests(&self, method: &str, path_contains: &str) -> usize {
        self.access_log()
            .iter()
            .filter(|l| l.method.eq_ignore_ascii_case(method) && l.path.contains(path_contains))
            .count()
    }

    // --- raw requests ---
    /// Starts uvicorn (over mutual TLS when `tls` is given) on a free port and
    /// waits until `http` gets an answer from it.
    pub(super) async fn launch(
        shared_key: &str,
        http: reqwest::Client,
        tls: Option<&SandboxTls>,
    ) -> MeshSandbox {
        let python = Self::python();
        let dir = tempfile::tempdir().expect("temp dir for the MESH sandbox");
        let log = dir.path().join("mesh-sandbox.log");
        let (scheme, what) = match tls {
            Some(_) => ("https", "the MESH sandbox (TLS)"),
            None => ("http", "the MESH sandbox"),
        };
        // A free port can be taken between our probe and uvicorn's bind: try again then.
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = spawn(&python, dir.path(), &log, port, shared_key, tls);
            let url = format!("{scheme}://127.0.0.1:{port}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("address already in use") {
                        break;
                    }
                    panic!("{what} exited ({status}) during start-up:\n{text}");
                }
                if let Ok(r) = http.get(format!("{url}/health")).send().await
                    && r.status() == 200
                {
                    return MeshSandbox {
                        url,
                        shared_key: shared_key.to_owned(),
                        log,
                        child,
                        http,
                        _dir: dir,
                    };
                }
                if tokio::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{what} did not answer on {url} within 60 s:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("{what} could not bind a free port in 5 attempts");
    }

    /// The venv's python: `MESH_SANDBOX_PYTHON` (set by tests/run.sh), else
    /// `deploy/local/.mesh-venv/bin/python`.
    pub fn python() -> PathBuf {
        let p = std::env::var_os("MESH_SANDBOX_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/local/.mesh-venv/bin/python")
            });
        assert!(
            p.exists(),
            "no MESH sandbox at {}: run tests/run.sh once (or \
             `source deploy/local/services.sh && ensure_mesh_sandbox`), which installs \
             mesh-sandbox into deploy/local/.mesh-venv",
            p.display()
        );
        p
    }

    // --- the process's log ---
}

impl Drop for MeshSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now (bind port 0, read it, let it go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

fn spawn(
    python: &Path,
    dir: &Path,
    log: &Path,
    port: u16,
    shared_key: &str,
    tls: Option<&SandboxTls>,
) -> Child {
    let out = std::fs::File::create(log).expect("MESH sandbox log file");
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "uvicorn",
        "mesh_sandbox.api:app",
        "--host",
        "127.0.0.1",
    ])
    .arg("--port")
    .arg(port.to_string())
    .current_dir(dir)
    .stdin(Stdio::null())
    .stdout(out.try_clone().expect("log file"))
    .stderr(out);
    if let Some(tls) = tls {
        cmd.arg("--ssl-certfile")
            .arg(&tls.server_cert)
            .arg("--ssl-keyfile")
            .arg(&tls.server_key)
            .arg("--ssl-ca-certs")
            .arg(&tls.ca_cert)
            // ssl.CERT_REQUIRED: no client certificate signed by the CA, no handshake.
            .args(["--ssl-cert-reqs", "2"]);
    }
    // Only what we set configures it (uvicorn also reads UVICORN_* variables).
    for k in [
        "ENV",
        "BUILD_LABEL",
        "MAILBOXES_DATA_DIR",
        "FILE_STORE_DIR",
        "MESSAGE_EXPIRY_DAYS",
        "INBOX_EXPIRY_DAYS",
        "PYTHONPATH",
        "PYTHONHOME",
    ] {
        cmd.env_remove(k);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("UVICORN_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("STORE_MODE", "memory")
        .env("AUTH_MODE", "full")
        .env("SHARED_KEY", shared_key)
        .env("PYTHONUNBUFFERED", "1")
        // FastAPI's deprecation warnings about the sandbox's own code: noise in the log.
        .env("PYTHONWARNINGS", "ignore");
    // If the test process dies without running destructors, the sandbox dies too.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("start the MESH sandbox with {}: {e}", python.display()))
}

pub(super) fn parse_access_line(line: &str) -> Option<AccessLine> {
    let start = line.find(" - \"")? + 4;
    let rest = &line[start..];
    let end = rest.find('"')?;
    let mut req = rest[..end].split_whitespace();
    let (method, path, proto) = (req.next()?, req.next()?, req.next()?);
    if !proto.starts_with("HTTP/") {
        return None;
    }
    let status = rest[end + 1..].split_whitespace().next()?.parse().ok()?;
    Some(AccessLine {
        method: method.to_owned(),
        path: path.to_owned(),
        status,
    })
}

/// Un-gzips with the sandbox's Python (`gzip.decompress`, which also takes several
/// gzip members back to back): Cargo.toml has no gzip crate, and a test-only
/// dependency for this one use is not worth it.
pub(super) async fn gunzip(data: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(MeshSandbox::python())
        .args([
            "-c",
            "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python for gunzip");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(data).await.expect("gunzip input");
    drop(stdin);
    let out = child.wait_with_output().await.expect("gunzip");
    assert!(
        out.status.success(),
        "gunzip of a MESH download failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
