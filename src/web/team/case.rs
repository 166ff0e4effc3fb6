//! One case: who holds it, its referrals, outreach, documents and
//! employment record, with the forms to act on it. A form with problems
//! shows the page again with the NHS error summary and what was typed.

use super::caseload::short_id;
use super::forms::{AttemptForm, JobEndForm, JobStartForm, StatusForm, local_now, method_label};
use super::{day, refusal_message, roster, run, store_failed};
use crate::domain::documents::delivery::DeliveryState;
use crate::domain::employment::{EmploymentStatus, HoursBand};
use crate::domain::outreach::{AttemptMethod, AttemptOutcome};
use crate::engine::Applied;
use crate::engine::command::{AssignInput, Command};
use crate::store::{AttemptRow, DeliveryRow, DocumentRow, JobRow, StatusRow};
use crate::web::WebApp;
use crate::web::page::{Chrome, FieldError, Section, html_status, see_other};
use crate::web::{CsrfForm, Staff, Web};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use strum::IntoEnumIterator;

pub struct Choice {
    pub value: String,
    pub label: String,
}

fn choices<T: Copy>(
    items: impl Iterator<Item = T>,
    f: impl Fn(T) -> (String, String),
) -> Vec<Choice> {
    items
        .map(|t| {
            let (value, label) = f(t);
            Choice { value, label }
        })
        .collect()
}

/// Which form was posted, with what was typed, for showing it again.
#[derive(Default)]
pub struct Posted {
    pub attempt: AttemptForm,
    pub job: JobStartForm,
    pub end: JobEndForm,
    pub status: StatusForm,
}

#[derive(Template)]
#[template(path = "team/case.html", config = "src/web/askama.toml")]
struct CasePage {
    chrome: Chrome,
    errors: Vec<FieldError>,
    case_id: String,
    short: String,
    status: String,
    opened: String,
    specialist: Option<String>,
    /// The signed-in person holds the case (nothing to take).
    held_by_me: bool,
    roster: Vec<Choice>,
    referrals: Vec<(String, String, String)>,
    flag: Option<(String, String)>,
    attempts: Vec<AttemptRow>,
    documents: Vec<DocumentRow>,
    deliveries: Vec<DeliveryRow>,
    jobs: Vec<JobRow>,
    statuses: Vec<StatusRow>,
    methods: Vec<Choice>,
    outcomes: Vec<Choice>,
    bands: Vec<Choice>,
    employment_statuses: Vec<Choice>,
    posted: Posted,
}

impl CasePage {
    /// Where a document went over MESH and what came back, for people.
    fn delivery_of(&self, document_id: &str) -> Option<String> {
        let d = self
            .deliveries
            .iter()
            .find(|d| d.document_id == document_id)?;
        let practice = d
            .recipient_ods
            .as_deref()
            .unwrap_or("the patient's GP practice");
        let state = match d.state.0 {
            DeliveryState::Sent => "sent, no acknowledgement yet",
            DeliveryState::Delivered => "delivered to the practice's system",
            DeliveryState::Accepted => "accepted by the practice",
            DeliveryState::Rejected => "rejected",
            DeliveryState::Unacknowledged => "not acknowledged in time",
            DeliveryState::Unroutable => "not sent",
        };
        let why = match (&d.ack_code, &d.ack_text) {
            (Some(c), Some(t)) => format!(" ({c}: {t})"),
            (None, Some(t)) => format!(" ({t})"),
            _ => String::new(),
        };
        Some(format!("GP practice {practice} over MESH: {state}{why}"))
    }

    fn method_label(&self, code: &str) -> String {
        code.parse::<AttemptMethod>()
            .map(method_label)
            .unwrap_or(code)
            .to_owned()
    }
    fn outcome_label(&self, code: &str) -> String {
        code.parse::<AttemptOutcome>()
            .map(AttemptOutcome::label)
            .unwrap_or(code)
            .to_owned()
    }
    fn band_label(&self, code: &str) -> String {
        code.parse::<HoursBand>()
            .map(HoursBand::label)
            .unwrap_or(code)
            .to_owned()
    }
    fn status_label(&self, code: &str) -> String {
        code.parse::<EmploymentStatus>()
            .map(EmploymentStatus::label)
            .unwrap_or(code)
            .to_owned()
    }
    fn at(&self, ms: &i64) -> String {
        day(crate::engine::from_ms(*ms))
    }
    fn err(&self, field: &str) -> Option<String> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.clone())
    }
}

