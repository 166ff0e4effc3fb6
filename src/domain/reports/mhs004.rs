//! Employment status rows for an MHSDS submission (table MHS004EmpStatus):
//! one row per person on the caseload in the month, with the status that
//! held at the month's end.

use super::{Period, Snapshot};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mhs004Row {
    /// The bridge's case id (the local identifier for the episode).
    pub case_id: String,
    /// Needed to join the row to the person in the trust's submission.
    pub nhs_number: String,
    /// EmployStatus; empty when none was recorded by the month's end.
    pub employ_status: String,
    /// EmployStatusRecDate.
    pub employ_status_rec_date: String,
    /// EmployStatusStartDate.
    pub employ_status_start_date: String,
    /// WeekHoursWorked.
    pub week_hours_worked: String,
}

pub const CSV_HEADER: &str = "LocalPatientId,NHSNumber,EmployStatus,EmployStatusRecDate,EmployStatusStartDate,WeekHoursWorked";

impl Mhs004Row {
    pub fn csv(&self) -> String {
        [
            &self.case_id,
            &self.nhs_number,
            &self.employ_status,
            &self.employ_status_rec_date,
            &self.employ_status_start_date,
            &self.week_hours_worked,
        ]
        .map(|s| csv_field(s))
        .join(",")
    }
}

/// Quotes a CSV field when it must be, and defuses spreadsheet formulas.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub fn rows(s: &Snapshot, month: Period) -> Vec<Mhs004Row> {
    let mut out: Vec<Mhs004Row> = s
        .cases
        .iter()
        .filter(|c| c.open_during(month))
        .map(|c| {
            let latest = s
                .statuses
                .iter()
                .filter(|st| st.case_id == c.id && st.recorded_on <= month.to)
                .max_by_key(|st| (st.recorded_on, st.created_at));
            Mhs004Row {
                case_id: c.id.clone(),
                nhs_number: c.nhs_number.clone().unwrap_or_default(),
                employ_status: latest
                    .map(|st| st.status.code().to_owned())
                    .unwrap_or_default(),
                employ_status_rec_date: latest
                    .map(|st| st.recorded_on.to_string())
                    .unwrap_or_default(),
                employ_status_start_date: latest
                    .and_then(|st| st.started_on)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                week_hours_worked: latest
                    .and_then(|st| st.band)
                    .map(|b| b.code().to_owned())
                    .unwrap_or_default(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.case_id.cmp(&b.case_id));
    out
}
