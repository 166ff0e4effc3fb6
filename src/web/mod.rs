//! The staff pages: server-rendered HTML in the NHS.UK frontend's design,
//! behind OpenID Connect sign-in (`[web]` in the configuration).
//!
//! - `oidc/`: discovery, the authorisation code flow with PKCE, ID token
//!   verification, reading the roles claim.
//! - `auth`: the sign-in, callback and sign-out routes.
//! - `session`: server-side sessions behind [`SessionStore`] (in memory for now).
//! - `extract`: [`Staff`], [`TeamLead`], [`CsrfForm`] and [`Web`] for handlers.
//! - `page`: [`Chrome`] (the layout's data), [`FieldError`], rendering.
//! - `security`: the origin check on posts and the headers on every response.
//! - `assets`: the NHS.UK frontend's files from the installed package.
//!
//! A page handler takes `Web` and `Staff` (or `TeamLead`), builds a template
//! struct with `chrome: web.chrome(&staff, Section::…)` and returns
//! `html(&page)`. Forms carry `<input type="hidden" name="csrf" value="{{ chrome.csrf }}">`
//! and their handlers take `CsrfForm<T>`.

mod assets;
mod auth;
mod extract;
mod oidc;
mod page;
mod pages;
mod role;
mod security;
mod session;
mod state;
mod team;

pub use extract::{CsrfForm, TeamLead, Web};
pub use oidc::OidcError;
pub use page::{Chrome, FieldError, MessagePage, NavItem, Section, html, html_status, see_other};
pub use role::{Role, Staff, StaffSummary};
pub use session::{MemorySessions, PendingLogin, Session, SessionError, SessionStore, TokenKey};
pub use state::{WebError, WebState};

use crate::engine::Engine;
use crate::fhir::FhirClient;
use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use std::sync::Arc;

/// What the page handlers share: the engine (store, settings, commands),
/// the FHIR client (a document opened as the record holds it) and the
/// pages' own state. The pages sit above the API in the layering: they
/// import nothing from `http`, and `app` merges the two routers.
#[derive(Clone)]
pub struct WebApp {
    pub engine: Engine,
    pub fhir: Arc<FhirClient>,
    pub web: Arc<WebState>,
}

/// The pages' routes, merged by `app` beside the API; the security layer
/// covers these routes (and the 404 page) only.
pub fn router(app: WebApp) -> Router {
    let web = app.web.clone();
    Router::new()
        .route("/", get(pages::home))
        .merge(team::routes())
        .route("/auth/sign-in", get(auth::sign_in))
        .route("/auth/callback", get(auth::callback))
        .route("/auth/sign-out", post(auth::sign_out))
        .route("/auth/signed-out", get(auth::signed_out))
        .merge(assets::router(&web.settings.assets_dir))
        .fallback(pages::not_found)
        .layer(from_fn_with_state(web, security::guard))
        .with_state(app)
}
