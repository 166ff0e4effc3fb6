//! The IPS Grow reporting tool's quarterly measures (DESIGN §4.5). Each
//! column's definition is in the README ("Reports").

use super::{Period, Snapshot, status_at_referral};
use crate::domain::employment::qualifies_as_supported_into_work;
use serde::Serialize;
use std::collections::BTreeSet;

/// IPS Grow: people already in work at referral should stay at or below
/// 15% of the caseload.
pub const IN_WORK_AT_REFERRAL_LIMIT: f64 = 0.15;
/// IPS Grow: the employment rate benchmark (people out of work at referral).
pub const EMPLOYMENT_RATE_BENCHMARK: f64 = 0.40;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpsGrowReturn {
    pub quarter: String,
    pub period: Period,
    /// Referrals accepted onto the caseload in the quarter.
    pub referrals: usize,
    /// People whose vocational profile was started in the quarter.
    pub engaged: usize,
    /// People whose first job start of 4+ paid hours a week was in the quarter.
    pub supported_into_work: usize,
    /// Every job start in the quarter, second and later jobs included.
    pub total_job_starts: usize,
    /// People on the caseload in the quarter who were in work at referral.
    pub in_work_at_referral: usize,
    /// People on the caseload at any time in the quarter.
    pub caseload: usize,
    /// People on the caseload in the quarter who were out of work at referral.
    pub out_of_work_at_referral: usize,
    /// Of those, how many have had a paid job start by the quarter's end.
    pub out_of_work_into_work: usize,
}

impl IpsGrowReturn {
    pub fn in_work_at_referral_share(&self) -> Option<f64> {
        (self.caseload > 0).then(|| self.in_work_at_referral as f64 / self.caseload as f64)
    }

    pub fn employment_rate(&self) -> Option<f64> {
        (self.out_of_work_at_referral > 0)
            .then(|| self.out_of_work_into_work as f64 / self.out_of_work_at_referral as f64)
    }

    /// The CSV header and the row, in the README's column order.
    pub fn csv(&self) -> String {
        let pct = |v: Option<f64>| v.map(|x| format!("{:.1}", 100.0 * x)).unwrap_or_default();
        format!(
            "quarter,period_start,period_end,referrals,engaged,supported_into_work,total_job_starts,\
             caseload,in_work_at_referral,in_work_at_referral_pct,out_of_work_at_referral,\
             out_of_work_into_work,employment_rate_pct\n\
             {},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            self.quarter,
            self.period.from,
            self.period.to,
            self.referrals,
            self.engaged,
            self.supported_into_work,
            self.total_job_starts,
            self.caseload,
            self.in_work_at_referral,
            pct(self.in_work_at_referral_share()),
            self.out_of_work_at_referral,
            self.out_of_work_into_work,
            pct(self.employment_rate()),
        )
    }
}

pub fn report(s: &Snapshot, quarter: &str, p: Period) -> IpsGrowReturn {
    let referrals = s
        .referrals
        .iter()
        .filter(|r| r.accepted_at().is_some_and(|t| p.contains(t)))
        .count();

    // Engaged: the vocational profile's first session (or, without a
    // draft, its first published version) falls in the quarter.
    let mut vp_start: std::collections::HashMap<&str, time::Date> = s
        .vp_first_session
        .iter()
        .map(|(c, d)| (c.as_str(), *d))
        .collect();
    for d in s
        .documents
        .iter()
        .filter(|d| d.kind == crate::domain::documents::DocumentKind::Vp)
    {
        let day = d.created_at.date();
        vp_start
            .entry(d.case_id.as_str())
            .and_modify(|x| *x = (*x).min(day))
            .or_insert(day);
    }
    let engaged = vp_start.values().filter(|d| p.contains_date(**d)).count();

    // Supported into work: the person's first qualifying job is in the quarter.
    let mut firsts: std::collections::HashMap<&str, time::Date> = Default::default();
    for j in s
        .jobs
        .iter()
        .filter(|j| qualifies_as_supported_into_work(j.paid, j.band, j.hours))
    {
        firsts
            .entry(j.case_id.as_str())
            .and_modify(|d| *d = (*d).min(j.started_on))
            .or_insert(j.started_on);
    }
    let supported_into_work = firsts.values().filter(|d| p.contains_date(**d)).count();
    let total_job_starts = s
        .jobs
        .iter()
        .filter(|j| p.contains_date(j.started_on))
        .count();

    // The caseload in the quarter: cases open at any time in it that had an
    // accepted referral by its end.
    let end = p.end();
    let on_caseload: BTreeSet<&str> = s
        .cases
        .iter()
        .filter(|c| c.open_during(p))
        .filter(|c| {
            s.referrals.iter().any(|r| {
                r.case_id.as_deref() == Some(&c.id) && r.accepted_at().is_some_and(|t| t < end)
            })
        })
        .map(|c| c.id.as_str())
        .collect();
    let mut in_work = 0;
    let mut out_of_work = 0;
    let mut out_into_work = 0;
    for c in &on_caseload {
        match status_at_referral(s, c) {
            Some(crate::domain::employment::EmploymentStatus::Employed) => in_work += 1,
            Some(st) if st.out_of_work() => {
                out_of_work += 1;
                if s.jobs
                    .iter()
                    .any(|j| j.case_id == *c && j.paid && j.started_on <= p.to)
                {
                    out_into_work += 1;
                }
            }
            _ => {}
        }
    }
    IpsGrowReturn {
        quarter: quarter.to_owned(),
        period: p,
        referrals,
        engaged,
        supported_into_work,
        total_job_starts,
        in_work_at_referral: in_work,
        caseload: on_caseload.len(),
        out_of_work_at_referral: out_of_work,
        out_of_work_into_work: out_into_work,
    }
}
