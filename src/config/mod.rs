//! Typed, validated settings.
//!
//! `config/default.toml` is embedded in the binary and is both the defaults and
//! the reference documentation. A deployment overrides it with a file
//! (`--config`) and `IPS__SECTION__KEY` environment variables. Loading never
//! stops at the first mistake: unknown keys, wrong types and invalid values
//! are all collected, so `check-config` can list every problem at once.

mod amqp;
mod checks;
mod documents;
mod engine;
mod fhir;
mod intake;
mod mesh;
mod outreach;
mod service;
mod signing_key;
mod store;
mod team;
mod web;

pub use amqp::AmqpSettings;
pub use checks::{ExposeSecret, Secret, is_set, redact_url};
pub use documents::{BinaryMode, CodingSetting, DocumentSettings};
pub use engine::{
    ClockSettings, OutboxRetrySettings, OutboxSettings, RetrySettings, TimerSettings,
};
pub use fhir::{
    FhirAuthKind, FhirAuthSettings, FhirSettings, JwtAlgorithm, PolledResource, PollerSettings,
};
pub use intake::{IntakeSettings, LimitsSettings};
pub use mesh::{MeshSettings, RoutingSettings, mailbox_in};
pub use outreach::OutreachSettings;
pub use service::{HttpSettings, LogFormat, LogSettings, ServiceSettings, WebhookTlsSettings};
pub use signing_key::SigningKey;
pub use store::StoreSettings;
pub use team::{CareSetting, TeamSettings};
pub use web::WebSettings;

use crate::domain::{PatientKey, PatientKeyError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Settings {
    pub service: ServiceSettings,
    pub log: LogSettings,
    pub http: HttpSettings,
    pub store: StoreSettings,
    pub amqp: AmqpSettings,
    pub fhir: FhirSettings,
    pub poller: PollerSettings,
    pub outbox: OutboxSettings,
    pub timers: TimerSettings,
    #[serde(default)]
    pub clock: ClockSettings,
    pub intake: IntakeSettings,
    pub limits: LimitsSettings,
    pub outreach: OutreachSettings,
    pub documents: DocumentSettings,
    pub routing: RoutingSettings,
    pub mesh: MeshSettings,
    #[serde(default)]
    pub team: TeamSettings,
    pub web: WebSettings,
}

/// One thing wrong with the configuration: where, and what is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<Problem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Keys whose environment values are comma-separated lists.
pub const LIST_KEYS: &[&str] = &[
    "amqp.inbound_bindings",
    "intake.snomed_codes",
    "intake.performer_references",
    "intake.bars_service_ids",
    "intake.cmht_ods_codes",
    "intake.cmht_type_codes",
    "intake.decline_reasons",
    "team.specialists",
    "poller.resources",
    "web.scopes",
    "web.allowed_roles",
];

impl Settings {
    /// Loads defaults, then `file`, then the environment; validates everything.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigErrors> {
        Self::load_from(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigErrors> {
        let one = |key: &str, message: String| {
            ConfigErrors(vec![Problem {
                key: key.into(),
                message,
            }])
        };
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            if !path.exists() {
                return Err(one(
                    "--config",
                    format!("file {} does not exist", path.display()),
                ));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let mut env_map: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("IPS__"))
            .collect();
        // Lists are split here rather than by `config`, whose type guessing
        // would turn a one-element list such as `2000072489` into a number.
        for key in LIST_KEYS {
            let var = format!("IPS__{}", key.replace('.', "__").to_ascii_uppercase());
            if let Some(v) = env_map.remove(&var) {
                let items: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                builder = builder
                    .set_override(*key, items)
                    .map_err(|e| one(key, e.to_string()))?;
            }
        }
        let env_source = config::Environment::with_prefix("IPS")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(env_map));
        let cfg = builder
            .add_source(env_source)
            .build()
            .map_err(|e| one("(file)", e.to_string()))?;
        let tree: serde_json::Value = cfg
            .try_deserialize()
            .map_err(|e| one("(file)", e.to_string()))?;
        let mut problems = Vec::new();
        let settings = deserialize_collecting(tree, &mut problems);
        let Some(mut settings) = settings else {
            return Err(ConfigErrors(problems));
        };
        settings.resolve_secret_files(&mut problems);
        settings.validate(&mut problems);
        settings.outreach.load_rules(&mut problems);
        settings.documents.load_templates(&mut problems);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// Reads `*_file` secrets. A file wins over nothing; both set is a mistake.
    fn resolve_secret_files(&mut self, problems: &mut Vec<Problem>) {
        fn read(key: &str, value: &mut Secret, file: &str, problems: &mut Vec<Problem>) {
            if file.is_empty() {
                return;
            }
            if is_set(value) {
                problems.push(Problem {
                    key: key.into(),
                    message: format!("set either {key} or {key}_file, not both"),
                });
                return;
            }
            match std::fs::read_to_string(file) {
                Ok(s) => *value = Secret::from(s.trim_end_matches(['\n', '\r']).to_owned()),
                Err(e) => problems.push(Problem {
                    key: format!("{key}_file"),
                    message: format!("cannot read {file}: {e}"),
                }),
            }
        }
        read(
            "http.api_token",
            &mut self.http.api_token,
            &self.http.api_token_file.clone(),
            problems,
        );
        read(
            "http.webhook_secret",
            &mut self.http.webhook_secret,
            &self.http.webhook_secret_file.clone(),
            problems,
        );
        read(
            "store.password",
            &mut self.store.password,
            &self.store.password_file.clone(),
            problems,
        );
        read(
            "store.patient_key",
            &mut self.store.patient_key,
            &self.store.patient_key_file.clone(),
            problems,
        );
        read(
            "fhir.auth.token",
            &mut self.fhir.auth.token,
            &self.fhir.auth.token_file.clone(),
            problems,
        );
        read(
            "fhir.auth.client_secret",
            &mut self.fhir.auth.client_secret,
            &self.fhir.auth.client_secret_file.clone(),
            problems,
        );
        read(
            "mesh.password",
            &mut self.mesh.password,
            &self.mesh.password_file.clone(),
            problems,
        );
        read(
            "mesh.shared_key",
            &mut self.mesh.shared_key,
            &self.mesh.shared_key_file.clone(),
            problems,
        );
        read(
            "web.client_secret",
            &mut self.web.client_secret,
            &self.web.client_secret_file.clone(),
            problems,
        );
        if !self.amqp.url_file.is_empty() {
            match std::fs::read_to_string(&self.amqp.url_file) {
                Ok(s) => self.amqp.url = s.trim().to_owned(),
                Err(e) => problems.push(Problem {
                    key: "amqp.url_file".into(),
                    message: format!("cannot read {}: {e}", self.amqp.url_file),
                }),
            }
        }
    }

    /// Every section's own checks, in section order.
    fn validate(&self, p: &mut Vec<Problem>) {
        let mut bad = |key: &str, message: String| {
            p.push(Problem {
                key: key.into(),
                message,
            })
        };
        self.service.check(&mut bad);
        self.log.check(&mut bad);
        self.http
            .webhook_tls
            .check(is_set(&self.http.webhook_secret), &mut bad);
        checks::positive_durations(
            &[("http.metrics_refresh", self.http.metrics_refresh)],
            &mut bad,
        );
        self.store.check(&mut bad);
        self.amqp.check(&mut bad);
        self.fhir.check(&mut bad);
        self.poller.check(&mut bad);
        self.outbox.check(&mut bad);
        self.timers.check(&mut bad);
        self.intake.check(&mut bad);
        self.limits.check(&mut bad);
        self.outreach.check(&mut bad);
        self.documents.check(&mut bad);
        self.routing.check(&self.mesh, &mut bad);
        self.mesh.check(&mut bad);
        self.team.check(&mut bad);
        self.web.check(&mut bad);
    }

    /// The effective configuration as TOML, secrets and URL passwords redacted.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.store.url = redact_url(&shown.store.url);
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }

    /// The patient lookup key, `None` when none is configured (`check-config`
    /// accepts that; `run` does not). Its bytes are those of the configured text.
    pub fn patient_key(&self) -> Option<Result<PatientKey, PatientKeyError>> {
        self.store.patient_key()
    }

    /// Path of the SQLite file, when the store is SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.store
            .url
            .strip_prefix("sqlite://")
            .or_else(|| self.store.url.strip_prefix("sqlite:"))
            .map(PathBuf::from)
    }
}

