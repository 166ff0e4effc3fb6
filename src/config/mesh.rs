//! `[mesh]` and `[routing]`: NHS England's Message Exchange for Social care
//! and Health (MESH), over which GP Connect Send Document reaches GP
//! practices, and which documents go that way.

use super::checks::{
    Secret, check_pem_file, check_url, is_set, positive, positive_durations, serialize_secret,
};
use crate::domain::documents::delivery::{Route, RouteRule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MeshSettings {
    /// Off: no MESH client, no inbox polling (a document routed to MESH is
    /// refused by `check-config`).
    pub enabled: bool,
    /// The MESH API's base URL, e.g. `https://msg.intspineservices.nhs.uk`.
    pub url: String,
    /// The bridge's own mailbox id.
    pub mailbox: String,
    #[serde(serialize_with = "serialize_secret")]
    pub password: Secret,
    pub password_file: String,
    /// The environment's shared secret, keying the `NHSMESH` HMAC.
    #[serde(serialize_with = "serialize_secret")]
    pub shared_key: Secret,
    pub shared_key_file: String,
    /// PEM files: the mailbox's client certificate and key (MESH uses mutual
    /// TLS), and the CA that signed the server's certificate. Empty: none.
    pub client_cert_file: String,
    pub client_key_file: String,
    pub ca_cert_file: String,
    /// How the ITK3 message is written: `xml` (ITK3 receivers SHALL take
    /// it) or `json`.
    pub format: crate::render::send_document::Format,
    /// `mex-WorkflowID` of a sent document, and of the acknowledgements that come back.
    pub workflow_id: String,
    pub ack_workflow_id: String,
    /// A message over this size is sent in chunks of this size.
    pub chunk_bytes: u64,
    /// A message over this size is never sent (MESH takes under 100 MB).
    pub max_message_bytes: u64,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Between looks at the bridge's inbox (MESH asks for no more than one a
    /// minute in production, less often is fine).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// After refused credentials, the inbox is not asked again for this long.
    #[serde(with = "humantime_serde")]
    pub auth_backoff: Duration,
    /// A sent document with no business acknowledgement after this long is
    /// `unacknowledged` (event, metric, case API).
    #[serde(with = "humantime_serde")]
    pub ack_within: Duration,
    /// A practice with no mailbox in `mailboxes` (or no practice known) is
    /// addressed with MESH's automated routing to the patient's registered
    /// practice (`mex-To` of NHS number, date of birth and surname).
    pub patient_routing: bool,
    /// GP practice ODS code → that practice's MESH mailbox id.
    #[serde(default)]
    pub mailboxes: BTreeMap<String, String>,
}

impl MeshSettings {
    /// The practice's mailbox, by its ODS code in any case.
    pub fn mailbox_for(&self, ods: &str) -> Option<&str> {
        mailbox_in(&self.mailboxes, ods)
    }

    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        if !self.enabled {
            return;
        }
        check_url("mesh.url", &self.url, &["http", "https"], bad);
        if !valid_mailbox(&self.mailbox) {
            bad(
                "mesh.mailbox",
                "expected the bridge's MESH mailbox id (letters and digits, e.g. X26ABC1)".into(),
            );
        }
        for (key, s) in [
            ("mesh.password", &self.password),
            ("mesh.shared_key", &self.shared_key),
        ] {
            if !is_set(s) {
                bad(
                    key,
                    format!("is required when mesh.enabled (or {key}_file)"),
                );
            }
        }
        if self.client_cert_file.is_empty() != self.client_key_file.is_empty() {
            bad(
                "mesh.client_cert_file",
                "set both mesh.client_cert_file and mesh.client_key_file, or neither".into(),
            );
        }
        // The files are read here so `check-config` finds a wrong path or
        // a file that holds no PEM before `run` does.
        for (key, path, wants) in [
            (
                "mesh.client_cert_file",
                &self.client_cert_file,
                "CERTIFICATE",
            ),
            ("mesh.client_key_file", &self.client_key_file, "PRIVATE KEY"),
            ("mesh.ca_cert_file", &self.ca_cert_file, "CERTIFICATE"),
        ] {
            if !path.is_empty() {
                check_pem_file(key, path, wants, bad);
            }
        }
        for (key, id) in [
            ("mesh.workflow_id", &self.workflow_id),
            ("mesh.ack_workflow_id", &self.ack_workflow_id),
        ] {
            if id.trim().is_empty() {
                bad(key, "must not be empty".into());
            }
        }
        positive("mesh.chunk_bytes", self.chunk_bytes, bad);
        positive("mesh.max_message_bytes", self.max_message_bytes, bad);
        positive_durations(
            &[
                ("mesh.timeout", self.timeout),
                ("mesh.poll_interval", self.poll_interval),
                ("mesh.auth_backoff", self.auth_backoff),
                ("mesh.ack_within", self.ack_within),
            ],
            bad,
        );
        for (ods, mb) in &self.mailboxes {
            if !valid_mailbox(mb) {
                bad(
                    &format!("mesh.mailboxes.{ods}"),
                    "expected a MESH mailbox id (letters and digits)".into(),
                );
            }
        }
    }
}

/// A practice's mailbox in an ODS-code-to-mailbox map. ODS codes are
/// compared without regard to case (environment variables arrive in lower case).
pub fn mailbox_in<'a>(map: &'a BTreeMap<String, String>, ods: &str) -> Option<&'a str> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(ods))
        .map(|(_, v)| v.as_str())
}

fn valid_mailbox(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `[routing]`: which way each kind of document goes, per GP practice.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RoutingSettings {
    pub default: Route,
    /// Read in order; the first that matches the document's kind and the
    /// patient's practice wins.
    #[serde(default)]
    pub rules: Vec<RouteRule>,
}

impl RoutingSettings {
    pub(super) fn check(&self, mesh: &MeshSettings, bad: &mut dyn FnMut(&str, String)) {
        let mut mesh_used = self.default.sends_mesh();
        for (i, r) in self.rules.iter().enumerate() {
            mesh_used |= r.route.sends_mesh();
            if let Some(p) = &r.practice
                && !(3..=10).contains(&p.len())
            {
                bad(
                    &format!("routing.rules[{i}].practice"),
                    "expected an ODS code such as A81001".into(),
                );
            }
            if r.route.sends_mesh()
                && mesh.enabled
                && !mesh.patient_routing
                && let Some(p) = &r.practice
                && mesh.mailbox_for(p).is_none()
            {
                bad(
                    &format!("routing.rules[{i}]"),
                    format!("routes practice {p} to MESH but mesh.mailboxes has no mailbox for it"),
                );
            }
        }
        if mesh_used && !mesh.enabled {
            bad(
                "routing",
                "a route sends documents over MESH but mesh.enabled is false".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_lookup_ignores_the_case_of_the_ods_code() {
        let mut s: MeshSettings = toml::from_str(
            crate::config::DEFAULT_TOML
                .split("[mesh]")
                .nth(1)
                .and_then(|t| t.split("\n[").next())
                .unwrap(),
        )
        .unwrap();
        s.mailboxes.insert("A81001".into(), "X26ABC2".into());
        assert_eq!(s.mailbox_for("a81001"), Some("X26ABC2"));
        assert_eq!(s.mailbox_for("B82002"), None);
    }

    #[test]
    fn mailbox_ids_are_letters_and_digits() {
        assert!(valid_mailbox("X26ABC1"));
        assert!(!valid_mailbox(""));
        assert!(!valid_mailbox("X26/../1"));
    }
}
