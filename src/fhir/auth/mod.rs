//! Credentials for the FHIR server: none, a static bearer token, or an OAuth2
//! client-credentials token, cached and refreshed before it expires.
//!
//! The client proves who it is to the token endpoint in one of two ways:
//! - `client-credentials`: a shared `client_secret` in the form;
//! - `private-key-jwt`: a short-lived JWT signed with the bridge's private key
//!   (RFC 7523 client assertion), as NHS England's application-restricted APIs
//!   and SMART Backend Services require. The authorisation server only holds
//!   the public key, so nothing it stores lets anyone act as the bridge.
//!
//! Both kinds share the token request and the cache ([`cache`]); only the
//! form that authenticates the client differs ([`jwt`] signs the assertion).

mod cache;
pub mod jwt;

pub use crate::config::SigningKey;

use super::error::FhirError;
use crate::config::{ExposeSecret, FhirAuthKind, FhirAuthSettings, Secret};
use cache::TokenCache;
use jwt::Assertion;
use std::fmt;

/// The `client_assertion_type` of a signed-JWT client assertion (RFC 7523 §2.2).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub enum Auth {
    None,
    Bearer(Secret),
    /// Boxed: the token endpoint's state is large beside the other variants.
    OAuth2(Box<OAuth2>),
}

/// OAuth2 client-credentials grant against `token_url`, with a cached token.
pub struct OAuth2 {
    token_url: String,
    scope: String,
    client: ClientAuth,
    cache: TokenCache,
}

/// How the client authenticates itself in the token request.
enum ClientAuth {
    Secret { client_id: String, secret: Secret },
    Jwt(Assertion),
}

impl Auth {
    /// Builds the credentials from settings. For `private-key-jwt` the private
    /// key is read and parsed here, once, at start-up: a bad key stops the
    /// daemon before it runs rather than at its first FHIR request.
    pub fn from_settings(s: &FhirAuthSettings) -> Result<Self, FhirError> {
        let oauth2 = |client: ClientAuth| {
            Auth::OAuth2(Box::new(OAuth2 {
                token_url: s.token_url.clone(),
                scope: s.scope.clone(),
                client,
                cache: TokenCache::new(s.refresh_before),
            }))
        };
        Ok(match s.kind {
            FhirAuthKind::None => Auth::None,
            FhirAuthKind::Bearer => Auth::Bearer(s.token.clone()),
            FhirAuthKind::ClientCredentials => oauth2(ClientAuth::Secret {
                client_id: s.client_id.clone(),
                secret: s.client_secret.clone(),
            }),
            FhirAuthKind::PrivateKeyJwt => {
                let key = SigningKey::load(std::path::Path::new(&s.key_file), s.algorithm)
                    .map_err(|e| FhirError::Auth(format!("fhir.auth.key_file: {e}")))?;
                oauth2(ClientAuth::Jwt(Assertion::new(s, key)))
            }
        })
    }

    /// The `Authorization` header value, fetching a token when needed.
    pub async fn header(&self, http: &reqwest::Client) -> Result<Option<String>, FhirError> {
        match self {
            Auth::None => Ok(None),
            Auth::Bearer(t) => Ok(Some(format!("Bearer {}", t.expose_secret()))),
            Auth::OAuth2(o) => o.cache.header(|| o.request_token(http)).await.map(Some),
        }
    }

    /// Forgets a cached token after the server refused it (401).
    pub async fn invalidate(&self) {
        if let Auth::OAuth2(o) = self {
            o.cache.invalidate().await;
        }
    }
}

impl OAuth2 {
    /// One token request. A signed assertion is made fresh for each request
    /// (new `jti`, `iat`, `exp`): servers refuse a replayed `jti`.
    async fn request_token(&self, http: &reqwest::Client) -> Result<cache::Token, FhirError> {
        let assertion;
        let mut form = vec![("grant_type", "client_credentials")];
        match &self.client {
            ClientAuth::Secret { client_id, secret } => {
                form.push(("client_id", client_id.as_str()));
                form.push(("client_secret", secret.expose_secret()));
            }
            ClientAuth::Jwt(a) => {
                assertion = a.sign()?;
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", assertion.expose_secret()));
            }
        }
        if !self.scope.is_empty() {
            form.push(("scope", self.scope.as_str()));
        }
        cache::request_token(http, &self.token_url, &form).await
    }
}

/// Names the kind and endpoint only: no secret, key, assertion or token.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer(<redacted>)"),
            Auth::OAuth2(o) => {
                let kind = match &o.client {
                    ClientAuth::Secret { .. } => "client-credentials",
                    ClientAuth::Jwt(_) => "private-key-jwt",
                };
                f.debug_struct("Auth::OAuth2")
                    .field("kind", &kind)
                    .field("token_url", &o.token_url)
                    .finish_non_exhaustive()
            }
        }
    }
}
