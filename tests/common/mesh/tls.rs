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
        Self::launch(DEFAULT_SHARED_KEY, http, Some(tls)).await
    }
}
