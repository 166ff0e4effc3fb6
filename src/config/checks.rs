//! Helpers shared by the sections: secrets, URL checks and redaction, and
//! the small value checks every section uses.

use serde::Serializer;
use std::time::Duration;

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
pub(super) fn serialize_secret<S: Serializer>(v: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if is_set(v) { "<redacted>" } else { "" })
}

pub(super) fn positive(key: &str, v: u64, bad: &mut dyn FnMut(&str, String)) {
    if v == 0 {
        bad(key, "must be greater than 0".into());
    }
}

/// Each duration, by its full key, must not be zero.
pub(super) fn positive_durations(
    durations: &[(&str, Duration)],
    bad: &mut dyn FnMut(&str, String),
) {
    for (k, d) in durations {
        if d.is_zero() {
            bad(
                k,
                "expected a positive duration such as \"500ms\" or \"30s\"".into(),
            );
        }
    }
}

pub(super) fn check_url(key: &str, v: &str, schemes: &[&str], bad: &mut dyn FnMut(&str, String)) {
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

pub(super) fn serialize_url_redacted<S: Serializer>(u: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(u))
}

/// Reads a PEM file at check time, so `check-config` finds a wrong path or a
/// file without the expected block (`CERTIFICATE`, `PRIVATE KEY`) before `run` does.
pub(super) fn check_pem_file(
    key: &str,
    path: &str,
    wants: &str,
    bad: &mut dyn FnMut(&str, String),
) {
    match std::fs::read_to_string(path) {
        Ok(text) if text.contains("-----BEGIN") && text.contains(wants) => {}
        Ok(_) => bad(key, format!("{path} holds no PEM {wants}")),
        Err(e) => bad(key, format!("cannot read {path}: {e}")),
    }
}
