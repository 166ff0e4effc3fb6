//! Credentials for the FHIR server: none, a static bearer token, or an OAuth2
//! client-credentials token (SMART backend services style) that is cached and
//! refreshed before it expires.

use super::error::FhirError;
use crate::config::{ExposeSecret, FhirAuthKind, FhirAuthSettings, Secret};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub enum Auth {
    None,
    Bearer(Secret),
    ClientCredentials(ClientCredentials),
}

pub struct ClientCredentials {
    token_url: String,
    client_id: String,
    client_secret: Secret,
    scope: String,
    refresh_before: Duration,
    cached: Mutex<Option<(Secret, Instant)>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Auth {
    pub fn from_settings(s: &FhirAuthSettings) -> Self {
        match s.kind {
            FhirAuthKind::None => Auth::None,
            FhirAuthKind::Bearer => Auth::Bearer(s.token.clone()),
            FhirAuthKind::ClientCredentials => Auth::ClientCredentials(ClientCredentials {
                token_url: s.token_url.clone(),
                client_id: s.client_id.clone(),
                client_secret: s.client_secret.clone(),
                scope: s.scope.clone(),
                refresh_before: s.refresh_before,
                cached: Mutex::new(None),
            }),
        }
    }

    /// The `Authorization` header value, fetching a token when needed.
    pub async fn header(&self, http: &reqwest::Client) -> Result<Option<String>, FhirError> {
        match self {
            Auth::None => Ok(None),
            Auth::Bearer(t) => Ok(Some(format!("Bearer {}", t.expose_secret()))),
            Auth::ClientCredentials(cc) => cc.header(http).await.map(Some),
        }
    }

    /// Forgets a cached token after the server refused it (401).
    pub async fn invalidate(&self) {
        if let Auth::ClientCredentials(cc) = self {
            *cc.cached.lock().await = None;
        }
    }
}

impl ClientCredentials {
    async fn header(&self, http: &reqwest::Client) -> Result<String, FhirError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, valid_until)) = cached.as_ref()
            && Instant::now() < *valid_until
        {
            return Ok(format!("Bearer {}", token.expose_secret()));
        }
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
        ];
        if !self.scope.is_empty() {
            form.push(("scope", self.scope.as_str()));
        }
        let body = serde_urlencode(&form);
        let resp = http
            .post(&self.token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| FhirError::Auth(format!("token endpoint unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Err(FhirError::Auth(format!(
                "token endpoint answered {}",
                resp.status()
            )));
        }
        let t: TokenResponse = resp
            .json()
            .await
            .map_err(|e| FhirError::Auth(format!("token response is not a token: {e}")))?;
        let lifetime = Duration::from_secs(t.expires_in.unwrap_or(300));
        let valid_until = Instant::now() + lifetime.saturating_sub(self.refresh_before);
        let header = format!("Bearer {}", t.access_token);
        *cached = Some((Secret::from(t.access_token), valid_until));
        Ok(header)
    }
}

fn serde_urlencode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}
