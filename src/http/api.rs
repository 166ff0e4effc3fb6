//! The admin / employment-specialist API (bearer token, checked by the
//! router's layer `auth::require_api_token` before any handler here runs).
//!
//! Responses carry the bridge's own ids, states, codes and dates, never the
//! NHS number: the API is for working the caseload, the record holds the rest.

use super::AppState;
use super::error::{ApiError, json_rejection_summary};
use crate::domain::referral::{self, ReferralState};
use crate::engine::command::{Command, DecisionInput, DecisionOutcome};
use crate::engine::{Applied, RejectCode, from_ms, rfc3339};
use crate::store::{CaseRow, ReferralRow};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

fn time(ms: Option<i64>) -> Value {
    ms.map(|m| json!(rfc3339(from_ms(m))))
        .unwrap_or(Value::Null)
}

pub fn referral_view(r: &ReferralRow, now: time::OffsetDateTime) -> Value {
    let reasons: Vec<String> = serde_json::from_str(&r.incomplete_reasons).unwrap_or_default();
    let days_waiting = match (r.state, r.decided_at) {
        (ReferralState::Accepted, Some(d)) => json!(referral::days_waiting(from_ms(d), now)),
        _ => Value::Null,
    };
    // How the team finds this referral in the referrer's system: the
    // ServiceRequest as the sender named it and its business identifier.
    // Neither is patient data.
    let identifier = r
        .business_identifier()
        .map(|(system, value)| json!({"system": system, "value": value}));
    json!({
        "id": r.id,
        "case_id": r.case_id,
        "state": r.state,
        "fhir_status": r.fhir_status,
        "channel": r.channel,
        "source_record": {
            "service_request": r.resource_ref,
            "identifier": identifier,
            "key": r.referral_key,
        },
        "incomplete_reasons": reasons,
        "multiple": r.is_multiple == 1,
        "source": {"ods_code": r.source_ods, "kind": r.source_kind},
        "dates": {
            "authored": time(r.authored_at),
            "received": time(Some(r.received_at)),
            "completed": time(r.completed_at),
            "decided": time(r.decided_at),
            "assistance_commenced": time(r.assistance_commenced_at),
        },
        "decision": r.decision,
        "decline_reason": r.decline_reason,
        "days_waiting": days_waiting,
    })
}

fn case_view(c: &CaseRow, referrals: &[ReferralRow], now: time::OffsetDateTime) -> Value {
    json!({
        "id": c.id,
        "status": c.status,
        "opened_at": time(Some(c.opened_at)),
        "closed_at": time(c.closed_at),
        "closed_reason": c.closed_reason,
        "referral_count": c.referral_count,
        "referrals": referrals.iter().map(|r| referral_view(r, now)).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
pub struct Page {
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn default_limit() -> i64 {
    100
}

pub async fn list_cases(
    State(s): State<AppState>,
    Query(p): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let store = &s.engine.store;
    let now = s.engine.now();
    let cases = store
        .cases_list(p.limit.clamp(1, 1000), p.offset.max(0))
        .await?;
    let mut out = Vec::with_capacity(cases.len());
    for c in &cases {
        let refs = store.referrals_for_case(&c.id).await?;
        out.push(case_view(c, &refs, now));
    }
    Ok(Json(json!({"cases": out})))
}

pub async fn get_case(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = &s.engine.store;
    let c = store.case_get(&id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no case with id {id:?}"),
        )
    })?;
    let refs = store.referrals_for_case(&c.id).await?;
    let mut view = case_view(&c, &refs, s.engine.now());
    view["outreach"] = super::outreach::case_outreach(&s, &c.id, c.opened_at).await?;
    view["documents"] = super::documents::documents_view(&s, &c.id).await?;
    view["employment"] = super::employment::employment_view(&s, &c.id).await?;
    Ok(Json(view))
}

#[derive(Deserialize)]
pub struct ReferralQuery {
    status: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
}

/// `?status=waiting` lists accepted referrals not yet started (the waiting
/// list); any referral state name (`incomplete`, `awaiting-decision`, ...) filters by it.
pub async fn list_referrals(
    State(s): State<AppState>,
    Query(q): Query<ReferralQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = q.status.as_deref().unwrap_or("waiting");
    let state = if status == "waiting" {
        "accepted"
    } else {
        status
    };
    if referral::ReferralState::parse(state).is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-status",
            format!(
                "status {status:?} is not one of: waiting, incomplete, awaiting-decision, accepted, started, declined, withdrawn, closed-by-referrer-after-dna"
            ),
        ));
    }
    let now = s.engine.now();
    let rows = s
        .engine
        .store
        .referrals_in_state(state, q.limit.clamp(1, 5000))
        .await?;
    Ok(Json(
        json!({"status": status, "count": rows.len(), "referrals": rows.iter().map(|r| referral_view(r, now)).collect::<Vec<_>>()}),
    ))
}

pub async fn get_referral(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = s.engine.store.referral_get(&id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no referral with id {id:?}"),
        )
    })?;
    Ok(Json(referral_view(&r, s.engine.now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    outcome: String,
    #[serde(default)]
    decline_reason: Option<String>,
    #[serde(default)]
    decided_by: Option<String>,
}

/// `POST /api/referrals/{id}/decision`. Idempotent: repeating the same
/// decision answers 200 and changes nothing; a different one answers 409.
pub async fn decide(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<DecisionRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            json_rejection_summary(&e),
        )
    })?;
    let outcome = match (req.outcome.as_str(), &req.decline_reason) {
        ("accepted", None) => DecisionOutcome::Accepted,
        ("accepted", Some(_)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-decision",
                "decline_reason only goes with outcome \"declined\"",
            ));
        }
        ("declined", Some(_)) => DecisionOutcome::Declined,
        ("declined", None) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-decision",
                "outcome \"declined\" needs a decline_reason",
            ));
        }
        (other, _) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-decision",
                format!("outcome must be \"accepted\" or \"declined\", got {other:?}"),
            ));
        }
    };
    let engine = &s.engine;
    let now = engine.now();
    let command = Command::Decision(DecisionInput {
        event_type: None,
        referral_id: id.clone(),
        outcome,
        decline_reason: req.decline_reason,
        decided_by: req.decided_by,
    });
    let applied = engine.execute_action(command).await?;
    let changed = match applied {
        Applied::Processed { .. } => true,
        Applied::Rejected(r) => {
            let status = match r.code {
                RejectCode::UnknownReferral => StatusCode::NOT_FOUND,
                RejectCode::UnknownDeclineReason => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::CONFLICT,
            };
            return Err(ApiError::new(status, r.code.as_str(), r.reason));
        }
        _ => false,
    };
    let r = engine
        .store
        .referral_get(&id)
        .await?
        .ok_or_else(|| ApiError::internal("referral vanished"))?;
    Ok(Json(
        json!({"changed": changed, "referral": referral_view(&r, now)}),
    ))
}
