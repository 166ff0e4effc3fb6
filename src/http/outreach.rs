//! The outreach API: the board of open flags, a case's outreach history,
//! closing a case and resolving outreach by decision.
//!
//! Views carry the bridge's ids, rule ids and names, dates and codes; never
//! the NHS number.

use super::AppState;
use super::error::{ApiError, json_rejection_summary};
use crate::domain::outreach::{AppointmentFact, CaseHistory, assess};
use crate::engine::command::{CloseCaseInput, Command, OutreachAttemptInput, ResolveOutreachInput};
use crate::engine::{Applied, RejectCode, from_ms, rfc3339};
use crate::store::{AttemptRow, EpisodeRow, appointment_facts};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

pub(super) fn time(ms: Option<i64>) -> Value {
    ms.map(|m| json!(rfc3339(from_ms(m))))
        .unwrap_or(Value::Null)
}

fn episode_view(s: &AppState, e: &EpisodeRow) -> Value {
    let risk: Value = serde_json::from_str(&e.risk).unwrap_or(Value::Null);
    json!({
        "id": e.id,
        "case_id": e.case_id,
        "status": e.status,
        "rule": {"id": e.rule_id, "name": s.engine.ctx.outreach.rule_name(&e.rule_id)},
        "fires": risk.get("fires"),
        "dnas_counted": risk.get("dnas_counted"),
        "opened_at": time(Some(e.opened_at)),
        "task_due_at": time(Some(e.due_at)),
        "resolved_at": time(e.resolved_at),
        "resolution": e.resolution,
    })
}

pub(super) fn attempt_view(a: &AttemptRow, with_note: bool) -> Value {
    let mut v = json!({
        "id": a.id,
        "episode_id": a.episode_id,
        "method": a.method,
        "outcome": a.outcome,
        "attempted_at": time(Some(a.attempted_at)),
        "specialist": a.specialist,
    });
    if with_note {
        v["note"] = json!(a.note);
    } else {
        v["has_note"] = json!(a.note.is_some());
    }
    v
}

fn dna_history(facts: &[AppointmentFact]) -> Value {
    let mut facts: Vec<&AppointmentFact> = facts.iter().collect();
    facts.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.key.cmp(&b.key)));
    facts
        .iter()
        .map(|f| {
            json!({
                "start": f.start.map(rfc3339),
                "attendance": f.attendance,
                "cancelled_by": f.cancelled_by,
            })
        })
        .collect()
}

/// The outreach part of `GET /api/cases/{id}`: which rule would close the
/// case and when (assessed now), its episodes, attempts, DNA history and
/// closures by a source's rule.
pub async fn case_outreach(s: &AppState, case_id: &str, opened_at: i64) -> Result<Value, ApiError> {
    let store = s.engine.store.as_ref();
    let now = s.engine.now();
    let facts = appointment_facts(store, case_id).await?;
    let attempts = store.attempts_for_case(case_id).await?;
    let last_contact = attempts
        .iter()
        .filter(|a| a.outcome == "contacted")
        .map(|a| a.attempted_at)
        .max();
    let assessment = assess(
        &CaseHistory {
            appointments: &facts,
            last_contact: last_contact.map(from_ms),
            opened_at: from_ms(opened_at),
        },
        &s.engine.ctx.outreach.rules,
        now,
    );
    let episodes = store.episodes_for_case(case_id).await?;
    let closures = store.closures_by_rule_for_case(case_id).await?;
    Ok(json!({
        "closure_risk": assessment.risks,
        "episodes": episodes.iter().map(|e| episode_view(s, e)).collect::<Vec<_>>(),
        "attempts": attempts.iter().map(|a| attempt_view(a, true)).collect::<Vec<_>>(),
        "appointments": dna_history(&facts),
        "closures_by_rule": closures.iter().map(|c| json!({
            "referral_id": c.referral_id,
            "cause": c.cause,
            "closed_at": time(Some(c.closed_at)),
        })).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
pub struct BoardQuery {
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    200
}

/// `GET /api/outreach`: every open flag, most pressing first, with its rule,
/// deadline, DNA history and the attempts so far.
pub async fn board(
    State(s): State<AppState>,
    Query(q): Query<BoardQuery>,
) -> Result<Json<Value>, ApiError> {
    let store = s.engine.store.as_ref();
    let episodes = store.episodes_active(q.limit.clamp(1, 2000)).await?;
    let mut out = Vec::with_capacity(episodes.len());
    for e in &episodes {
        let facts = appointment_facts(store, &e.case_id).await?;
        let attempts = store.attempts_for_case(&e.case_id).await?;
        let mut v = episode_view(&s, e);
        v["appointments"] = dna_history(&facts);
        v["attempts"] = attempts
            .iter()
            .filter(|a| e.covers(a))
            .map(|a| attempt_view(a, false))
            .collect();
        out.push(v);
    }
    Ok(Json(json!({"count": out.len(), "flags": out})))
}

pub(super) fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            json_rejection_summary(&e),
        )
    })
}

