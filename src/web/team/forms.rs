//! The pages' forms: what a browser posts (every field text, so nothing a
//! person types is lost to a parse error), turned into engine commands or
//! into the error summary's messages, one per field, saying what to do.

use crate::domain::employment::{EmploymentStatus, HoursBand};
use crate::domain::outreach::{AttemptMethod, AttemptOutcome};
use crate::engine::command::{
    EmploymentStatusInput, InvalidInput, JobEndInput, JobStartInput, OutreachAttemptInput,
};
use crate::web::FieldError;
use serde::Deserialize;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// What a person reads for each way of reaching someone.
pub fn method_label(m: AttemptMethod) -> &'static str {
    match m {
        AttemptMethod::Phone => "Phone call",
        AttemptMethod::TextMessage => "Text message",
        AttemptMethod::Letter => "Letter",
        AttemptMethod::Email => "Email",
        AttemptMethod::HomeVisit => "Home visit",
        AttemptMethod::CommunityVisit => "Visit in the community",
        AttemptMethod::JointVisit => "Joint visit with the care team",
        AttemptMethod::FamilyOrCarerContact => "Through family or a carer",
    }
}

fn parse_date(field: &str, v: &str, what: &str, errors: &mut Vec<FieldError>) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    match Date::parse(v.trim(), fmt) {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                format!("Enter {what} as a date, for example 2026-08-03"),
            ));
            None
        }
    }
}

