//! The reports as text for the command line: a table for people, CSV for
//! spreadsheets and returns, JSON for machines. The numbers come from
//! `domain::reports`, the same functions the pages call.

use crate::domain::reports::fidelity::FidelityReport;
use crate::domain::reports::ips_grow::IpsGrowReturn;
use crate::domain::reports::mhs004::{self, Mhs004Row, csv_field};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum Format {
    Table,
    Json,
    Csv,
}

use crate::domain::reports::fmt_num as num;

pub fn fidelity(r: &FidelityReport, f: Format) -> String {
    match f {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
        Format::Csv => {
            let mut out =
                String::from("key,item,measure,numerator,denominator,anchor,meets_anchor\n");
            for m in &r.measures {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{}",
                    m.key,
                    m.item.map(|i| i.to_string()).unwrap_or_default(),
                    csv_field(&m.name),
                    num(m.numerator),
                    m.denominator.map(num).unwrap_or_default(),
                    csv_field(m.anchor.as_deref().unwrap_or("")),
                    m.meets_anchor.map(|b| b.to_string()).unwrap_or_default(),
                );
            }
            for (title, map) in [
                ("decline_reason", &r.decline_reasons),
                ("source", &r.sources),
                ("incomplete_reason", &r.incomplete_reasons),
            ] {
                for (k, n) in map {
                    let _ = writeln!(out, "{title}.{},,{},{n},,,", csv_field(k), csv_field(k));
                }
            }
            out
        }
        Format::Table => {
            let mut out = format!(
                "IPS fidelity measures, {} to {}\n\n",
                r.period.from, r.period.to
            );
            let _ = writeln!(
                out,
                "{:<6} {:<72} {:>18}  anchor",
                "item", "measure", "value"
            );
            for m in &r.measures {
                let _ = writeln!(
                    out,
                    "{:<6} {:<72} {:>18}  {}{}",
                    m.item.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
                    m.name,
                    m.display(),
                    m.anchor.as_deref().unwrap_or(""),
                    match m.meets_anchor {
                        Some(true) => " (met)",
                        Some(false) => " (NOT met)",
                        None => "",
                    }
                );
            }
            for (title, map) in [
                ("Declined, by reason", &r.decline_reasons),
                ("Received, by source", &r.sources),
                ("Incomplete, by what is missing", &r.incomplete_reasons),
            ] {
                let _ = writeln!(out, "\n{title}:");
                if map.is_empty() {
                    let _ = writeln!(out, "  (none)");
                }
                for (k, n) in map {
                    let _ = writeln!(out, "  {n:>5}  {k}");
                }
            }
            out
        }
    }
}

pub fn ips_grow(r: &IpsGrowReturn, f: Format) -> String {
    match f {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
        Format::Csv => r.csv(),
        Format::Table => {
            let pct = |v: Option<f64>| {
                v.map(|x| format!("{:.1}%", 100.0 * x))
                    .unwrap_or("-".into())
            };
            let rows = [
                (
                    "Referrals (accepted in the quarter)",
                    r.referrals.to_string(),
                ),
                (
                    "Engaged (vocational profile started)",
                    r.engaged.to_string(),
                ),
                (
                    "Supported into work (first job, 4+ paid hours)",
                    r.supported_into_work.to_string(),
                ),
                ("Total job starts", r.total_job_starts.to_string()),
                ("Caseload in the quarter", r.caseload.to_string()),
                (
                    "Already in work at referral (limit 15%)",
                    format!(
                        "{} ({})",
                        r.in_work_at_referral,
                        pct(r.in_work_at_referral_share())
                    ),
                ),
                (
                    "Out of work at referral",
                    r.out_of_work_at_referral.to_string(),
                ),
                (
                    "Employment rate, out of work at referral (benchmark 40%)",
                    format!("{} ({})", r.out_of_work_into_work, pct(r.employment_rate())),
                ),
            ];
            let mut out = format!(
                "IPS Grow return, {} ({} to {})\n\n",
                r.quarter, r.period.from, r.period.to
            );
            for (k, v) in rows {
                let _ = writeln!(out, "{k:<60} {v:>12}");
            }
            out
        }
    }
}

pub fn employment_status(rows: &[Mhs004Row], f: Format) -> String {
    match f {
        Format::Json => serde_json::to_string_pretty(rows).unwrap_or_default() + "\n",
        Format::Csv | Format::Table => {
            let mut out = String::from(mhs004::CSV_HEADER);
            out.push('\n');
            for r in rows {
                out.push_str(&r.csv());
                out.push('\n');
            }
            out
        }
    }
}
