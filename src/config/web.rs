//! `[web]`: the staff pages, how staff sign in (OpenID Connect) and which
//! of the identity provider's roles count as which of ours.
//!
//! Everything is checked only when `enabled`: a bridge that serves no pages
//! must not need an identity provider, and one that does must be told at
//! `check-config` about every missing piece, not at the first sign-in.

use super::checks::{Secret, check_url, is_set, positive_durations, serialize_secret};
use crate::domain::staff::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The files of the NHS.UK frontend the pages need, relative to `assets_dir`.
pub const FRONTEND_FILES: [&str; 3] = [
    "nhsuk-frontend.min.css",
    "nhsuk-frontend.min.js",
    "assets/images/favicon.svg",
];

/// The one callback path the pages serve; `redirect_url` must end in it.
pub const CALLBACK_PATH: &str = "/auth/callback";

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WebSettings {
    pub enabled: bool,
    /// This service's callback as the identity provider knows it; its
    /// origin is also the origin the pages accept form posts from.
    pub redirect_url: String,
    /// The provider's issuer; its discovery document is read from
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    #[serde(serialize_with = "serialize_secret")]
    pub client_secret: Secret,
    pub client_secret_file: String,
    pub scopes: Vec<String>,
    /// The ID token claim holding the user's roles: a string or a list of
    /// strings. A dotted path (`a.b`) reads `b` of the object, or of every
    /// object of the list, under `a` (CIS2's `nhsid_nrbac_roles.role_code`).
    pub roles_claim: String,
    /// Claim value → the roles it grants here.
    pub role_values: BTreeMap<String, Vec<Role>>,
    /// Roles that may sign in at all; anyone else sees "not authorised".
    pub allowed_roles: Vec<Role>,
    /// A session ends this long after sign-in, however active.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// `Secure` on the cookies. Only a plain-HTTP test or demo turns it off.
    pub cookie_secure: bool,
    /// On sign-out, also end the session at the provider when it advertises
    /// an `end_session_endpoint` (RP-initiated logout).
    pub sign_out_at_provider: bool,
    /// `dist/nhsuk` of the installed `nhsuk-frontend` package.
    pub assets_dir: PathBuf,
    pub service_name: String,
}

impl WebSettings {
    /// The roles a set of claim values grants, before `allowed_roles`.
    pub fn roles_for<'a>(&self, values: impl IntoIterator<Item = &'a str>) -> Vec<Role> {
        values
            .into_iter()
            .filter_map(|v| self.role_values.get(v))
            .flatten()
            .copied()
            .collect()
    }

    pub(super) fn check(&self, bad: &mut dyn FnMut(&str, String)) {
        if !self.enabled {
            return;
        }
        check_url(
            "web.redirect_url",
            &self.redirect_url,
            &["http", "https"],
            bad,
        );
        if let Ok(u) = url::Url::parse(&self.redirect_url)
            && u.path() != CALLBACK_PATH
        {
            bad(
                "web.redirect_url",
                format!(
                    "must end in {CALLBACK_PATH} (the pages' callback), e.g. https://ips.example.nhs.uk{CALLBACK_PATH}"
                ),
            );
        }
        check_url("web.issuer", &self.issuer, &["http", "https"], bad);
        if self.client_id.trim().is_empty() {
            bad(
                "web.client_id",
                "enabled pages need the client id registered with the identity provider".into(),
            );
        }
        if !is_set(&self.client_secret) {
            bad(
                "web.client_secret",
                "enabled pages need a client secret (web.client_secret or web.client_secret_file)"
                    .into(),
            );
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            bad("web.scopes", "must include \"openid\"".into());
        }
        if self.roles_claim.split('.').any(|p| p.trim().is_empty()) {
            bad(
                "web.roles_claim",
                "must name a claim, e.g. \"roles\"".into(),
            );
        }
        if self.allowed_roles.is_empty() {
            bad(
                "web.allowed_roles",
                "nobody could sign in: list at least one role".into(),
            );
        }
        if !self
            .role_values
            .values()
            .flatten()
            .any(|r| self.allowed_roles.contains(r))
        {
            bad(
                "web.role_values",
                "no claim value grants an allowed role: nobody could sign in".into(),
            );
        }
        positive_durations(&[("web.session_ttl", self.session_ttl)], bad);
        if self.service_name.trim().is_empty() {
            bad("web.service_name", "must not be empty".into());
        }
        let missing: Vec<&str> = FRONTEND_FILES
            .into_iter()
            .filter(|f| !self.assets_dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            bad(
                "web.assets_dir",
                format!(
                    "{} lacks {} (install the NHS.UK frontend: `npm ci` in deploy/local/web-assets, then point here at node_modules/nhsuk-frontend/dist/nhsuk)",
                    self.assets_dir.display(),
                    missing.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use crate::domain::staff::Role;

    fn load(pairs: &[(&str, &str)], file: Option<&str>) -> Result<Settings, Vec<String>> {
        let dir = tempfile::tempdir().map_err(|e| vec![e.to_string()])?;
        let path = dir.path().join("c.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).map_err(|e| vec![e.to_string()])?;
        }
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::load_from(file.map(|_| path.as_path()), env)
            .map_err(|e| e.0.into_iter().map(|p| p.key).collect())
    }

    #[test]
    fn disabled_by_default_and_then_nothing_is_required() {
        let s = load(&[], None).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!s.web.enabled);
        assert_eq!(
            s.web.allowed_roles,
            [Role::Specialist, Role::TeamLead, Role::Admin]
        );
    }

    #[test]
    fn enabled_lists_every_missing_piece() {
        let keys = load(
            &[
                ("IPS__WEB__ENABLED", "true"),
                ("IPS__WEB__ASSETS_DIR", "/nonexistent"),
                ("IPS__WEB__SCOPES", "profile"),
            ],
            None,
        )
        .err()
        .unwrap_or_default();
        for k in [
            "web.redirect_url",
            "web.issuer",
            "web.client_id",
            "web.client_secret",
            "web.scopes",
            "web.assets_dir",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
        }
    }

    #[test]
    fn role_values_keep_their_case_and_unknown_roles_are_refused() {
        let file = "[web.role_values]\n\"S8000:G8000:R8001\" = [\"specialist\"]\nadmin = []\n";
        let s = load(&[], Some(file)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(s.web.roles_for(["S8000:G8000:R8001"]), [Role::Specialist]);
        assert!(s.web.roles_for(["admin"]).is_empty());
        assert_eq!(s.web.roles_for(["team-lead"]), [Role::TeamLead]);
        let bad = load(&[], Some("[web.role_values]\nx = [\"boss\"]\n"))
            .err()
            .unwrap_or_default();
        assert!(
            bad.iter().any(|k| k.starts_with("web.role_values")),
            "{bad:?}"
        );
    }

    #[test]
    fn the_callback_path_is_checked() {
        let keys = load(
            &[
                ("IPS__WEB__ENABLED", "true"),
                ("IPS__WEB__REDIRECT_URL", "https://ips.example/callback"),
            ],
            None,
        )
        .err()
        .unwrap_or_default();
        assert!(keys.iter().any(|k| k == "web.redirect_url"), "{keys:?}");
    }
}
