//! Employment outcomes and case assignment: what a specialist records about
//! a person's work (`ips.job-start.v1`, `ips.job-end.v1`,
//! `ips.employment-status.v1`, the API and the pages), and who holds a case.

use super::{InvalidInput, MAX_ID_CHARS, MAX_SPECIALIST_CHARS, single_line_problems};
use crate::domain::employment::{EmploymentStatus, HoursBand};
use serde::{Deserialize, Serialize};
use time::Date;

pub const JOB_START_EVENT: &str = "ips.job-start.v1";
pub const JOB_END_EVENT: &str = "ips.job-end.v1";
pub const EMPLOYMENT_STATUS_EVENT: &str = "ips.employment-status.v1";

/// The longest employer name or end reason accepted, in characters.
pub const MAX_EMPLOYER_CHARS: usize = 200;

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

mod opt_iso_date {
    time::serde::format_description!(inner, Date, "[year]-[month]-[day]");
    pub use inner::option::{deserialize, serialize};
}

/// A person started a job.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobStartInput {
    #[serde(rename = "type", default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub case_id: String,
    /// The sender's id for the job: a resend with the same id is the same
    /// job, and a job end names it. Derived from the content when absent.
    #[serde(default)]
    pub job_id: Option<String>,
    pub employer: String,
    #[serde(with = "iso_date")]
    pub start_date: Date,
    /// NHS Data Dictionary WEEKLY HOURS WORKED.
    pub hours_band: HoursBand,
    /// Exact hours a week, when known (decides "at least 4 hours").
    #[serde(default)]
    pub hours_per_week: Option<f64>,
    pub paid: bool,
    pub recorded_by: String,
}

/// A job ended.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JobEndInput {
    #[serde(rename = "type", default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub case_id: String,
    pub job_id: String,
    #[serde(with = "iso_date")]
    pub end_date: Date,
    #[serde(default)]
    pub reason: Option<String>,
    pub recorded_by: String,
}

/// A person's employment status, as MHSDS table MHS004 records it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EmploymentStatusInput {
    #[serde(rename = "type", default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub case_id: String,
    /// NHS Data Dictionary EMPLOYMENT STATUS.
    pub status: EmploymentStatus,
    /// EmployStatusRecDate: when it was recorded.
    #[serde(with = "iso_date")]
    pub recorded_on: Date,
    /// EmployStatusStartDate: since when it holds, when known.
    #[serde(default, with = "opt_iso_date")]
    pub start_date: Option<Date>,
    /// WeekHoursWorked, for someone employed.
    #[serde(default)]
    pub hours_band: Option<HoursBand>,
    pub recorded_by: String,
}

/// Gives a case to a specialist (a team lead's or the specialist's own action).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    #[serde(default)]
    pub case_id: String,
    /// The specialist's staff id (their sign-in subject or configured id).
    pub specialist: String,
    pub assigned_by: String,
}

fn finish(problems: Vec<(&'static str, String)>) -> Result<(), InvalidInput> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InvalidInput { problems })
    }
}

fn line(out: &mut Vec<(&'static str, String)>, field: &'static str, v: &str, max: usize) {
    out.extend(single_line_problems(v, max).into_iter().map(|m| (field, m)));
}

impl JobStartInput {
    /// Checks what serde cannot. `today` keeps start dates out of the future.
    pub fn validate(&self, today: Date) -> Result<(), InvalidInput> {
        let mut p = Vec::new();
        line(&mut p, "case_id", &self.case_id, MAX_ID_CHARS);
        if let Some(id) = &self.job_id {
            line(&mut p, "job_id", id, MAX_ID_CHARS);
        }
        line(&mut p, "employer", &self.employer, MAX_EMPLOYER_CHARS);
        line(
            &mut p,
            "recorded_by",
            &self.recorded_by,
            MAX_SPECIALIST_CHARS,
        );
        if self.start_date > today {
            p.push(("start_date", "must not be in the future".to_owned()));
        }
        if let Some(h) = self.hours_per_week {
            match HoursBand::of_hours(h) {
                None => p.push((
                    "hours_per_week",
                    "must be more than 0 and at most 168".to_owned(),
                )),
                Some(b) if b != self.hours_band && self.hours_band != HoursBand::NotStated => p
                    .push((
                        "hours_band",
                        format!(
                            "does not match hours_per_week (which falls in band {})",
                            b.code()
                        ),
                    )),
                Some(_) => {}
            }
        }
        finish(p)
    }
}

impl JobEndInput {
    pub fn validate(&self, today: Date) -> Result<(), InvalidInput> {
        let mut p = Vec::new();
        line(&mut p, "case_id", &self.case_id, MAX_ID_CHARS);
        line(&mut p, "job_id", &self.job_id, MAX_ID_CHARS);
        line(
            &mut p,
            "recorded_by",
            &self.recorded_by,
            MAX_SPECIALIST_CHARS,
        );
        if let Some(r) = &self.reason {
            line(&mut p, "reason", r, MAX_EMPLOYER_CHARS);
        }
        if self.end_date > today {
            p.push(("end_date", "must not be in the future".to_owned()));
        }
        finish(p)
    }
}

impl EmploymentStatusInput {
    pub fn validate(&self, today: Date) -> Result<(), InvalidInput> {
        let mut p = Vec::new();
        line(&mut p, "case_id", &self.case_id, MAX_ID_CHARS);
        line(
            &mut p,
            "recorded_by",
            &self.recorded_by,
            MAX_SPECIALIST_CHARS,
        );
        if self.recorded_on > today {
            p.push(("recorded_on", "must not be in the future".to_owned()));
        }
        if let Some(s) = self.start_date
            && s > self.recorded_on
        {
            p.push(("start_date", "must not be after recorded_on".to_owned()));
        }
        if self.hours_band.is_some() && self.status != EmploymentStatus::Employed {
            p.push((
                "hours_band",
                "applies only to status 01 (employed)".to_owned(),
            ));
        }
        finish(p)
    }
}

impl AssignInput {
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let mut p = Vec::new();
        line(&mut p, "case_id", &self.case_id, MAX_ID_CHARS);
        line(&mut p, "specialist", &self.specialist, MAX_ID_CHARS);
        line(
            &mut p,
            "assigned_by",
            &self.assigned_by,
            MAX_SPECIALIST_CHARS,
        );
        finish(p)
    }
}
