//! The outreach board: every open flag, ordered by when its discharge rule
//! would fire, with the DNA history and the attempts so far. Attempts are
//! recorded on the case page (the board links there).

use super::caseload::short_id;
use super::{day, store_failed};
use crate::domain::outreach::Attendance;
use crate::web::WebApp;
use crate::web::page::{Chrome, Section, html};
use crate::web::{Staff, Web};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;
use time::OffsetDateTime;

pub struct Flag {
    pub case_id: String,
    pub short: String,
    pub rule: String,
    /// When the rule would close the case, in words.
    pub fires: String,
    pub task_due: String,
    pub dnas: Vec<String>,
    pub attempts: usize,
    pub last_attempt: Option<String>,
    /// Sort key: the rule's date, else the Task's due date.
    order: OffsetDateTime,
}

#[derive(Template)]
#[template(path = "team/outreach.html", config = "src/web/askama.toml")]
struct Board {
    chrome: Chrome,
    flags: Vec<Flag>,
}

fn fires(
    risk: &Value,
    next_appointment: Option<OffsetDateTime>,
) -> (String, Option<OffsetDateTime>) {
    let f = &risk["fires"];
    match f["type"].as_str() {
        Some("at-next-dna") => (
            match next_appointment {
                Some(t) => format!("At the next missed appointment ({})", day(t)),
                None => "At the next missed appointment".to_owned(),
            },
            next_appointment,
        ),
        Some("after-dnas") => (
            format!("After {} more missed appointments", f["dnas"]),
            None,
        ),
        Some("on") => {
            let at = f["at"].as_str().and_then(|s| {
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            });
            (at.map(|t| format!("On {}", day(t))).unwrap_or_default(), at)
        }
        Some("met") => (
            "Already met: the source system may close the case".to_owned(),
            None,
        ),
        _ => (String::new(), None),
    }
}

/// `GET /outreach`.
pub async fn board(State(s): State<WebApp>, Web(web): Web, staff: Staff) -> Response {
    let store = s.engine.store.as_ref();
    let loaded = async {
        let mut flags = vec![];
        for e in store.episodes_active(2000).await? {
            let facts = crate::store::appointment_facts(store, &e.case_id).await?;
            let attempts: Vec<_> = store
                .attempts_for_case(&e.case_id)
                .await?
                .into_iter()
                .filter(|a| e.covers(a))
                .collect();
            let risk: Value = serde_json::from_str(&e.risk).unwrap_or(Value::Null);
            let next = risk["next_appointment"].as_str().and_then(|s| {
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            });
            let (fires_text, fires_at) = fires(&risk, next);
            let due = crate::engine::from_ms(e.due_at);
            let mut dnas: Vec<OffsetDateTime> = facts
                .iter()
                .filter(|f| f.attendance == Attendance::DidNotAttend)
                .filter_map(|f| f.start)
                .collect();
            dnas.sort();
            flags.push(Flag {
                short: short_id(&e.case_id),
                case_id: e.case_id.clone(),
                rule: s.engine.ctx.outreach.rule_name(&e.rule_id),
                fires: fires_text,
                task_due: day(due),
                dnas: dnas.into_iter().map(day).collect(),
                attempts: attempts.len(),
                last_attempt: attempts
                    .iter()
                    .map(|a| a.attempted_at)
                    .max()
                    .map(|t| day(crate::engine::from_ms(t))),
                order: fires_at.unwrap_or(due),
            });
        }
        flags.sort_by_key(|f| f.order);
        Ok::<_, crate::store::StoreError>(flags)
    }
    .await;
    match loaded {
        Ok(flags) => html(&Board {
            chrome: web.chrome(&staff, Section::Outreach),
            flags,
        }),
        Err(e) => store_failed(&e),
    }
}
