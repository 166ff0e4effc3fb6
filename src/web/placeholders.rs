//! Stand-ins for pages whose content is still being built, so that sign-in,
//! the home redirect and the team-lead guard can be used and tested now.
//! Each route here is removed when its real page arrives.

use super::extract::{TeamLead, Web};
use super::page::{Chrome, Section, html};
use super::role::Staff;
use askama::Template;
use axum::response::Response;

#[derive(Template)]
#[template(path = "placeholder.html", config = "src/web/askama.toml")]
struct Placeholder {
    chrome: Chrome,
    heading: &'static str,
    name: String,
}

fn page(web: &super::WebState, staff: &Staff, section: Section, heading: &'static str) -> Response {
    html(&Placeholder {
        chrome: web.chrome(staff, section),
        heading,
        name: staff.name.clone(),
    })
}

/// `GET /caseload`.
pub async fn caseload(Web(web): Web, staff: Staff) -> Response {
    page(&web, &staff, Section::Caseload, "My caseload")
}

/// `GET /team` (team leads and admins).
pub async fn team(Web(web): Web, TeamLead(staff): TeamLead) -> Response {
    page(&web, &staff, Section::Team, "Team caseload")
}

/// `GET /reports` (team leads and admins).
pub async fn reports(Web(web): Web, TeamLead(staff): TeamLead) -> Response {
    page(&web, &staff, Section::Reports, "Fidelity and measures")
}
