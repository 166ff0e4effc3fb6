//! `[service]`, `[log]` and `[http]`: who this bridge is and how it talks.

use super::checks::{Secret, check_pem_file, check_url, serialize_secret};
use crate::domain::source::is_ods_code;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServiceSettings {
    pub name: String,
    pub ods_code: String,
    pub identifier_system: String,
    /// This service's endpoint as BaRS answers name it (`MessageHeader.source.endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl ServiceSettings {
    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        if !is_ods_code(&self.ods_code) {
            bad(
                "service.ods_code",
                format!(
                    "expected an ODS code (3-6 letters or digits), got {:?}",
                    self.ods_code
                ),
            );
        }
        check_url(
            "service.identifier_system",
            &self.identifier_system,
            &["http", "https", "urn"],
            bad,
        );
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

impl LogSettings {
    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            bad(
                "log.level",
                format!(
                    "expected a level or tracing directives such as \"info,ips_bridge=debug\", got {:?}",
                    self.level
                ),
            );
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    #[serde(serialize_with = "serialize_secret")]
    pub api_token: Secret,
    pub api_token_file: String,
    #[serde(serialize_with = "serialize_secret")]
    pub webhook_secret: Secret,
    pub webhook_secret_file: String,
    /// How often the gauges of stored state (outbox, waiting list, flags,
    /// deliveries…) are read from the store. Not on scrape: a scrape must
    /// not cost the store queries, and every replica reports the same figures.
    #[serde(with = "humantime_serde")]
    pub metrics_refresh: std::time::Duration,
    /// Optional mutual TLS for the rest-hook.
    #[serde(default)]
    pub webhook_tls: WebhookTlsSettings,
}

/// `[http.webhook_tls]`: the rest-hook on a listener of its own that accepts
/// only clients presenting a certificate issued by `client_ca_file` (the FHIR
/// server's), as well as the shared secret. While it is on, the main listener
/// does not serve `/fhir/notify`, so the certificate check cannot be walked
/// around; probes, metrics, the API and the pages stay on `http.listen`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WebhookTlsSettings {
    /// Empty: off (the rest-hook is on `http.listen`, shared secret only).
    pub listen: String,
    /// This listener's certificate chain and private key (PEM).
    pub cert_file: String,
    pub key_file: String,
    /// CA certificates (PEM) that client certificates must chain to.
    pub client_ca_file: String,
}

impl WebhookTlsSettings {
    pub fn enabled(&self) -> bool {
        !self.listen.trim().is_empty()
    }

    /// The listen address, when mutual TLS is on and the address parses.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.enabled()
            .then(|| self.listen.trim().parse().ok())
            .flatten()
    }

    pub(super) fn check(&self, webhook_secret_set: bool, bad: &mut dyn FnMut(&str, String)) {
        if !self.enabled() {
            return;
        }
        if self.listen_addr().is_none() {
            bad(
                "http.webhook_tls.listen",
                format!(
                    "expected an address such as \"0.0.0.0:8443\", got {:?}",
                    self.listen
                ),
            );
        }
        if !webhook_secret_set {
            bad(
                "http.webhook_secret",
                "http.webhook_tls is on but the rest-hook has no shared secret: set http.webhook_secret or http.webhook_secret_file too".into(),
            );
        }
        for (key, path, wants) in [
            ("http.webhook_tls.cert_file", &self.cert_file, "CERTIFICATE"),
            ("http.webhook_tls.key_file", &self.key_file, "PRIVATE KEY"),
            (
                "http.webhook_tls.client_ca_file",
                &self.client_ca_file,
                "CERTIFICATE",
            ),
        ] {
            if path.trim().is_empty() {
                bad(key, "required when http.webhook_tls.listen is set".into());
            } else {
                check_pem_file(key, path, wants, bad);
            }
        }
    }
}
