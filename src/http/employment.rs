//! The employment outcomes API (job starts, job ends, employment status),
//! case assignment, the roster, and the reports as JSON.
//!
//! The same commands arrive on the queue (`ips.job-start.v1`, …) and from
//! the pages; every path goes through the engine, so each record is
//! validated, audited and (for job starts) published the same way.

use super::AppState;
use super::error::ApiError;
use super::outreach::{body, created_or_repeat, decode, from_path_only, run};
use crate::domain::reports::caseload::CaseloadLimit;
use crate::domain::reports::{Period, fidelity, ips_grow};
use crate::engine::Applied;
use crate::engine::command::{
    AssignInput, Command, EmploymentStatusInput, InvalidInput, JobEndInput, JobStartInput,
};
use crate::store::{JobRow, StatusRow};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

fn with_case(mut v: Value, id: &str) -> Result<Value, ApiError> {
    from_path_only(&v, &["case_id"])?;
    match v.as_object_mut() {
        Some(o) => {
            o.insert("case_id".into(), json!(id));
            Ok(v)
        }
        None => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "the body must be a JSON object",
        )),
    }
}

fn problems(what: &str, e: InvalidInput) -> ApiError {
    ApiError::unprocessable(
        "invalid-employment-record",
        format!("the {what} has problems; see problems"),
        e.into_fields(),
    )
}

pub fn job_view(j: &JobRow) -> Value {
    json!({
        "id": j.id,
        "employer": j.employer,
        "start_date": j.started_on,
        "hours_band": j.hours_band,
        "hours_per_week": j.hours_per_week,
        "paid": j.paid != 0,
        "end_date": j.ended_on,
        "end_reason": j.end_reason,
        "recorded_by": j.recorded_by,
    })
}

pub fn status_view(s: &StatusRow) -> Value {
    json!({
        "status": s.status,
        "recorded_on": s.recorded_on,
        "start_date": s.started_on,
        "hours_band": s.hours_band,
        "recorded_by": s.recorded_by,
    })
}

/// A case's employment record: jobs, statuses and who holds it.
pub async fn employment_view(s: &AppState, case_id: &str) -> Result<Value, ApiError> {
    let store = &s.engine.store;
    let jobs = store.jobs_for_case(case_id).await?;
    let statuses = store.statuses_for_case(case_id).await?;
    let assigned = store.assignment_of(case_id).await?;
    Ok(json!({
        "specialist": assigned.as_ref().map(|a| &a.specialist),
        "jobs": jobs.iter().map(job_view).collect::<Vec<_>>(),
        "employment_status": statuses.iter().map(status_view).collect::<Vec<_>>(),
    }))
}

/// `POST /api/cases/{id}/job-starts`: an `ips.job-start.v1` body without
/// `case_id`. 201 when recorded, 200 for a repeat.
pub async fn job_start(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input: JobStartInput = decode(with_case(body(b)?, &id)?)?;
    input
        .validate(s.engine.now().date())
        .map_err(|e| problems("job start", e))?;
    let applied = run(&s, Command::JobStart(Box::new(input))).await?;
    Ok((
        created_or_repeat(&applied),
        Json(employment_view(&s, &id).await?),
    ))
}

/// `POST /api/cases/{id}/job-ends`: `{"job_id", "end_date", "reason"?, "recorded_by"}`.
pub async fn job_end(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input: JobEndInput = decode(with_case(body(b)?, &id)?)?;
    input
        .validate(s.engine.now().date())
        .map_err(|e| problems("job end", e))?;
    let applied = run(&s, Command::JobEnd(Box::new(input))).await?;
    Ok((
        created_or_repeat(&applied),
        Json(employment_view(&s, &id).await?),
    ))
}

/// `POST /api/cases/{id}/employment-status`.
pub async fn employment_status(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input: EmploymentStatusInput = decode(with_case(body(b)?, &id)?)?;
    input
        .validate(s.engine.now().date())
        .map_err(|e| problems("employment status", e))?;
    let applied = run(&s, Command::EmploymentStatus(Box::new(input))).await?;
    Ok((
        created_or_repeat(&applied),
        Json(employment_view(&s, &id).await?),
    ))
}

/// The staff ids a case can be given to (see `Engine::roster`).
pub async fn roster(s: &AppState) -> Result<Vec<(String, String)>, ApiError> {
    Ok(s.engine.roster().await?)
}

/// Assigns a case after checking the specialist is on the roster.
pub async fn assign_case(s: &AppState, input: AssignInput) -> Result<Applied, ApiError> {
    if !roster(s)
        .await?
        .iter()
        .any(|(id, _)| *id == input.specialist)
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown-specialist",
            "specialist is not on the roster (configure team.specialists, or have them sign in once)",
        ));
    }
    run(s, Command::Assign(input)).await
}

/// `PUT /api/cases/{id}/assignment`: `{"specialist", "assigned_by"}`.
pub async fn assign(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<AssignInput>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let mut input = body(b)?;
    input.case_id = id.clone();
    input.validate().map_err(|e| problems("assignment", e))?;
    assign_case(&s, input).await?;
    Ok(Json(employment_view(&s, &id).await?))
}

/// `GET /api/staff`: the roster.
pub async fn staff(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let list = roster(&s).await?;
    Ok(Json(json!({
        "specialists": list.iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct FidelityQuery {
    from: Option<String>,
    to: Option<String>,
}

fn bad_period(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid-period", e.to_string())
}

/// `GET /api/reports/fidelity?from=YYYY-MM-DD&to=YYYY-MM-DD`.
pub async fn fidelity_report(
    State(s): State<AppState>,
    Query(q): Query<FidelityQuery>,
) -> Result<Json<Value>, ApiError> {
    let p = Period::of_dates(q.from.as_deref(), q.to.as_deref(), s.engine.now().date())
        .map_err(bad_period)?;
    let snap = s.engine.team_snapshot().await?;
    let r = fidelity::report(&snap, p, CaseloadLimit(s.engine.ctx.team.caseload_limit()));
    Ok(Json(json!(r)))
}

#[derive(Deserialize)]
pub struct QuarterQuery {
    quarter: String,
}

/// `GET /api/reports/ips-grow?quarter=2026Q3`.
pub async fn ips_grow_report(
    State(s): State<AppState>,
    Query(q): Query<QuarterQuery>,
) -> Result<Json<Value>, ApiError> {
    let p = Period::quarter(&q.quarter).map_err(bad_period)?;
    let snap = s.engine.team_snapshot().await?;
    Ok(Json(json!(ips_grow::report(&snap, &q.quarter, p))))
}
