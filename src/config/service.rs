//! `[service]`, `[log]` and `[http]`: who this bridge is and how it talks.

use super::checks::{Secret, check_url, serialize_secret};
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
}
