//! The OAuth2 token request and the cache of its answer, shared by the
//! client-secret and signed-JWT kinds so both refresh the same way.

use crate::config::{ExposeSecret, Secret};
use crate::fhir::error::FhirError;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Lifetime assumed when the token endpoint does not say (`expires_in` is
/// only RECOMMENDED in RFC 6749 §5.1); NHS England's tokens last 10 minutes,
/// so five is on the safe side.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// An access token as the token endpoint issued it.
pub(super) struct Token {
    access_token: Secret,
    lifetime: Duration,
}

/// One cached access token, reused until `refresh_before` ahead of its
/// expiry so that a request never goes out with a token that lapses in flight.
pub(super) struct TokenCache {
    refresh_before: Duration,
    cached: Mutex<Option<(Secret, Instant)>>,
}

impl TokenCache {
    pub(super) fn new(refresh_before: Duration) -> Self {
        TokenCache {
            refresh_before,
            cached: Mutex::new(None),
        }
    }

    /// The `Authorization` header value: the cached token while it is fresh,
    /// else a new one from `fetch`. The lock is held across `fetch`, so
    /// callers that arrive together wait for one token request rather than
    /// each making their own.
    pub(super) async fn header<F, Fut>(&self, fetch: F) -> Result<String, FhirError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, FhirError>>,
    {
        let mut cached = self.cached.lock().await;
        if let Some((token, valid_until)) = cached.as_ref()
            && Instant::now() < *valid_until
        {
            return Ok(format!("Bearer {}", token.expose_secret()));
        }
        let fetched_at = Instant::now();
        let token = fetch().await?;
        let valid_until = fetched_at + token.lifetime.saturating_sub(self.refresh_before);
        let header = format!("Bearer {}", token.access_token.expose_secret());
        *cached = Some((token.access_token, valid_until));
        Ok(header)
    }

    /// Forgets the token, so the next request fetches a new one.
    pub(super) async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// POSTs the form to the token endpoint and reads the token.
///
/// Errors name the status and the OAuth `error` code only: the form carries
/// the client secret or assertion, the answer the token, and an error body may
/// echo what was sent, so none of them is quoted.
pub(super) async fn request_token(
    http: &reqwest::Client,
    token_url: &str,
    form: &[(&str, &str)],
) -> Result<Token, FhirError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = http
        .post(token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            FhirError::Auth(format!(
                "token endpoint {token_url} unreachable: {}",
                e.without_url()
            ))
        })?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| {
        FhirError::Auth(format!(
            "token endpoint {token_url}: reading the answer failed: {}",
            e.without_url()
        ))
    })?;
    if !status.is_success() {
        let code = oauth_error_code(&bytes);
        tracing::warn!(
            %status,
            error = code.as_deref().unwrap_or("-"),
            "the token endpoint refused the token request"
        );
        let code = code.map(|c| format!(" ({c})")).unwrap_or_default();
        return Err(FhirError::Auth(format!(
            "token endpoint {token_url} answered {status}{code}"
        )));
    }
    // serde's messages quote the offending value, which may be the token: say only what is wrong.
    let t: TokenResponse = serde_json::from_slice(&bytes).map_err(|_| {
        FhirError::Auth(format!(
            "token endpoint {token_url} answered {status} without a token \
             (expected JSON with an access_token string)"
        ))
    })?;
    if t.access_token.is_empty() || !t.access_token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FhirError::Auth(format!(
            "token endpoint {token_url} answered an access_token that cannot go in a header"
        )));
    }
    if let Some(tt) = &t.token_type
        && !tt.eq_ignore_ascii_case("bearer")
    {
        let shown = if is_plain_code(tt) { tt.as_str() } else { "?" };
        return Err(FhirError::Auth(format!(
            "token endpoint {token_url} answered token_type {shown:?}; only Bearer is supported"
        )));
    }
    let lifetime = t.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs);
    tracing::debug!(
        expires_in = lifetime.as_secs(),
        "fetched a FHIR access token"
    );
    Ok(Token {
        access_token: Secret::from(t.access_token),
        lifetime,
    })
}

/// The `error` of an RFC 6749 §5.2 error body, when it is a plain code such
/// as `invalid_client`; anything else could be echoed input and is not shown.
fn oauth_error_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let e: ErrorBody = serde_json::from_slice(body).ok()?;
    is_plain_code(&e.error).then_some(e.error)
}

fn is_plain_code(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_error_codes_are_shown() {
        assert_eq!(
            oauth_error_code(br#"{"error":"invalid_client","error_description":"x"}"#),
            Some("invalid_client".into())
        );
        assert_eq!(oauth_error_code(br#"{"error":"eyJhbGciOi.x"}"#), None);
        assert_eq!(
            oauth_error_code(br#"{"error":"Invalid Client 9434"}"#),
            None
        );
        assert_eq!(oauth_error_code(b"<html>bad</html>"), None);
        assert_eq!(oauth_error_code(br#"{"error":""}"#), None);
    }

    #[tokio::test]
    async fn a_fresh_token_is_reused_and_a_stale_one_refetched() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let fetch = |lifetime| {
            move || async move {
                Ok::<_, FhirError>(Token {
                    access_token: Secret::from(format!("t{lifetime}")),
                    lifetime: Duration::from_secs(lifetime),
                })
            }
        };
        // 30 s left is inside refresh_before: used once, then fetched again.
        assert_eq!(cache.header(fetch(30)).await.unwrap(), "Bearer t30");
        assert_eq!(cache.header(fetch(600)).await.unwrap(), "Bearer t600");
        assert_eq!(cache.header(fetch(900)).await.unwrap(), "Bearer t600");
        cache.invalidate().await;
        assert_eq!(cache.header(fetch(900)).await.unwrap(), "Bearer t900");
    }
}
