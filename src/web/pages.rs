//! The home route and the 404 page.

use super::extract::Web;
use super::page::{MessagePage, see_other};
use super::role::Staff;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// `GET /`: team leads and admins start at the team's caseload, specialists at their own.
pub async fn home(staff: Staff) -> Response {
    see_other(if staff.sees_team() {
        "/team"
    } else {
        "/caseload"
    })
}

/// Unknown paths. The machine-facing routes (`/api`, the FHIR rest-hook,
/// probes) keep their bare 404; anything else gets the page, in the
/// layout of whoever is signed in.
pub async fn not_found(Web(web): Web, uri: Uri, headers: axum::http::HeaderMap) -> Response {
    let p = uri.path();
    if p.starts_with("/api/") || p.starts_with("/fhir/") || p == "/api" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let chrome = match web.session(&headers).await {
        Ok(Some((_, s))) => web.chrome(&s.staff, super::Section::None),
        _ => web.public_chrome(),
    };
    MessagePage::new(
        chrome,
        "Page not found",
        &[
            "If you typed the web address, check it is correct.",
            "If you pasted the web address, check you copied the entire address.",
        ],
    )
    .link("/", "Go to the start page")
    .respond(StatusCode::NOT_FOUND)
}