/// The engine's own checks, as the same field errors.
fn engine_problems(e: InvalidInput, field_ids: &[(&str, &str)]) -> Vec<FieldError> {
    e.problems
        .into_iter()
        .map(|(f, m)| {
            let id = field_ids
                .iter()
                .find(|(k, _)| *k == f)
                .map_or(f, |(_, id)| *id);
            FieldError::new(id, format!("{} {m}", f.replace('_', " ")))
        })
        .collect()
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct AttemptForm {
    pub method: String,
    pub outcome: String,
    /// `datetime-local`: `2026-08-03T14:30`.
    pub attempted_at: String,
    pub note: String,
}

impl AttemptForm {
    pub fn command(
        &self,
        case_id: &str,
        specialist: &str,
    ) -> Result<OutreachAttemptInput, Vec<FieldError>> {
        let mut errors = vec![];
        let method: Option<AttemptMethod> = self.method.parse().ok();
        if method.is_none() {
            errors.push(FieldError::new(
                "method",
                "Select how you tried to reach them",
            ));
        }
        let outcome: Option<AttemptOutcome> = self.outcome.parse().ok();
        if outcome.is_none() {
            errors.push(FieldError::new("outcome", "Select what happened"));
        }
        let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
        let at = PrimitiveDateTime::parse(self.attempted_at.trim(), fmt)
            .ok()
            .map(PrimitiveDateTime::assume_utc);
        if at.is_none() {
            errors.push(FieldError::new(
                "attempted_at",
                "Enter when you tried, as a date and time",
            ));
        }
        let (Some(method), Some(outcome), Some(attempted_at)) = (method, outcome, at) else {
            return Err(errors);
        };
        let input = OutreachAttemptInput {
            event_type: None,
            case_id: case_id.to_owned(),
            attempt_id: None,
            method,
            outcome,
            attempted_at,
            note: Some(self.note.clone()).filter(|n| !n.trim().is_empty()),
            specialist: specialist.to_owned(),
        };
        input
            .validate()
            .map_err(|e| engine_problems(e, &[("note", "note")]))?;
        Ok(input)
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct JobStartForm {
    pub employer: String,
    pub start_date: String,
    pub hours_band: String,
    pub hours_per_week: String,
    pub paid: String,
}

impl JobStartForm {
    pub fn command(
        &self,
        case_id: &str,
        by: &str,
        today: Date,
    ) -> Result<JobStartInput, Vec<FieldError>> {
        let mut errors = vec![];
        if self.employer.trim().is_empty() {
            errors.push(FieldError::new("employer", "Enter the employer's name"));
        }
        let start = parse_date(
            "start_date",
            &self.start_date,
            "the start date",
            &mut errors,
        );
        let band: Option<HoursBand> = self.hours_band.parse().ok();
        if band.is_none() {
            errors.push(FieldError::new(
                "hours_band",
                "Select the hours worked each week",
            ));
        }
        let hours = match self.hours_per_week.trim() {
            "" => None,
            h => match h.parse::<f64>() {
                Ok(x) => Some(x),
                Err(_) => {
                    errors.push(FieldError::new(
                        "hours_per_week",
                        "Enter hours a week as a number, for example 12.5",
                    ));
                    None
                }
            },
        };
        let paid = match self.paid.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => {
                errors.push(FieldError::new("paid", "Select whether the work is paid"));
                None
            }
        };
        let (Some(start_date), Some(hours_band), Some(paid), true) =
            (start, band, paid, errors.is_empty())
        else {
            return Err(errors);
        };
        let input = JobStartInput {
            event_type: None,
            case_id: case_id.to_owned(),
            job_id: None,
            employer: self.employer.clone(),
            start_date,
            hours_band,
            hours_per_week: hours,
            paid,
            recorded_by: by.to_owned(),
        };
        input.validate(today).map_err(|e| {
            engine_problems(
                e,
                &[
                    ("employer", "employer"),
                    ("start_date", "start_date"),
                    ("hours_band", "hours_band"),
                ],
            )
        })?;
        Ok(input)
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct JobEndForm {
    pub job_id: String,
    pub end_date: String,
    pub reason: String,
}

impl JobEndForm {
    pub fn command(
        &self,
        case_id: &str,
        by: &str,
        today: Date,
    ) -> Result<JobEndInput, Vec<FieldError>> {
        let mut errors = vec![];
        if self.job_id.trim().is_empty() {
            errors.push(FieldError::new("job_id", "Select the job that ended"));
        }
        let end = parse_date("end_date", &self.end_date, "the end date", &mut errors);
        let Some(end_date) = end.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        let input = JobEndInput {
            event_type: None,
            case_id: case_id.to_owned(),
            job_id: self.job_id.clone(),
            end_date,
            reason: Some(self.reason.clone()).filter(|r| !r.trim().is_empty()),
            recorded_by: by.to_owned(),
        };
        input
            .validate(today)
            .map_err(|e| engine_problems(e, &[("end_date", "end_date"), ("reason", "reason")]))?;
        Ok(input)
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct StatusForm {
    pub status: String,
    pub recorded_on: String,
    pub status_start_date: String,
    pub status_hours_band: String,
}

impl StatusForm {
    pub fn command(
        &self,
        case_id: &str,
        by: &str,
        today: Date,
    ) -> Result<EmploymentStatusInput, Vec<FieldError>> {
        let mut errors = vec![];
        let status: Option<EmploymentStatus> = self.status.parse().ok();
        if status.is_none() {
            errors.push(FieldError::new("status", "Select the employment status"));
        }
        let recorded = parse_date(
            "recorded_on",
            &self.recorded_on,
            "the date recorded",
            &mut errors,
        );
        let start = match self.status_start_date.trim() {
            "" => None,
            v => parse_date("status_start_date", v, "since when it holds", &mut errors),
        };
        let band = match self.status_hours_band.trim() {
            "" => None,
            v => match v.parse::<HoursBand>() {
                Ok(b) => Some(b),
                Err(_) => {
                    errors.push(FieldError::new(
                        "status_hours_band",
                        "Select the hours worked",
                    ));
                    None
                }
            },
        };
        let (Some(status), Some(recorded_on), true) = (status, recorded, errors.is_empty()) else {
            return Err(errors);
        };
        let input = EmploymentStatusInput {
            event_type: None,
            case_id: case_id.to_owned(),
            status,
            recorded_on,
            start_date: start,
            hours_band: band,
            recorded_by: by.to_owned(),
        };
        input.validate(today).map_err(|e| {
            engine_problems(
                e,
                &[
                    ("recorded_on", "recorded_on"),
                    ("start_date", "status_start_date"),
                    ("hours_band", "status_hours_band"),
                ],
            )
        })?;
        Ok(input)
    }
}

/// `datetime-local` value for now, as the attempt form's default.
pub fn local_now(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    t.format(&f).unwrap_or_default()
}
