//! Extractors for page handlers: who is signed in ([`Staff`]), team-lead
//! pages ([`TeamLead`]), and forms with their CSRF token ([`CsrfForm`]).
//!
//! The checks live in extractors so that a handler cannot run without them:
//! a handler that takes `Staff` is only called for a signed-in request, one
//! that takes `TeamLead` only for a team lead or admin, one that takes
//! `CsrfForm<T>` only with the session's form token.

use super::WebState;
use super::page::{MessagePage, see_other};
use super::role::Staff;
use crate::web::WebApp;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The pages' shared state, for handlers that need settings, the roster or
/// [`WebState::chrome`].
pub struct Web(pub Arc<WebState>);

impl FromRequestParts<WebApp> for Web {
    type Rejection = Response;

    async fn from_request_parts(_: &mut Parts, state: &WebApp) -> Result<Self, Response> {
        web_of(state).map(Web).ok_or_else(not_routed)
    }
}

fn web_of(state: &WebApp) -> Option<Arc<WebState>> {
    Some(state.web.clone())
}

fn not_routed() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

impl FromRequestParts<WebApp> for Staff {
    type Rejection = Response;

    /// Not signed in (or the session expired): a page (GET) goes to sign-in
    /// and comes back; anything else (a form post) gets a 401 page, since
    /// the browser cannot replay the post after signing in.
    async fn from_request_parts(parts: &mut Parts, state: &WebApp) -> Result<Self, Response> {
        let web = web_of(state).ok_or_else(not_routed)?;
        match web.session(&parts.headers).await {
            Ok(Some((_, session))) => Ok(session.staff),
            Ok(None) if parts.method == Method::GET || parts.method == Method::HEAD => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let query = serde_urlencoded::to_string([("return_to", here)]).unwrap_or_default();
                Err(see_other(&format!("/auth/sign-in?{query}")))
            }
            Ok(None) => Err(MessagePage::new(
                web.public_chrome(),
                "You need to sign in",
                &["You are not signed in, or your session has ended. Sign in, then do this again."],
            )
            .link("/auth/sign-in", "Sign in")
            .respond(StatusCode::UNAUTHORIZED)),
            Err(e) => Err(unavailable(&web, &e)),
        }
    }
}

/// A team lead or admin, for the team's pages and the reports; anyone else
/// signed in gets a 403 page.
pub struct TeamLead(pub Staff);

impl FromRequestParts<WebApp> for TeamLead {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebApp) -> Result<Self, Response> {
        let staff = Staff::from_request_parts(parts, state).await?;
        if staff.sees_team() {
            return Ok(TeamLead(staff));
        }
        let web = web_of(state).ok_or_else(not_routed)?;
        Err(MessagePage::new(
            web.chrome(&staff, super::Section::None),
            "You do not have permission to see this page",
            &["This page is for team leads. Ask your team lead if you need what it shows."],
        )
        .link("/", "Go to your caseload")
        .respond(StatusCode::FORBIDDEN))
    }
}

/// A URL-encoded form whose `csrf` field matched the session's token; the
/// other fields deserialise into `T` (the `csrf` field is removed first, so
/// `T` need not know about it, even with `deny_unknown_fields`).
pub struct CsrfForm<T>(pub T);

/// Largest form body read (the pages' forms are a few text fields).
const MAX_FORM_BYTES: usize = 256 * 1024;

impl<T: DeserializeOwned> FromRequest<WebApp> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &WebApp) -> Result<Self, Response> {
        let web = web_of(state).ok_or_else(not_routed)?;
        let (parts, body) = req.into_parts();
        if !is_form(&parts.headers) {
            return Err(bad_form(&web, StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let session = match web.session(&parts.headers).await {
            Ok(s) => s,
            Err(e) => return Err(unavailable(&web, &e)),
        };
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| bad_form(&web, StatusCode::PAYLOAD_TOO_LARGE))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| bad_form(&web, StatusCode::BAD_REQUEST))?;
        let expected = session.as_ref().map(|(_, s)| s.staff.csrf.as_str());
        let (rest, token_ok) = check_csrf(pairs, expected);
        if !token_ok {
            tracing::warn!(
                path = parts.uri.path(),
                "form refused: missing or wrong CSRF token"
            );
            return Err(form_expired(&web));
        }
        let encoded = serde_urlencoded::to_string(&rest)
            .map_err(|_| bad_form(&web, StatusCode::BAD_REQUEST))?;
        serde_urlencoded::from_str(&encoded)
            .map(CsrfForm)
            .map_err(|_| bad_form(&web, StatusCode::BAD_REQUEST))
    }
}

/// Splits off the `csrf` field; true when there was exactly one and it
/// equals `expected` (compared in constant time, so response timing says
/// nothing about how much of a guess was right).
pub(super) fn check_csrf(
    pairs: Vec<(String, String)>,
    expected: Option<&str>,
) -> (Vec<(String, String)>, bool) {
    let (tokens, rest): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(k, _)| k == "csrf");
    let ok = match (tokens.as_slice(), expected) {
        ([(_, got)], Some(want)) if !want.is_empty() => {
            bool::from(got.as_bytes().ct_eq(want.as_bytes()))
        }
        _ => false,
    };
    (rest, ok)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The 403 page for a form without this session's token (or from another site).
pub(super) fn form_expired(web: &WebState) -> Response {
    MessagePage::new(
        web.public_chrome(),
        "This form has expired or was not sent from this service",
        &[
            "Nothing has been changed.",
            "Go back, reload the page and try again. If you opened the form a long time ago, you may need to sign in again.",
        ],
    )
    .link("/", "Go to the start page")
    .respond(StatusCode::FORBIDDEN)
}

fn bad_form(web: &WebState, status: StatusCode) -> Response {
    MessagePage::new(
        web.public_chrome(),
        "The form could not be read",
        &["Nothing has been changed. Go back, reload the page and try again."],
    )
    .respond(status)
}

/// The session store failed: say so without detail, log what failed.
pub(super) fn unavailable(web: &WebState, e: &dyn std::error::Error) -> Response {
    tracing::error!(error = %e, "staff pages: the session store failed");
    MessagePage::new(
        web.public_chrome(),
        "Sorry, there is a problem with the service",
        &["Try again later."],
    )
    .respond(StatusCode::SERVICE_UNAVAILABLE)
}

#[cfg(test)]
mod tests {
    use super::check_csrf;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn exactly_one_matching_token_passes_and_is_removed() {
        let (rest, ok) = check_csrf(pairs(&[("csrf", "t"), ("a", "1")]), Some("t"));
        assert!(ok);
        assert_eq!(rest, pairs(&[("a", "1")]));
        assert!(!check_csrf(pairs(&[("csrf", "u")]), Some("t")).1);
        assert!(!check_csrf(pairs(&[("a", "1")]), Some("t")).1);
        assert!(!check_csrf(pairs(&[("csrf", "t"), ("csrf", "t")]), Some("t")).1);
        assert!(!check_csrf(pairs(&[("csrf", "t")]), None).1);
        assert!(!check_csrf(pairs(&[("csrf", "")]), Some("")).1);
    }
}
