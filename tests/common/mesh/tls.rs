//! The sandbox served over mutual TLS, for the client-certificate tests.

use super::*;

/// The PEM files of a sandbox served over mutual TLS (see [`MeshSandbox::start_tls`]).
#[derive(Clone, Debug)]
pub struct SandboxTls {
    /// The CA the server's certificate chains to, and the only one whose client
    /// certificates the server accepts (`--ssl-ca-certs`).
    pub ca_cert: PathBuf,
    /// The server's certificate (it must name `IP:127.0.0.1` in its subjectAltName:
    /// rustls checks the SAN, never the CN) and its key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The harness's own client certificate, signed by `ca_cert`, and its key: the
    /// harness's requests (health probe, the practice's inbox, admin) go through the
    /// same mutual TLS as the bridge's.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl MeshSandbox {
    /// As [`MeshSandbox::start`], served over HTTPS (`url` is `https://127.0.0.1:PORT`)
    /// by uvicorn with `--ssl-cert-reqs 2` (`ssl.CERT_REQUIRED`): the TLS handshake
    /// fails for a client that presents no certificate or one not signed by
    /// `tls.ca_cert`, before any HTTP request (so no access-log line) is made. The
    /// harness's own client trusts only `tls.ca_cert` and presents `tls.client_cert`.
    pub async fn start_tls(tls: &SandboxTls) -> MeshSandbox {
        let python = Self::python();
        let dir = tempfile::tempdir().expect("temp dir for the MESH sandbox");
        let log = dir.path().join("mesh-sandbox.log");
        let read =
            |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        let mut identity = read(&tls.client_cert);
        identity.push(b'\n');
        identity.extend(read(&tls.client_key));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(0)
            .identity(
                reqwest::Identity::from_pem(&identity).expect("the harness's client identity"),
            )
            .tls_certs_only([
                reqwest::Certificate::from_pem(&read(&tls.ca_cert)).expect("the sandbox's CA")
            ])
            .build()
            .expect("HTTPS client");
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = spawn_tls(&python, dir.path(), &log, port, DEFAULT_SHARED_KEY, tls);
            let url = format!("https://127.0.0.1:{port}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("address already in use") {
                        break;
                    }
                    panic!("the MESH sandbox (TLS) exited ({status}) during start-up:\n{text}");
                }
                if let Ok(r) = http.get(format!("{url}/health")).send().await
                    && r.status() == 200
                {
                    return MeshSandbox {
                        url,
                        shared_key: DEFAULT_SHARED_KEY.to_owned(),
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
                        "the MESH sandbox (TLS) did not answer on {url} within 60 s:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("the MESH sandbox (TLS) could not bind a free port in 5 attempts");
    }
}

/// As `spawn`, with uvicorn serving TLS and requiring a client certificate.
fn spawn_tls(
    python: &Path,
    dir: &Path,
    log: &Path,
    port: u16,
    shared_key: &str,
    tls: &SandboxTls,
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
    .arg("--ssl-certfile")
    .arg(&tls.server_cert)
    .arg("--ssl-keyfile")
    .arg(&tls.server_key)
    .arg("--ssl-ca-certs")
    .arg(&tls.ca_cert)
    // ssl.CERT_REQUIRED: no client certificate signed by the CA, no handshake.
    .args(["--ssl-cert-reqs", "2"])
    .current_dir(dir)
    .stdin(Stdio::null())
    .stdout(out.try_clone().expect("log file"))
    .stderr(out);
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
    // uvicorn also reads its options from UVICORN_* variables: only ours count.
    for (k, _) in std::env::vars() {
        if k.starts_with("UVICORN_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("STORE_MODE", "memory")
        .env("AUTH_MODE", "full")
        .env("SHARED_KEY", shared_key)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONWARNINGS", "ignore");
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
