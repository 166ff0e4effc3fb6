//! `My caseload` (a specialist's open cases) and `Team caseload` (every
//! specialist's load against the fidelity limit, and every open case).

use super::{snapshot, store_failed};
use crate::domain::reports::Snapshot;
use crate::domain::reports::caseload::{
    CaseLine, CaseloadLimit, SpecialistLoad, case_lines, loads,
};
use crate::web::WebApp;
use crate::web::page::{Chrome, Section, html};
use crate::web::{Staff, TeamLead, Web};
use askama::Template;
use axum::extract::State;
use axum::response::Response;

/// One row of a caseload table, ready to show.
pub struct Row {
    pub case_id: String,
    /// The first characters of the id, as people read it.
    pub short: String,
    pub specialist: String,
    pub state: &'static str,
    pub opened_days: i64,
    pub since_contact: String,
    pub flagged: bool,
    pub awaiting_comment: usize,
}

pub fn rows(s: &Snapshot, lines: Vec<CaseLine>) -> Vec<Row> {
    lines
        .into_iter()
        .map(|l| Row {
            specialist: l
                .specialist
                .as_ref()
                .map(|id| s.specialists.get(id).cloned().unwrap_or_else(|| id.clone()))
                .unwrap_or_else(|| "Not assigned".to_owned()),
            since_contact: l
                .days_since_contact
                .map(|d| format!("{d} days"))
                .unwrap_or_else(|| "No contact yet".to_owned()),
            short: short_id(&l.case_id),
            case_id: l.case_id,
            state: l.state,
            opened_days: l.opened_days,
            flagged: l.flagged,
            awaiting_comment: l.awaiting_comment,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "team/caseload.html", config = "src/web/askama.toml")]
struct MyCaseload {
    chrome: Chrome,
    held: usize,
    limit: u32,
    rows: Vec<Row>,
    unassigned: Vec<Row>,
}

/// `GET /caseload`: the signed-in specialist's open cases, and the cases
/// nobody holds yet (to pick up).
pub async fn mine(State(s): State<WebApp>, Web(web): Web, staff: Staff) -> Response {
    let snap = match snapshot(&s).await {
        Ok(x) => x,
        Err(e) => return store_failed(&e),
    };
    let now = s.engine.now();
    let mine = rows(&snap, case_lines(&snap, Some(&staff.sub), now));
    let unassigned = rows(
        &snap,
        case_lines(&snap, None, now)
            .into_iter()
            .filter(|l| l.specialist.is_none())
            .collect(),
    );
    html(&MyCaseload {
        chrome: web.chrome(&staff, Section::Caseload),
        held: mine.len(),
        limit: s.engine.ctx.team.caseload_limit(),
        rows: mine,
        unassigned,
    })
}

#[derive(Template)]
#[template(path = "team/team.html", config = "src/web/askama.toml")]
struct TeamCaseload {
    chrome: Chrome,
    limit: u32,
    loads: Vec<SpecialistLoad>,
    rows: Vec<Row>,
}

/// `GET /team` (team leads): each specialist's open cases against the limit.
pub async fn team(State(s): State<WebApp>, Web(web): Web, TeamLead(staff): TeamLead) -> Response {
    let snap = match snapshot(&s).await {
        Ok(x) => x,
        Err(e) => return store_failed(&e),
    };
    let now = s.engine.now();
    let limit = s.engine.ctx.team.caseload_limit();
    html(&TeamCaseload {
        chrome: web.chrome(&staff, Section::Team),
        limit,
        loads: loads(&snap, CaseloadLimit(limit), now),
        rows: rows(&snap, case_lines(&snap, None, now)),
    })
}

/// `Case 1a2b3c4d`: enough of a UUID to tell cases apart on a page.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}