/// Refuses `keys` in a body: they come from the path.
pub(super) fn from_path_only(v: &Value, keys: &[&str]) -> Result<(), ApiError> {
    match keys.iter().find(|k| v.get(**k).is_some()) {
        Some(key) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            format!("{key} comes from the path; leave it out of the body"),
        )),
        None => Ok(()),
    }
}

/// A JSON body as `T`; a mismatch is a 422 naming the field, never its value.
pub(super) fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            crate::ingest::summary::serde_summary(&e),
        )
    })
}

/// A person's text field: present, not blank, no control characters, bounded.
pub(super) fn check_text(problems: &mut Vec<(String, String)>, field: &str, v: &str, max: usize) {
    if v.trim().is_empty() {
        problems.push((field.into(), "is required".into()));
    } else if v.chars().count() > max {
        problems.push((field.into(), format!("is longer than {max} characters")));
    } else if v.chars().any(|c| c.is_control()) {
        problems.push((field.into(), "contains control characters".into()));
    }
}

/// 201 when the action recorded something new, 200 for a repeat.
pub(super) fn created_or_repeat(a: &Applied) -> StatusCode {
    match a {
        Applied::Processed { .. } => StatusCode::CREATED,
        _ => StatusCode::OK,
    }
}

/// Runs a person's command and maps a refusal to its HTTP status.
pub(super) async fn run(s: &AppState, command: Command) -> Result<Applied, ApiError> {
    let applied = s.engine.execute_action(command).await?;
    if let Applied::Rejected(r) = &applied {
        let status = match r.code {
            RejectCode::UnknownCase => StatusCode::NOT_FOUND,
            RejectCode::UnknownDocument | RejectCode::UnknownJob => StatusCode::NOT_FOUND,
            RejectCode::InvalidOutreachAttempt
            | RejectCode::InvalidDocument
            | RejectCode::IncompleteDocument
            | RejectCode::UnknownQuestionnaire
            | RejectCode::InvalidEmploymentRecord
            | RejectCode::InvalidAssignment
            | RejectCode::InvalidEvent => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::CONFLICT,
        };
        return Err(ApiError::new(status, r.code.as_str(), r.reason.clone()));
    }
    Ok(applied)
}

/// `POST /api/cases/{id}/close`: `{"reason": ..., "closed_by": ...}`.
pub async fn close_case(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<CloseCaseInput>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let mut req = body(b)?;
    let mut problems = vec![];
    check_text(&mut problems, "reason", &req.reason, 500);
    check_text(&mut problems, "closed_by", &req.closed_by, 128);
    if !problems.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "closing a case needs a reason and who closed it",
        )
        .with_problems(problems));
    }
    req.case_id = id.clone();
    run(&s, Command::CloseCase(req)).await?;
    Ok(Json(json!({"case_id": id, "status": "closed"})))
}

/// `POST /api/cases/{id}/outreach/resolve`: `{"decided_by": ..., "reason"?: ...}`.
pub async fn resolve(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<ResolveOutreachInput>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let mut req = body(b)?;
    let mut problems = vec![];
    check_text(&mut problems, "decided_by", &req.decided_by, 128);
    if let Some(r) = &req.reason {
        check_text(&mut problems, "reason", r, 500);
    }
    if !problems.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
            "resolving outreach needs who decided it",
        )
        .with_problems(problems));
    }
    req.case_id = id.clone();
    run(&s, Command::ResolveOutreach(req)).await?;
    Ok(Json(json!({"case_id": id, "outreach": "resolved"})))
}

/// `POST /api/cases/{id}/outreach-attempts`: the body of an
/// `ips.outreach-attempt.v1` event without `case_id`. Answers 201 with the
/// attempt as stored; a repeat of the same attempt answers 200.
pub async fn record_attempt(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut v = body(b)?;
    from_path_only(&v, &["case_id"])?;
    if let Some(o) = v.as_object_mut() {
        o.insert("case_id".into(), json!(id));
    }
    let input: OutreachAttemptInput = decode(v)?;
    if let Err(e) = input.validate() {
        return Err(ApiError::unprocessable(
            "invalid-outreach-attempt",
            "the outreach attempt has problems; see problems",
            e.into_fields(),
        ));
    }
    let applied = run(&s, Command::OutreachAttempt(Box::new(input))).await?;
    let status = created_or_repeat(&applied);
    let attempts = s.engine.store.attempts_for_case(&id).await?;
    Ok((
        status,
        Json(json!({
            "case_id": id,
            "attempts": attempts.iter().map(|a| attempt_view(a, true)).collect::<Vec<_>>(),
        })),
    ))
}
