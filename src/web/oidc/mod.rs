//! Staff sign-in with OpenID Connect, through the `openidconnect` crate:
//! authorisation code flow with PKCE (S256), `state` and `nonce` checked,
//! the ID token's signature, issuer, audience and expiry verified.
//!
//! The provider's discovery document (and its signing keys) is read lazily
//! and kept: a provider that is down when the bridge starts must not stop
//! the bridge's other work, so the first sign-in tries again. A signature
//! that no known key verifies drops the cached document, so keys the
//! provider rotated are fetched at the next sign-in.

mod claims;
mod http;

pub use claims::ExtraClaims;
pub use http::OidcHttp;

use super::session::PendingLogin;
use crate::config::{ExposeSecret, WebSettings};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreResponseType,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken,
    IdTokenFields, IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse as _,
};
use std::str::FromStr;
use std::sync::Arc;
use time::OffsetDateTime;
use url::Url;

type IdFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;
type OidcIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
/// A client made from discovery: authorisation endpoint known, token and
/// userinfo endpoints as advertised.
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long a sign-in may take between leaving for the provider and coming back.
const LOGIN_TTL: time::Duration = time::Duration::minutes(10);

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("cannot read the provider's discovery document: {0}")]
    Discovery(String),
    #[error("the provider advertises no token endpoint")]
    NoTokenEndpoint,
    #[error("the token request failed: {0}")]
    Token(String),
    #[error("the token response holds no ID token")]
    NoIdToken,
    #[error("the ID token was refused: {0}")]
    IdToken(String),
}

/// Who the provider says signed in.
pub struct SignedIn {
    pub sub: String,
    pub name: String,
    /// The values of `web.roles_claim`, before mapping to roles.
    pub role_values: Vec<String>,
    /// The raw ID token, for `id_token_hint` at sign-out.
    pub id_token: String,
}

struct Discovered {
    client: OidcClient,
    end_session: Option<EndSessionUrl>,
}

pub struct Oidc {
    http: OidcHttp,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    /// Asked for besides `openid`, which the client always sends.
    scopes: Vec<Scope>,
    roles_claim: String,
    /// One discovery at a time: concurrent sign-ins wait for it rather
    /// than each fetching the document.
    discovered: tokio::sync::Mutex<Option<Arc<Discovered>>>,
}

impl Oidc {
    /// Checks the configured URLs (they were validated with the settings,
    /// so an error here is a bug) without contacting the provider.
    pub fn new(s: &WebSettings) -> Result<Oidc, String> {
        Ok(Oidc {
            http: OidcHttp::new().map_err(|e| format!("HTTP client: {e}"))?,
            issuer: IssuerUrl::new(s.issuer.clone()).map_err(|e| format!("web.issuer: {e}"))?,
            client_id: ClientId::new(s.client_id.clone()),
            client_secret: ClientSecret::new(s.client_secret.expose_secret().to_owned()),
            redirect: RedirectUrl::new(s.redirect_url.clone())
                .map_err(|e| format!("web.redirect_url: {e}"))?,
            scopes: s
                .scopes
                .iter()
                .filter(|x| x.as_str() != "openid")
                .map(|x| Scope::new(x.clone()))
                .collect(),
            roles_claim: s.roles_claim.clone(),
            discovered: tokio::sync::Mutex::new(None),
        })
    }

    /// Reads the discovery document now, if not read yet.
    pub async fn discover(&self) -> Result<(), OidcError> {
        self.discovered().await.map(|_| ())
    }

    async fn discovered(&self) -> Result<Arc<Discovered>, OidcError> {
        let mut slot = self.discovered.lock().await;
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let metadata = ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| OidcError::Discovery(chain(&e)))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let client = OidcClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone());
        let d = Arc::new(Discovered {
            client,
            end_session,
        });
        *slot = Some(d.clone());
        Ok(d)
    }

    /// The provider's authorisation URL for a new sign-in, and what the
    /// callback will need to check it.
    pub async fn begin(&self, return_to: String) -> Result<(Url, PendingLogin), OidcError> {
        let d = self.discovered().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = d
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.scopes {
            request = request.add_scope(scope.clone());
        }
        let (url, state, nonce) = request.url();
        let login = PendingLogin {
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            return_to,
            expires_at: OffsetDateTime::now_utc() + LOGIN_TTL,
        };
        Ok((url, login))
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token
    /// (signature, issuer, audience, expiry, nonce). The caller has already
    /// matched `state`.
    pub async fn finish(&self, code: String, login: &PendingLogin) -> Result<SignedIn, OidcError> {
        let d = self.discovered().await?;
        let tokens = d
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| OidcError::NoTokenEndpoint)?
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Token(token_error(&e)))?;
        let id_token = tokens.id_token().ok_or(OidcError::NoIdToken)?;
        let verifier = d.client.id_token_verifier();
        let claims = match id_token.claims(&verifier, &Nonce::new(login.nonce.clone())) {
            Ok(c) => c,
            Err(e) => {
                if matches!(
                    e,
                    openidconnect::ClaimsVerificationError::SignatureVerification(_)
                ) {
                    // Perhaps rotated keys: read the document again next time.
                    *self.discovered.lock().await = None;
                }
                return Err(OidcError::IdToken(e.to_string()));
            }
        };
        let sub = claims.subject().as_str().to_owned();
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
            .or_else(|| claims.email().map(|e| e.as_str().to_owned()))
            .unwrap_or_else(|| sub.clone());
        let role_values = claims::strings_at(claims.additional_claims(), &self.roles_claim)
            .into_iter()
            .map(str::to_owned)
            .collect();
        Ok(SignedIn {
            sub,
            name,
            role_values,
            id_token: id_token.to_string(),
        })
    }

    /// Where to send the browser to end the session at the provider, when
    /// it advertises an end-session endpoint (and discovery has happened).
    pub async fn end_session_url(&self, id_token: Option<&str>, come_back_to: &str) -> Option<Url> {
        let d = self.discovered.lock().await.clone()?;
        let mut request =
            LogoutRequest::from(d.end_session.clone()?).set_client_id(self.client_id.clone());
        if let Ok(back) = PostLogoutRedirectUrl::new(come_back_to.to_owned()) {
            request = request.set_post_logout_redirect_uri(back);
        }
        if let Some(token) = id_token.and_then(|t| OidcIdToken::from_str(t).ok()) {
            request = request.set_id_token_hint(&token);
        }
        Some(request.http_get_url())
    }
}

/// A token endpoint failure in words fit for the log: the OAuth error code,
/// never the response body (which could echo the code or a token).
fn token_error<E: std::error::Error>(
    e: &RequestTokenError<E, StandardErrorResponse<CoreErrorResponseType>>,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => format!("the provider answered {}", r.error()),
        RequestTokenError::Request(e) => chain(e),
        RequestTokenError::Parse(..) => "unreadable token response".into(),
        RequestTokenError::Other(s) => s.clone(),
    }
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
