//! Sign-in, the provider's callback, sign-out.
//!
//! A sign-in in progress is kept server-side under a random token held in a
//! short-lived HTTP-only cookie. The cookie ties the callback to the browser
//! that started the sign-in: a callback URL passed to someone else (login
//! CSRF: signing a victim in as the attacker) finds no pending sign-in
//! there. Each pending sign-in is used once.

use super::WebState;
use super::extract::{Web, check_csrf, form_expired, unavailable};
use super::oidc::OidcError;
use super::page::{MessagePage, see_other};
use super::role::{Role, Staff};
use super::session::{Session, TokenKey, random_token};
use super::state::cookie;
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use cookie::{Cookie, SameSite};
use std::collections::BTreeSet;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// `GET /auth/sign-in?return_to=/path`: off to the provider (or straight
/// back, when already signed in).
pub async fn sign_in(Web(web): Web, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let return_to = local_path(param(query.as_deref(), "return_to").as_deref());
    if let Ok(Some(_)) = web.session(&headers).await {
        return see_other(&return_to);
    }
    let (url, login) = match web.oidc.begin(return_to).await {
        Ok(started) => started,
        Err(e) => return provider_unavailable(&web, &e),
    };
    let token = random_token();
    let ttl = login.expires_at - OffsetDateTime::now_utc();
    if let Err(e) = web.sessions.put_login(TokenKey::of(&token), login).await {
        return unavailable(&web, &e);
    }
    let mut res = see_other(url.as_str());
    add_cookie(&mut res, set_cookie(&web, web.cookies.login, token, ttl));
    res
}

/// `GET /auth/callback?code=…&state=…`: checks `state` against the pending
/// sign-in, exchanges the code, verifies the ID token, maps the roles and
/// starts a session.
pub async fn callback(Web(web): Web, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let q = query.as_deref();
    let now = OffsetDateTime::now_utc();
    let pending = match cookie(&headers, web.cookies.login) {
        Some(t) => match web.sessions.take_login(&TokenKey::of(&t), now).await {
            Ok(p) => p,
            Err(e) => return unavailable(&web, &e),
        },
        None => None,
    };
    let mut res = match pending {
        None => failed(
            &web,
            "Your sign-in has expired",
            "Sign-in took too long, or was started in another browser or tab.",
        ),
        Some(login) => {
            let state_ok = param(q, "state")
                .is_some_and(|s| bool::from(s.as_bytes().ct_eq(login.state.as_bytes())));
            if let Some(code) = param(q, "error") {
                // The provider's own code (e.g. access_denied), never its description.
                let code: String = code
                    .chars()
                    .filter(char::is_ascii_graphic)
                    .take(64)
                    .collect();
                tracing::info!(error = %code, "staff sign-in not completed at the provider");
                failed(
                    &web,
                    "Sign-in was not completed",
                    "The sign-in service did not sign you in.",
                )
            } else if !state_ok {
                tracing::warn!("staff sign-in refused: the callback's state does not match");
                failed(
                    &web,
                    "Sign-in could not be completed",
                    "The sign-in response did not match the sign-in you started.",
                )
            } else if let Some(code) = param(q, "code") {
                match web.oidc.finish(code, &login).await {
                    Ok(who) => start_session(&web, &headers, who, login.return_to, now).await,
                    Err(OidcError::Discovery(e)) => {
                        provider_unavailable(&web, &OidcError::Discovery(e))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "staff sign-in failed");
                        failed(
                            &web,
                            "Sign-in could not be completed",
                            "The sign-in service's answer could not be accepted.",
                        )
                    }
                }
            } else {
                failed(
                    &web,
                    "Sign-in could not be completed",
                    "The sign-in response was incomplete.",
                )
            }
        }
    };
    add_cookie(&mut res, clear_cookie(&web, web.cookies.login));
    res
}

