//! The rest-hook's mutual-TLS listener (`[http.webhook_tls]`).
//!
//! A FHIR server that notifies the bridge proves who it is twice: with a
//! client certificate issued by the configured CA (checked here, in the TLS
//! handshake, before any HTTP is read) and with the shared secret (checked by
//! the route's layer). Hand-written over `tokio-rustls` and `hyper-util`,
//! which the build already has, rather than `axum-server`: an accept loop is
//! a few lines and the rustls configuration is the part that matters.

use crate::config::WebhookTlsSettings;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: cannot read {path}: {reason}")]
    Pem {
        key: &'static str,
        path: String,
        reason: String,
    },
    #[error("{key}: {reason}")]
    Config { key: &'static str, reason: String },
}

/// The server side of the handshake: this listener's certificate, and a
/// verifier that refuses any client without a certificate chaining to the CA.
pub fn server_config(s: &WebhookTlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs("http.webhook_tls.client_ca_file", &s.client_ca_file)? {
        roots.add(ca).map_err(|e| TlsError::Config {
            key: "http.webhook_tls.client_ca_file",
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Config {
            key: "http.webhook_tls.client_ca_file",
            reason: e.to_string(),
        })?;
    let chain = certs("http.webhook_tls.cert_file", &s.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&s.key_file).map_err(|e| TlsError::Pem {
        key: "http.webhook_tls.key_file",
        path: s.key_file.clone(),
        reason: e.to_string(),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config {
            key: "http.webhook_tls",
            reason: e.to_string(),
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config {
            key: "http.webhook_tls.key_file",
            reason: format!("the key does not fit the certificate: {e}"),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certs(key: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |reason: String| TlsError::Pem {
        key,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// Serves `routes` on `listener` over TLS until `shutdown`. A failed
/// handshake (no certificate, an unknown issuer, plain HTTP) costs that
/// connection only; it is counted and logged without the peer's details.
pub async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    routes: Router,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(config);
    let service = TowerToHyperService::new(routes);
    loop {
        let (tcp, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "rest-hook TLS listener: accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let service = service.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    metrics::counter!("ips_webhook_tls_refused_total").increment(1);
                    tracing::info!(error = %e, "rest-hook TLS handshake refused");
                    return;
                }
            };
            let served = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "rest-hook connection ended with an error");
            }
        });
    }
}
