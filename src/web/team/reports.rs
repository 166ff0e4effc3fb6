//! Fidelity and measures (team leads): the fidelity items for a period, the
//! IPS Grow return for a quarter, and three charts. The same functions as
//! `ips-bridge report`, on the same snapshot.

use super::charts::{self, Chart};
use super::{snapshot, store_failed};
use crate::domain::reports::caseload::CaseloadLimit;
use crate::domain::reports::fidelity::{self, FidelityReport};
use crate::domain::reports::ips_grow::{self, IpsGrowReturn};
use crate::domain::reports::{Measure, Period};
use crate::web::WebApp;

use crate::web::page::{Chrome, FieldError, Section, html_status};
use crate::web::{TeamLead, Web};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "team/reports.html", config = "src/web/askama.toml")]
struct Page {
    chrome: Chrome,
    errors: Vec<FieldError>,
    from: String,
    to: String,
    quarter: String,
    fidelity: FidelityReport,
    grow: IpsGrowReturn,
    charts: Vec<Chart>,
    /// Declined by reason, received by source, incomplete by what is missing.
    breakdowns: Vec<(&'static str, Vec<(String, usize)>)>,
}

impl Page {
    fn value(&self, m: &Measure) -> String {
        m.display()
    }
    fn pct(&self, v: Option<f64>) -> String {
        v.map(|x| format!("{:.1}%", 100.0 * x))
            .unwrap_or_else(|| "–".to_owned())
    }
    fn num(&self, v: &f64) -> String {
        format!("{v:.1}")
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Params {
    from: String,
    to: String,
    quarter: String,
}

fn quarter_of(d: time::Date) -> String {
    format!("{}Q{}", d.year(), (u8::from(d.month()) - 1) / 3 + 1)
}

/// `GET /reports?from=&to=&quarter=`.
pub async fn show(
    State(s): State<WebApp>,
    Web(web): Web,
    TeamLead(staff): TeamLead,
    Query(q): Query<Params>,
) -> Response {
    let today = s.engine.now().date();
    let mut errors = vec![];
    let opt = |v: &str| Some(v.trim()).filter(|v| !v.is_empty()).map(str::to_owned);
    let period = match Period::of_dates(opt(&q.from).as_deref(), opt(&q.to).as_deref(), today) {
        Ok(p) => p,
        Err(e) => {
            errors.push(FieldError::new(
                "from",
                format!("Enter the period as dates: {e}"),
            ));
            Period::of_dates(None, None, today).unwrap_or(Period {
                from: today,
                to: today,
            })
        }
    };
    let quarter = opt(&q.quarter).unwrap_or_else(|| quarter_of(today));
    let (quarter, qp) = match Period::quarter(&quarter) {
        Ok(p) => (quarter, p),
        Err(e) => {
            errors.push(FieldError::new(
                "quarter",
                format!("Enter the quarter as {e}"),
            ));
            let q = quarter_of(today);
            let p = Period::quarter(&q).unwrap_or(period);
            (q, p)
        }
    };
    let snap = match snapshot(&s).await {
        Ok(x) => x,
        Err(e) => return store_failed(&e),
    };
    let limit = CaseloadLimit(s.engine.ctx.team.caseload_limit());
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let fid = fidelity::report(&snap, period, limit);
    html_status(
        status,
        &Page {
            chrome: web.chrome(&staff, Section::Reports),
            errors,
            from: period.from.to_string(),
            to: period.to.to_string(),
            breakdowns: vec![
                ("Declined, by reason", list(&fid.decline_reasons)),
                ("Received, by source", list(&fid.sources)),
                (
                    "Incomplete, by what is missing",
                    list(&fid.incomplete_reasons),
                ),
            ],
            fidelity: fid,
            grow: ips_grow::report(&snap, &quarter, qp),
            quarter,
            charts: vec![
                charts::referrals_by_source(&snap, period.to),
                charts::waiting_over_time(&snap, period.to),
                charts::job_starts_per_quarter(&snap, period.to),
            ],
        },
    )
}

fn list(m: &std::collections::BTreeMap<String, usize>) -> Vec<(String, usize)> {
    m.iter().map(|(k, v)| (k.clone(), *v)).collect()
}
