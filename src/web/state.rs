//! [`WebState`]: what the pages share (settings, sessions, the OIDC client,
//! the roster of staff who signed in).

use super::oidc::{Oidc, OidcError};
use super::page::{Chrome, Section};
use super::role::{Staff, StaffSummary};
use super::session::{MemorySessions, Session, SessionError, SessionStore, TokenKey};
use crate::config::WebSettings;
use axum::http::{HeaderMap, HeaderValue, header};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the staff pages: {0}")]
pub struct WebError(String);

/// The cookies' names. With `Secure` the session cookie takes the
/// `__Host-` prefix, which browsers accept only from HTTPS, for the whole
/// host and path `/`: no other subdomain or path can set or shadow it.
pub(super) struct CookieNames {
    pub session: &'static str,
    pub login: &'static str,
    pub secure: bool,
}

pub struct WebState {
    pub(super) settings: WebSettings,
    pub(super) sessions: Arc<dyn SessionStore>,
    pub(super) oidc: Oidc,
    pub(super) cookies: CookieNames,
    /// `scheme://host[:port]` of `redirect_url`: the only origin form
    /// posts are accepted from.
    pub(super) origin: String,
    pub(super) csp: HeaderValue,
    roster: Mutex<BTreeMap<String, StaffSummary>>,
    /// Where sign-ins are recorded for good (the `staff` table): the team
    /// roster the caseload pages and assignments use outlives a restart.
    pub(super) staff_store: Option<Arc<dyn crate::store::TeamStore>>,
}

impl WebState {
    /// With sessions in memory (see [`MemorySessions`]).
    pub fn new(settings: &WebSettings) -> Result<WebState, WebError> {
        Self::with_sessions(settings, Arc::new(MemorySessions::default()))
    }

    pub fn with_sessions(
        settings: &WebSettings,
        sessions: Arc<dyn SessionStore>,
    ) -> Result<WebState, WebError> {
        let origin_of = |key: &str, u: &str| {
            url::Url::parse(u)
                .map(|u| u.origin().ascii_serialization())
                .map_err(|e| WebError(format!("{key}: {e}")))
        };
        let origin = origin_of("web.redirect_url", &settings.redirect_url)?;
        let issuer_origin = origin_of("web.issuer", &settings.issuer)?;
        // Sign-out may redirect a form post to the provider: form-action
        // names its origin, or the browser would stop there.
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             font-src 'self' https://assets.nhs.uk; form-action 'self' {issuer_origin}; \
             frame-ancestors 'none'"
        );
        let csp = HeaderValue::from_str(&csp).map_err(|e| WebError(format!("CSP: {e}")))?;
        let cookies = if settings.cookie_secure {
            CookieNames {
                session: "__Host-ips-session",
                login: "__Host-ips-login",
                secure: true,
            }
        } else {
            CookieNames {
                session: "ips-session",
                login: "ips-login",
                secure: false,
            }
        };
        Ok(WebState {
            oidc: Oidc::new(settings).map_err(WebError)?,
            settings: settings.clone(),
            sessions,
            cookies,
            origin,
            csp,
            roster: Mutex::new(BTreeMap::new()),
            staff_store: None,
        })
    }

    /// Records sign-ins in the store's roster as well as in memory.
    pub fn with_staff_store(mut self, store: Arc<dyn crate::store::TeamStore>) -> WebState {
        self.staff_store = Some(store);
        self
    }

    pub fn settings(&self) -> &WebSettings {
        &self.settings
    }

    /// Reads the provider's discovery document now (at start), so the first
    /// sign-in does not wait for it. A failure is not fatal: sign-in retries.
    pub async fn discover(&self) -> Result<(), OidcError> {
        self.oidc.discover().await
    }

    /// Everyone who signed in since the bridge started, by subject, with
    /// the roles and name of their last sign-in. Held in memory for now.
    pub fn roster(&self) -> Vec<StaffSummary> {
        self.roster_lock().values().cloned().collect()
    }

    pub(super) fn record_sign_in(&self, staff: &Staff, at: OffsetDateTime) {
        self.roster_lock().insert(
            staff.sub.clone(),
            StaffSummary {
                sub: staff.sub.clone(),
                name: staff.name.clone(),
                roles: staff.roles.clone(),
                last_seen: at,
            },
        );
    }

    fn roster_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, StaffSummary>> {
        // Each change is one insert: a poisoned lock still holds a whole map.
        self.roster.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The layout's data for a signed-in page.
    pub fn chrome(&self, staff: &Staff, active: Section) -> Chrome {
        Chrome::for_staff(&self.settings.service_name, staff, active)
    }

    /// The layout's data for a page seen without signing in.
    pub fn public_chrome(&self) -> Chrome {
        Chrome::public(&self.settings.service_name)
    }

    /// The session the request's cookie names, if it exists and has not expired.
    pub(super) async fn session(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<(TokenKey, Session)>, SessionError> {
        let Some(token) = cookie(headers, self.cookies.session) else {
            return Ok(None);
        };
        let key = TokenKey::of(&token);
        let found = self.sessions.get(&key, OffsetDateTime::now_utc()).await?;
        Ok(found.map(|s| (key, s)))
    }
}

/// The value of the named cookie in the request's `Cookie` headers.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v.to_owned()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}