async fn start_session(
    web: &WebState,
    headers: &HeaderMap,
    who: super::oidc::SignedIn,
    return_to: String,
    now: OffsetDateTime,
) -> Response {
    let s = &web.settings;
    let roles: BTreeSet<Role> = s
        .roles_for(who.role_values.iter().map(String::as_str))
        .into_iter()
        .filter(|r| s.allowed_roles.contains(r))
        .collect();
    if roles.is_empty() {
        tracing::info!(sub = %who.sub, "staff sign-in refused: no allowed role");
        return MessagePage::new(
            web.public_chrome(),
            "You are not authorised to use this service",
            &[
                "You signed in, but your account does not have a role that can use this service.",
                "If you work in the IPS team, ask your team lead or the service's administrator to give you the employment specialist or team lead role.",
            ],
        )
        .respond(StatusCode::FORBIDDEN);
    }
    // A new session id at every sign-in (no fixation); any old one ends.
    if let Ok(Some((old, _))) = web.session(headers).await {
        let _ = web.sessions.remove(&old).await;
    }
    let staff = Staff {
        sub: who.sub,
        name: who.name,
        roles,
        csrf: random_token(),
    };
    let token = random_token();
    let ttl = time::Duration::try_from(s.session_ttl).unwrap_or(time::Duration::hours(8));
    let session = Session {
        staff: staff.clone(),
        expires_at: now + ttl,
        id_token: Some(who.id_token),
    };
    if let Err(e) = web.sessions.insert(TokenKey::of(&token), session).await {
        return unavailable(web, &e);
    }
    web.record_sign_in(&staff, now);
    if let Some(store) = &web.staff_store {
        let row = crate::store::StaffRow {
            sub: staff.sub.clone(),
            name: staff.name.clone(),
            roles: staff
                .roles
                .iter()
                .map(|r| <&str>::from(*r))
                .collect::<Vec<_>>()
                .join(","),
            last_seen_at: crate::engine::ms(now),
        };
        if let Err(e) = store.staff_seen(&row).await {
            tracing::warn!(error = %e, "cannot record a sign-in in the staff roster");
        }
    }
    let roles: Vec<&str> = staff.roles.iter().map(|r| r.into()).collect();
    tracing::info!(sub = %staff.sub, roles = ?roles, "staff signed in");
    let mut res = see_other(&return_to);
    add_cookie(&mut res, set_cookie(web, web.cookies.session, token, ttl));
    res
}

/// `POST /auth/sign-out` (form with `csrf`): ends the session here, and at
/// the provider when configured and advertised.
pub async fn sign_out(Web(web): Web, headers: HeaderMap, body: Bytes) -> Response {
    let signed_out = "/auth/signed-out";
    let mut res = match web.session(&headers).await {
        Err(e) => return unavailable(&web, &e),
        // Already signed out (expired, or another tab): nothing to protect.
        Ok(None) => see_other(signed_out),
        Ok(Some((key, session))) => {
            let pairs = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            if !check_csrf(pairs, Some(&session.staff.csrf)).1 {
                tracing::warn!(
                    path = "/auth/sign-out",
                    "form refused: missing or wrong CSRF token"
                );
                return form_expired(&web);
            }
            if let Err(e) = web.sessions.remove(&key).await {
                return unavailable(&web, &e);
            }
            tracing::info!(sub = %session.staff.sub, "staff signed out");
            let at_provider = if web.settings.sign_out_at_provider {
                let back = web.origin.clone() + signed_out;
                web.oidc
                    .end_session_url(session.id_token.as_deref(), &back)
                    .await
            } else {
                None
            };
            see_other(at_provider.as_ref().map_or(signed_out, |u| u.as_str()))
        }
    };
    add_cookie(&mut res, clear_cookie(&web, web.cookies.session));
    res
}

/// `GET /auth/signed-out`.
pub async fn signed_out(Web(web): Web) -> Response {
    MessagePage::new(
        web.public_chrome(),
        "You have signed out",
        &["Close the browser if you are on a shared computer."],
    )
    .link("/auth/sign-in", "Sign in again")
    .respond(StatusCode::OK)
}

fn failed(web: &WebState, heading: &str, why: &str) -> Response {
    MessagePage::new(
        web.public_chrome(),
        heading,
        &[why, "Nothing has been changed."],
    )
    .link("/auth/sign-in", "Sign in again")
    .respond(StatusCode::BAD_REQUEST)
}

fn provider_unavailable(web: &WebState, e: &OidcError) -> Response {
    tracing::error!(error = %e, issuer = %web.settings.issuer, "staff sign-in unavailable: the identity provider cannot be used");
    MessagePage::new(
        web.public_chrome(),
        "Sorry, sign-in is not available at the moment",
        &["The sign-in service cannot be reached. Try again in a few minutes."],
    )
    .link("/auth/sign-in", "Try again")
    .respond(StatusCode::SERVICE_UNAVAILABLE)
}

/// One query parameter, decoded; a malformed query counts as absent.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// `return_to` if it is a path of this service, `/` otherwise: sign-in must
/// not become an open redirect (`//evil.example`, `/\evil.example`,
/// `https://…` all go home), nor loop back into itself.
pub(super) fn local_path(p: Option<&str>) -> String {
    match p {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.starts_with("/auth/")
                && p.len() <= 2048
                && !p.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn set_cookie(
    web: &WebState,
    name: &'static str,
    value: String,
    ttl: time::Duration,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(web.cookies.secure)
        .max_age(ttl)
        .build()
}

fn clear_cookie(web: &WebState, name: &'static str) -> Cookie<'static> {
    set_cookie(web, name, String::new(), time::Duration::ZERO)
}

fn add_cookie(res: &mut Response, c: Cookie<'static>) {
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path(Some("/caseload?x=1")), "/caseload?x=1");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "/auth/sign-in?return_to=/",
            "/a b",
            "/a\nb",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
