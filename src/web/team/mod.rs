//! The team's pages: caseloads, a case, referrals, the outreach board,
//! documents, and the fidelity and measures report.
//!
//! Every page reads one snapshot of the team's facts
//! (`store::team_snapshot`) and the same `domain::reports` functions as
//! the CLI and the API, so a number on a page is the number in the report.
//! Every form goes through the engine as the API does (validated, audited,
//! written to the record), acting as the signed-in person.

mod case;
mod caseload;
mod charts;
mod documents;
mod forms;
mod outreach;
mod referrals;
mod reports;

use crate::domain::reports::Snapshot;
use crate::engine::command::Command;
use crate::engine::{Applied, RejectCode};
use crate::store::StoreError;
use crate::web::WebApp;
use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};
use forms::{AttemptForm, JobEndForm, JobStartForm, StatusForm};
use time::OffsetDateTime;

pub(super) fn routes() -> Router<WebApp> {
    Router::new()
        .route("/caseload", get(caseload::mine))
        .route("/team", get(caseload::team))
        .route("/cases/{id}", get(case::show))
        .route("/cases/{id}/assign", post(case::assign))
        .route("/cases/{id}/job-starts", post(case::submit::<JobStartForm>))
        .route("/cases/{id}/job-ends", post(case::submit::<JobEndForm>))
        .route(
            "/cases/{id}/employment-status",
            post(case::submit::<StatusForm>),
        )
        .route(
            "/cases/{id}/outreach-attempts",
            post(case::submit::<AttemptForm>),
        )
        .route("/referrals", get(referrals::list))
        .route("/referrals/{id}/decision", post(referrals::decide))
        .route("/outreach", get(outreach::board))
        .route("/documents", get(documents::list))
        .route("/documents/{id}", get(documents::open))
        .route("/reports", get(reports::show))
}

/// The snapshot every page reads, with the roster (configured and signed in).
pub(super) async fn snapshot(s: &WebApp) -> Result<Snapshot, StoreError> {
    s.engine.team_snapshot().await
}

/// The specialists a case can be given to, `(staff id, name)`.
pub(super) async fn roster(s: &WebApp) -> Result<Vec<(String, String)>, StoreError> {
    s.engine.roster().await
}

/// A person's action through the engine, as the API runs it.
pub(super) async fn run(s: &WebApp, command: Command) -> Result<Applied, StoreError> {
    s.engine.execute_action(command).await
}

/// What a person reads for a refusal the form could not foresee.
pub(super) fn refusal_message(code: RejectCode, reason: &str) -> String {
    match code {
        RejectCode::UnknownCase => "This case no longer exists".to_owned(),
        RejectCode::CaseClosed => "This case is closed".to_owned(),
        RejectCode::AlreadyDecided => "This referral has already been decided".to_owned(),
        RejectCode::UnknownJob => "Select a job recorded for this person".to_owned(),
        _ => format!("This could not be saved: {reason}"),
    }
}

/// "3 Aug 2026".
pub(super) fn day(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[day padding:none] [month repr:short] [year]");
    t.format(&f).unwrap_or_default()
}

/// A page that could not read the store: logged, and a plain apology.
pub(super) fn store_failed(e: &StoreError) -> Response {
    use axum::response::IntoResponse;
    tracing::error!(error = %e, "a team page could not read the store");
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "Sorry, there is a problem with the service. Try again later.",
    )
        .into_response()
}