/// Deserialises section by section so that one bad section does not hide
/// problems in the others; unknown keys are collected with their full path.
fn deserialize_collecting(
    tree: serde_json::Value,
    problems: &mut Vec<Problem>,
) -> Option<Settings> {
    let mut unknown = Vec::new();
    let result: Result<Settings, _> = {
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let de = serde_ignored::Deserializer::new(&tree, &mut record);
        serde_path_to_error::deserialize(de)
    };
    for k in unknown {
        problems.push(Problem {
            key: k,
            message: "unknown key (see config/default.toml for every key)".into(),
        });
    }
    match result {
        Ok(s) => Some(s),
        Err(e) => {
            // Report the first type error, then look for more in the other sections.
            let first = e.path().to_string();
            problems.push(Problem {
                key: first.clone(),
                message: e.inner().to_string(),
            });
            let sections = [
                (
                    "service",
                    check_section::<ServiceSettings> as fn(&serde_json::Value) -> Option<Problem>,
                ),
                ("log", check_section::<LogSettings>),
                ("http", check_section::<HttpSettings>),
                ("store", check_section::<StoreSettings>),
                ("amqp", check_section::<AmqpSettings>),
                ("fhir", check_section::<FhirSettings>),
                ("poller", check_section::<PollerSettings>),
                ("outbox", check_section::<OutboxSettings>),
                ("timers", check_section::<TimerSettings>),
                ("clock", check_section::<ClockSettings>),
                ("intake", check_section::<IntakeSettings>),
                ("limits", check_section::<LimitsSettings>),
                ("outreach", check_section::<OutreachSettings>),
                ("documents", check_section::<DocumentSettings>),
                ("routing", check_section::<RoutingSettings>),
                ("mesh", check_section::<MeshSettings>),
                ("team", check_section::<TeamSettings>),
                ("web", check_section::<WebSettings>),
            ];
            for (name, check) in sections {
                if let Some(v) = tree.get(name)
                    && let Some(mut p) = check(v)
                {
                    p.key = format!("{name}.{}", p.key);
                    if p.key != first {
                        problems.push(p);
                    }
                }
            }
            None
        }
    }
}

fn check_section<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Option<Problem> {
    serde_path_to_error::deserialize::<_, T>(v)
        .err()
        .map(|e| Problem {
            key: e.path().to_string(),
            message: e.inner().to_string(),
        })
}

#[cfg(test)]
mod tests;
