//! Typed, validated settings.
//!
//! `config/default.toml` is embedded in the binary and is both the defaults and
//! the reference documentation. A deployment overrides it with a file
//! (`--config`) and `IPS__SECTION__KEY` environment variables. Loading never
//! stops at the first mistake: unknown keys, wrong types and invalid values
//! are all collected, so `check-config` can list every problem at once.

use crate::domain::source::is_ods_code;
use crate::domain::{PatientKey, PatientKeyError};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// A secret value, held in a `secrecy` box: its `Debug` is redacted, it is
/// zeroed on drop, and reading it takes an explicit `expose_secret()`, so an
/// accidental log line or `{:?}` cannot print it. Empty means "not set".
pub type Secret = secrecy::SecretString;
pub use secrecy::ExposeSecret;

/// Whether a secret was given (empty is the "unset" default of every secret key).
pub fn is_set(s: &Secret) -> bool {
    !s.expose_secret().is_empty()
}

/// `check-config` shows a set secret as `<redacted>` and an unset one as empty.
fn serialize_secret<S: Serializer>(v: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if is_set(v) { "<redacted>" } else { "" })
}

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
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServiceSettings {
    pub name: String,
    pub ods_code: String,
    pub identifier_system: String,
    /// This service's endpoint as BaRS answers name it (`MessageHeader.source.endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
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

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StoreSettings {
    pub url: String,
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub busy_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub inbox_retention: Duration,
    #[serde(with = "humantime_serde")]
    pub outbox_retention: Duration,
    #[serde(with = "humantime_serde")]
    pub housekeeping_interval: Duration,
    #[serde(serialize_with = "serialize_secret")]
    pub password: Secret,
    pub password_file: String,
    /// Key of the patient lookup hashes (HMAC-SHA256); `run` refuses to start without it.
    #[serde(serialize_with = "serialize_secret")]
    pub patient_key: Secret,
    pub patient_key_file: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AmqpSettings {
    #[serde(serialize_with = "serialize_url_redacted")]
    pub url: String,
    pub url_file: String,
    pub inbound_exchange: String,
    pub inbound_bindings: Vec<String>,
    pub inbound_queue: String,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    pub events_exchange: String,
    pub prefetch: u16,
    pub delivery_limit: u32,
    pub single_active_consumer: bool,
    pub batch_size: usize,
    #[serde(with = "humantime_serde")]
    pub batch_wait: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_min_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FhirSettings {
    pub base_url: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub retry_min_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    pub breaker_threshold: u32,
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    pub auth: FhirAuthSettings,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FhirAuthKind {
    None,
    Bearer,
    ClientCredentials,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FhirAuthSettings {
    pub kind: FhirAuthKind,
    #[serde(serialize_with = "serialize_secret")]
    pub token: Secret,
    pub token_file: String,
    pub token_url: String,
    pub client_id: String,
    #[serde(serialize_with = "serialize_secret")]
    pub client_secret: Secret,
    pub client_secret_file: String,
    pub scope: String,
    #[serde(with = "humantime_serde")]
    pub refresh_before: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PollerSettings {
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    #[serde(with = "humantime_serde")]
    pub overlap: Duration,
    pub page_size: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OutboxSettings {
    pub concurrency: usize,
    pub batch_size: u32,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    pub retry: OutboxRetrySettings,
}

/// Retry policy per kind of outbox message.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxRetrySettings {
    /// Writes to the FHIR server (creates, updates, transactions).
    pub fhir: RetrySettings,
    /// Publishes to the events exchange.
    pub events: RetrySettings,
}

/// Exponential backoff with jitter between `min_delay` and `max_delay`;
/// after `max_attempts` the row is parked as failed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    pub max_attempts: u32,
}

/// The durable timer runner.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimerSettings {
    /// The longest the runner sleeps between looks for due timers.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

/// Where the engine reads the time.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClockSettings {
    /// For tests only: a file holding an RFC 3339 instant that is "now".
    /// Empty (the default): the system clock.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct IntakeSettings {
    pub snomed_codes: Vec<String>,
    pub performer_references: Vec<String>,
    pub bars_service_ids: Vec<String>,
    pub cmht_ods_codes: Vec<String>,
    pub cmht_type_codes: Vec<String>,
    pub decline_reasons: Vec<String>,
    pub waiting_list_max: u32,
    pub waiting_list_weeks: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LimitsSettings {
    pub max_message_bytes: usize,
    pub max_json_depth: usize,
    pub max_string_bytes: usize,
    pub max_bundle_entries: usize,
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
const LIST_KEYS: &[&str] = &[
    "amqp.inbound_bindings",
    "intake.snomed_codes",
    "intake.performer_references",
    "intake.bars_service_ids",
    "intake.cmht_ods_codes",
    "intake.cmht_type_codes",
    "intake.decline_reasons",
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

    fn validate(&self, p: &mut Vec<Problem>) {
        let mut bad = |key: &str, message: String| {
            p.push(Problem {
                key: key.into(),
                message,
            })
        };
        if !is_ods_code(&self.service.ods_code) {
            bad(
                "service.ods_code",
                format!(
                    "expected an ODS code (3-6 letters or digits), got {:?}",
                    self.service.ods_code
                ),
            );
        }
        check_url(
            "service.identifier_system",
            &self.service.identifier_system,
            &["http", "https", "urn"],
            &mut bad,
        );
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            bad(
                "log.level",
                format!(
                    "expected a level or tracing directives such as \"info,ips_bridge=debug\", got {:?}",
                    self.log.level
                ),
            );
        }
        let s = &self.store.url;
        if !(s.starts_with("sqlite:")
            || s.starts_with("postgres://")
            || s.starts_with("postgresql://"))
        {
            bad(
                "store.url",
                format!("expected sqlite://PATH or postgres://..., got {s:?}"),
            );
        }
        if is_set(&self.store.patient_key)
            && let Some(Err(e)) = self.patient_key()
        {
            bad("store.patient_key", e.to_string());
        }
        positive(
            "store.max_connections",
            self.store.max_connections as u64,
            &mut bad,
        );
        if !(self.amqp.url.starts_with("amqp://") || self.amqp.url.starts_with("amqps://"))
            || self.amqp.url.parse::<lapin::uri::AMQPUri>().is_err()
        {
            bad(
                "amqp.url",
                format!(
                    "expected an amqp:// or amqps:// URL, got {:?}",
                    redact_url(&self.amqp.url)
                ),
            );
        }
        for (k, v) in [
            ("amqp.inbound_exchange", &self.amqp.inbound_exchange),
            ("amqp.inbound_queue", &self.amqp.inbound_queue),
            ("amqp.dead_letter_exchange", &self.amqp.dead_letter_exchange),
            ("amqp.dead_letter_queue", &self.amqp.dead_letter_queue),
            ("amqp.events_exchange", &self.amqp.events_exchange),
        ] {
            if v.trim().is_empty() {
                bad(k, "must not be empty".into());
            }
        }
        positive("amqp.prefetch", self.amqp.prefetch as u64, &mut bad);
        positive("amqp.batch_size", self.amqp.batch_size as u64, &mut bad);
        positive(
            "amqp.delivery_limit",
            self.amqp.delivery_limit as u64,
            &mut bad,
        );
        if self.amqp.batch_size > self.amqp.prefetch as usize {
            bad(
                "amqp.batch_size",
                format!(
                    "must not exceed amqp.prefetch ({}), or batches never fill",
                    self.amqp.prefetch
                ),
            );
        }
        check_url(
            "fhir.base_url",
            &self.fhir.base_url,
            &["http", "https"],
            &mut bad,
        );
        positive("fhir.max_attempts", self.fhir.max_attempts as u64, &mut bad);
        positive(
            "fhir.breaker_threshold",
            self.fhir.breaker_threshold as u64,
            &mut bad,
        );
        for (k, d) in [
            ("amqp.batch_wait", self.amqp.batch_wait),
            ("amqp.reconnect_min_delay", self.amqp.reconnect_min_delay),
            ("amqp.reconnect_max_delay", self.amqp.reconnect_max_delay),
            ("fhir.timeout", self.fhir.timeout),
            ("fhir.connect_timeout", self.fhir.connect_timeout),
            ("fhir.retry_min_delay", self.fhir.retry_min_delay),
            ("fhir.retry_max_delay", self.fhir.retry_max_delay),
            ("fhir.breaker_cooldown", self.fhir.breaker_cooldown),
            ("poller.interval", self.poller.interval),
            ("outbox.poll_interval", self.outbox.poll_interval),
            ("outbox.lease", self.outbox.lease),
            (
                "outbox.retry.fhir.min_delay",
                self.outbox.retry.fhir.min_delay,
            ),
            (
                "outbox.retry.fhir.max_delay",
                self.outbox.retry.fhir.max_delay,
            ),
            (
                "outbox.retry.events.min_delay",
                self.outbox.retry.events.min_delay,
            ),
            (
                "outbox.retry.events.max_delay",
                self.outbox.retry.events.max_delay,
            ),
            ("timers.poll_interval", self.timers.poll_interval),
            ("store.busy_timeout", self.store.busy_timeout),
            ("store.inbox_retention", self.store.inbox_retention),
            ("store.outbox_retention", self.store.outbox_retention),
            (
                "store.housekeeping_interval",
                self.store.housekeeping_interval,
            ),
        ] {
            if d.is_zero() {
                bad(
                    k,
                    "expected a positive duration such as \"500ms\" or \"30s\"".into(),
                );
            }
        }
        let a = &self.fhir.auth;
        match a.kind {
            FhirAuthKind::None => {}
            FhirAuthKind::Bearer if !is_set(&a.token) => bad(
                "fhir.auth.token",
                "kind = \"bearer\" needs a token (fhir.auth.token or fhir.auth.token_file)".into(),
            ),
            FhirAuthKind::Bearer => {}
            FhirAuthKind::ClientCredentials => {
                check_url(
                    "fhir.auth.token_url",
                    &a.token_url,
                    &["http", "https"],
                    &mut bad,
                );
                if a.client_id.is_empty() {
                    bad(
                        "fhir.auth.client_id",
                        "kind = \"client-credentials\" needs a client_id".into(),
                    );
                }
                if !is_set(&a.client_secret) {
                    bad("fhir.auth.client_secret", "kind = \"client-credentials\" needs a client_secret (or client_secret_file)".into());
                }
            }
        }
        positive("poller.page_size", self.poller.page_size as u64, &mut bad);
        positive(
            "outbox.concurrency",
            self.outbox.concurrency as u64,
            &mut bad,
        );
        positive("outbox.batch_size", self.outbox.batch_size as u64, &mut bad);
        for (k, r) in [
            ("outbox.retry.fhir", &self.outbox.retry.fhir),
            ("outbox.retry.events", &self.outbox.retry.events),
        ] {
            positive(
                &format!("{k}.max_attempts"),
                r.max_attempts as u64,
                &mut bad,
            );
            if r.min_delay > r.max_delay {
                bad(
                    &format!("{k}.min_delay"),
                    "must not be longer than max_delay".into(),
                );
            }
        }
        // The lease is renewed every third of itself while a row is in flight;
        // shorter than a second would be mostly renewals.
        if self.outbox.lease < Duration::from_secs(1) {
            bad(
                "outbox.lease",
                "expected at least \"1s\" (leases are renewed while a delivery runs)".into(),
            );
        }
        for c in &self.intake.snomed_codes {
            if c.len() < 6 || c.len() > 18 || !c.bytes().all(|b| b.is_ascii_digit()) {
                bad(
                    "intake.snomed_codes",
                    format!("expected SNOMED CT concept ids (6-18 digits), got {c:?}"),
                );
            }
        }
        if self.intake.snomed_codes.is_empty()
            && self.intake.performer_references.is_empty()
            && self.intake.bars_service_ids.is_empty()
        {
            bad("intake", "at least one of snomed_codes, performer_references or bars_service_ids is needed to recognise IPS referrals".into());
        }
        for c in &self.intake.cmht_ods_codes {
            if !is_ods_code(c) {
                bad(
                    "intake.cmht_ods_codes",
                    format!("expected ODS codes (3-6 letters or digits), got {c:?}"),
                );
            }
        }
        if self.intake.decline_reasons.is_empty() {
            bad(
                "intake.decline_reasons",
                "at least one decline reason is needed".into(),
            );
        }
        positive(
            "limits.max_message_bytes",
            self.limits.max_message_bytes as u64,
            &mut bad,
        );
        positive(
            "limits.max_json_depth",
            self.limits.max_json_depth as u64,
            &mut bad,
        );
        positive(
            "limits.max_string_bytes",
            self.limits.max_string_bytes as u64,
            &mut bad,
        );
        positive(
            "limits.max_bundle_entries",
            self.limits.max_bundle_entries as u64,
            &mut bad,
        );
        if self.limits.max_json_depth > 120 {
            bad(
                "limits.max_json_depth",
                "must be at most 120 (serde_json's recursion limit is 128)".into(),
            );
        }
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
        is_set(&self.store.patient_key)
            .then(|| PatientKey::from_bytes(self.store.patient_key.expose_secret().as_bytes()))
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

fn positive(key: &str, v: u64, bad: &mut impl FnMut(&str, String)) {
    if v == 0 {
        bad(key, "must be greater than 0".into());
    }
}

fn check_url(key: &str, v: &str, schemes: &[&str], bad: &mut impl FnMut(&str, String)) {
    match url::Url::parse(v) {
        Ok(u) if schemes.contains(&u.scheme()) => {}
        Ok(u) => bad(
            key,
            format!(
                "expected a URL with scheme {}, got scheme {:?}",
                schemes.join(" or "),
                u.scheme()
            ),
        ),
        Err(e) => bad(
            key,
            format!("expected a URL such as https://host/path, got {v:?} ({e})"),
        ),
    }
}

/// Replaces the password of a URL, if any, by `<redacted>`.
pub fn redact_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("<redacted>"));
            parsed.to_string()
        }
        _ => u.to_owned(),
    }
}

fn serialize_url_redacted<S: Serializer>(u: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::load_from(None, env(&[])).expect("embedded defaults must validate");
        assert_eq!(s.amqp.inbound_queue, "ips-bridge.inbound");
    }

    #[test]
    fn environment_overrides_including_lists() {
        let s = Settings::load_from(
            None,
            env(&[
                ("IPS__AMQP__PREFETCH", "50"),
                ("IPS__AMQP__BATCH_SIZE", "10"),
                ("IPS__INTAKE__BARS_SERVICE_IDS", "1,2"),
            ]),
        )
        .unwrap();
        assert_eq!(s.amqp.prefetch, 50);
        assert_eq!(s.intake.bars_service_ids, vec!["1", "2"]);
        // A one-element list that looks like a number stays a list of strings.
        let s = Settings::load_from(
            None,
            env(&[("IPS__INTAKE__BARS_SERVICE_IDS", "2000072489")]),
        )
        .unwrap();
        assert_eq!(s.intake.bars_service_ids, vec!["2000072489"]);
    }

    #[test]
    fn lists_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, "[amqp]\nprefetchh = 3\n[fhir]\nbase_url = \"not a url\"\n[service]\nods_code = \"!!\"\n").unwrap();
        let err = Settings::load_from(Some(&f), env(&[])).unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"amqp.prefetchh"), "{err}");
        assert!(keys.contains(&"fhir.base_url"), "{err}");
        assert!(keys.contains(&"service.ods_code"), "{err}");
    }

    #[test]
    fn type_errors_in_two_sections_are_both_reported() {
        let err = Settings::load_from(
            None,
            env(&[
                ("IPS__AMQP__PREFETCH", "lots"),
                ("IPS__POLLER__INTERVAL", "soon"),
            ]),
        )
        .unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"amqp.prefetch"), "{err}");
        assert!(keys.contains(&"poller.interval"), "{err}");
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "s3cret-token\n").unwrap();
        let k = dir.path().join("patient.key");
        std::fs::write(&k, "patient-key-0123456789abcdef0123456789\n").unwrap();
        let s = Settings::load_from(
            None,
            env(&[
                ("IPS__STORE__PATIENT_KEY_FILE", k.to_str().unwrap()),
                ("IPS__HTTP__API_TOKEN_FILE", f.to_str().unwrap()),
                ("IPS__AMQP__URL", "amqp://u:pw-xyz@host:5672/%2f"),
            ]),
        )
        .unwrap();
        assert_eq!(s.http.api_token.expose_secret(), "s3cret-token");
        let shown = s.redacted_toml();
        assert!(
            !shown.contains("s3cret-token")
                && !shown.contains("pw-xyz")
                && !shown.contains("patient-key-0123"),
            "{shown}"
        );
        assert!(shown.contains("patient_key = \"<redacted>\""), "{shown}");
        assert!(s.patient_key().is_some_and(|k| k.is_ok()));
        assert!(!format!("{s:?}").contains("s3cret-token"));
    }

    #[test]
    fn a_short_patient_key_is_a_problem_and_none_is_not() {
        let err =
            Settings::load_from(None, env(&[("IPS__STORE__PATIENT_KEY", "short")])).unwrap_err();
        assert!(err.0.iter().any(|p| p.key == "store.patient_key"), "{err}");
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert!(
            s.patient_key().is_none(),
            "check-config accepts no key; run refuses"
        );
    }
}
