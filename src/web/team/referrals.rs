//! Referrals: incomplete ones (with what is missing), those awaiting a
//! decision (decided here: accept, or decline with a configured reason),
//! and the waiting list against the IPS targets (5 waiting, 6 weeks).

use super::caseload::short_id;
use super::{day, refusal_message, run, snapshot, store_failed};
use crate::domain::referral::{DecisionOutcome, ReferralState};
use crate::domain::reports::caseload::{WAIT_TARGET_DAYS, WAITING_LIST_TARGET, waiting_list};
use crate::engine::Applied;
use crate::engine::command::{Command, DecisionInput};
use crate::web::WebApp;
use crate::web::page::{Chrome, FieldError, Section, html_status, see_other};
use crate::web::{CsrfForm, Staff, Web};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

pub struct Incomplete {
    pub received: String,
    pub source: String,
    pub missing: Vec<String>,
    pub case_id: Option<String>,
}

pub struct Awaiting {
    pub id: String,
    pub short: String,
    pub received: String,
    pub source: String,
    pub case_id: Option<String>,
}

pub struct Waiting {
    pub case_id: Option<String>,
    pub short: String,
    pub accepted: String,
    pub days: i64,
    pub over: bool,
}

#[derive(Template)]
#[template(path = "team/referrals.html", config = "src/web/askama.toml")]
struct Page {
    chrome: Chrome,
    errors: Vec<FieldError>,
    incomplete: Vec<Incomplete>,
    awaiting: Vec<Awaiting>,
    waiting: Vec<Waiting>,
    over_list_target: bool,
    list_target: usize,
    wait_weeks: i64,
    /// Decline reasons: (code, what a person reads).
    reasons: Vec<(String, String)>,
}

/// What a person reads for an incomplete-referral reason code.
fn missing_label(code: &str) -> String {
    match code {
        "no-patient-details" => "Patient details".into(),
        "no-nhs-number" => "NHS number".into(),
        "no-contact-route" => "A way to contact the person".into(),
        "no-reason" => "The reason for referral".into(),
        c if c.starts_with("invalid-nhs-number") => {
            "A valid NHS number (the one sent fails its check)".into()
        }
        c => c.replace('-', " "),
    }
}

async fn render(
    s: &WebApp,
    web: &crate::web::WebState,
    staff: &Staff,
    errors: Vec<FieldError>,
) -> Response {
    let snap = match snapshot(s).await {
        Ok(x) => x,
        Err(e) => return store_failed(&e),
    };
    let now = s.engine.now();
    let mut incomplete = vec![];
    let mut awaiting = vec![];
    for r in snap.referrals.iter().rev() {
        match r.state {
            ReferralState::Incomplete => incomplete.push(Incomplete {
                received: day(r.received_at),
                source: r.source_kind.clone(),
                missing: r
                    .incomplete_reasons
                    .iter()
                    .map(|m| missing_label(m))
                    .collect(),
                case_id: r.case_id.clone(),
            }),
            ReferralState::AwaitingDecision => awaiting.push(Awaiting {
                short: short_id(&r.id),
                id: r.id.clone(),
                received: day(r.received_at),
                source: r.source_kind.clone(),
                case_id: r.case_id.clone(),
            }),
            _ => {}
        }
    }
    let waiting: Vec<Waiting> = waiting_list(&snap, now)
        .into_iter()
        .map(|w| Waiting {
            short: w.case_id.as_deref().map(short_id).unwrap_or_default(),
            case_id: w.case_id,
            accepted: day(w.accepted_at),
            days: w.days_waiting,
            over: w.over_six_weeks,
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html_status(
        status,
        &Page {
            chrome: web.chrome(staff, Section::Referrals),
            errors,
            incomplete,
            awaiting,
            over_list_target: waiting.len() > WAITING_LIST_TARGET,
            waiting,
            list_target: WAITING_LIST_TARGET,
            wait_weeks: WAIT_TARGET_DAYS / 7,
            reasons: s
                .engine
                .ctx
                .decline_reasons
                .iter()
                .map(|r| (r.clone(), r.replace('-', " ")))
                .collect(),
        },
    )
}

/// `GET /referrals`.
pub async fn list(State(s): State<WebApp>, Web(web): Web, staff: Staff) -> Response {
    render(&s, &web, &staff, vec![]).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DecisionForm {
    decision: String,
    reason: String,
}

/// `POST /referrals/{id}/decision`.
pub async fn decide(
    State(s): State<WebApp>,
    Web(web): Web,
    staff: Staff,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<DecisionForm>,
) -> Response {
    let field = format!("decision-{}", short_id(&id));
    let outcome = match (f.decision.as_str(), f.reason.trim()) {
        ("accept", _) => Ok((DecisionOutcome::Accepted, None)),
        ("decline", r) if s.engine.ctx.decline_reasons.iter().any(|x| x == r) => {
            Ok((DecisionOutcome::Declined, Some(r.to_owned())))
        }
        ("decline", _) => Err(FieldError::new(
            format!("reason-{}", short_id(&id)),
            "Select why the referral is declined",
        )),
        _ => Err(FieldError::new(field.clone(), "Select accept or decline")),
    };
    let (outcome, decline_reason) = match outcome {
        Ok(x) => x,
        Err(e) => return render(&s, &web, &staff, vec![e]).await,
    };
    let command = Command::Decision(DecisionInput {
        event_type: None,
        referral_id: id.clone(),
        outcome,
        decline_reason,
        decided_by: Some(staff.name.clone()),
    });
    match run(&s, command).await {
        Ok(Applied::Rejected(r)) => {
            let e = FieldError::new(field, refusal_message(r.code, &r.reason));
            render(&s, &web, &staff, vec![e]).await
        }
        Ok(_) => see_other("/referrals#awaiting"),
        Err(e) => store_failed(&e),
    }
}