async fn page(
    s: &WebApp,
    web: &crate::web::WebState,
    staff: &Staff,
    case_id: &str,
    errors: Vec<FieldError>,
    mut posted: Posted,
) -> Response {
    let store = &s.engine.store;
    let now = s.engine.now();
    if posted.attempt.attempted_at.is_empty() {
        posted.attempt.attempted_at = local_now(now);
    }
    if posted.status.recorded_on.is_empty() {
        posted.status.recorded_on = now.date().to_string();
    }
    let loaded = async {
        let Some(c) = store.case_get(case_id).await? else {
            return Ok(None);
        };
        let refs = store.referrals_for_case(case_id).await?;
        let episodes = store.episodes_for_case(case_id).await?;
        let attempts = store.attempts_for_case(case_id).await?;
        let documents = store.documents_for_case(case_id).await?;
        let deliveries = store.deliveries_for_case(case_id).await?;
        let jobs = store.jobs_for_case(case_id).await?;
        let statuses = store.statuses_for_case(case_id).await?;
        let assigned = store.assignment_of(case_id).await?;
        Ok::<_, crate::store::StoreError>(Some((
            c, refs, episodes, attempts, documents, deliveries, jobs, statuses, assigned,
        )))
    }
    .await;
    let (c, refs, episodes, attempts, documents, deliveries, jobs, statuses, assigned) =
        match loaded {
            Ok(Some(x)) => x,
            Ok(None) => {
                return crate::web::MessagePage::new(
                    web.chrome(staff, Section::None),
                    "Case not found",
                    &["There is no case with this address. It may have been mistyped."],
                )
                .link("/caseload", "Go to your caseload")
                .respond(StatusCode::NOT_FOUND);
            }
            Err(e) => return store_failed(&e),
        };
    let roster = roster(s).await.unwrap_or_default();
    let name_of = |id: &str| {
        roster
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let flag = episodes.iter().find(|e| e.resolved_at.is_none()).map(|e| {
        (
            s.engine.ctx.outreach.rule_name(&e.rule_id),
            day(crate::engine::from_ms(e.due_at)),
        )
    });
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html_status(
        status,
        &CasePage {
            chrome: web.chrome(staff, Section::Caseload),
            errors,
            short: short_id(&c.id),
            case_id: c.id.clone(),
            status: c.status.as_str().to_owned(),
            opened: day(crate::engine::from_ms(c.opened_at)),
            held_by_me: assigned.as_ref().is_some_and(|a| a.specialist == staff.sub),
            specialist: assigned.map(|a| name_of(&a.specialist)),
            roster: roster
                .iter()
                .map(|(id, n)| Choice {
                    value: id.clone(),
                    label: n.clone(),
                })
                .collect(),
            referrals: refs
                .iter()
                .map(|r| {
                    (
                        r.state.as_str().replace('-', " "),
                        day(crate::engine::from_ms(r.received_at)),
                        r.source_kind.clone(),
                    )
                })
                .collect(),
            flag,
            attempts,
            documents,
            deliveries,
            jobs,
            statuses,
            methods: choices(AttemptMethod::iter(), |m| {
                (<&str>::from(m).to_owned(), method_label(m).to_owned())
            }),
            outcomes: choices(AttemptOutcome::iter(), |o| {
                (<&str>::from(o).to_owned(), o.label().to_owned())
            }),
            bands: choices(HoursBand::iter(), |b| {
                (b.code().to_owned(), format!("{} ({})", b.label(), b.code()))
            }),
            employment_statuses: choices(EmploymentStatus::iter(), |e| {
                (e.code().to_owned(), format!("{} ({})", e.label(), e.code()))
            }),
            posted,
        },
    )
}

/// `GET /cases/{id}`.
pub async fn show(
    State(s): State<WebApp>,
    Web(web): Web,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    page(&s, &web, &staff, &id, vec![], Posted::default()).await
}

/// Runs a form's command: back to the case on success, the page again with
/// the engine's refusal otherwise.
async fn apply(
    s: &WebApp,
    web: &crate::web::WebState,
    staff: &Staff,
    id: &str,
    command: Result<Command, Vec<FieldError>>,
    posted: Posted,
    (field, anchor): (&str, &str),
) -> Response {
    let command = match command {
        Ok(c) => c,
        Err(errors) => return page(s, web, staff, id, errors, posted).await,
    };
    match run(s, command).await {
        Ok(Applied::Rejected(r)) => {
            let e = FieldError::new(field, refusal_message(r.code, &r.reason));
            page(s, web, staff, id, vec![e], posted).await
        }
        Ok(_) => see_other(&format!("/cases/{id}#{anchor}")),
        Err(e) => store_failed(&e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AssignForm {
    specialist: String,
}

/// `POST /cases/{id}/assign`.
pub async fn assign(
    State(s): State<WebApp>,
    Web(web): Web,
    staff: Staff,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<AssignForm>,
) -> Response {
    // A specialist may take a case; giving it to someone else is a team lead's.
    let target = if f.specialist.is_empty() {
        staff.sub.clone()
    } else {
        f.specialist
    };
    let known = roster(&s)
        .await
        .unwrap_or_default()
        .iter()
        .any(|(i, _)| *i == target);
    let command = if target != staff.sub && !staff.sees_team() {
        Err(vec![FieldError::new(
            "specialist",
            "Only a team lead can give a case to someone else",
        )])
    } else if !known && target != staff.sub {
        Err(vec![FieldError::new(
            "specialist",
            "Select a specialist on the team",
        )])
    } else {
        Ok(Command::Assign(AssignInput {
            case_id: id.clone(),
            specialist: target,
            assigned_by: staff.name.clone(),
        }))
    };
    apply(
        &s,
        &web,
        &staff,
        &id,
        command,
        Posted::default(),
        ("specialist", "assignment"),
    )
    .await
}

/// A form on the case page: what it asks the engine to do, where a refusal
/// is shown, and how it is shown again with what was typed.
pub trait CaseForm: serde::de::DeserializeOwned + Send + 'static {
    /// The input whose error message a refusal by the engine is shown beside,
    /// and the section the page returns to.
    const TARGET: (&'static str, &'static str);
    fn command(
        &self,
        case_id: &str,
        by: &str,
        today: time::Date,
    ) -> Result<Command, Vec<FieldError>>;
    fn into_posted(self) -> Posted;
}

/// `impl CaseForm`: the form type, its `Posted` field, its target, and
/// the command its input becomes.
macro_rules! case_form {
    ($form:ty, $field:ident, $target:expr, $variant:ident, |$f:ident, $case:ident, $by:ident, $today:ident| $input:expr) => {
        impl CaseForm for $form {
            const TARGET: (&'static str, &'static str) = $target;
            fn command(
                &self,
                $case: &str,
                $by: &str,
                $today: time::Date,
            ) -> Result<Command, Vec<FieldError>> {
                let $f = self;
                $input.map(|i| Command::$variant(Box::new(i)))
            }
            fn into_posted(self) -> Posted {
                Posted {
                    $field: self,
                    ..Posted::default()
                }
            }
        }
    };
}

case_form!(
    AttemptForm,
    attempt,
    ("method", "outreach"),
    OutreachAttempt,
    |f, case, by, _today| f.command(case, by)
);
case_form!(
    JobStartForm,
    job,
    ("employer", "employment"),
    JobStart,
    |f, case, by, today| f.command(case, by, today)
);
case_form!(
    JobEndForm,
    end,
    ("job_id", "employment"),
    JobEnd,
    |f, case, by, today| f.command(case, by, today)
);
case_form!(
    StatusForm,
    status,
    ("status", "employment"),
    EmploymentStatus,
    |f, case, by, today| f.command(case, by, today)
);

/// `POST /cases/{id}/outreach-attempts`, `…/job-starts`, `…/job-ends`,
/// `…/employment-status`: the form's command as the signed-in person.
pub async fn submit<F: CaseForm>(
    State(s): State<WebApp>,
    Web(web): Web,
    staff: Staff,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<F>,
) -> Response {
    let command = f.command(&id, &staff.name, s.engine.now().date());
    apply(&s, &web, &staff, &id, command, f.into_posted(), F::TARGET).await
}
