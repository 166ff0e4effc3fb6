//! Unit and property tests of the outreach domain: rules files, the
//! assessment of each rule kind, and the attempt codes.

use super::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

mod attempt;
mod props;
mod risk;
mod rules;

/// "Now" in every test; time is a parameter.
const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

fn days_ago(d: i64) -> OffsetDateTime {
    NOW - Duration::days(d)
}

/// An appointment `d` days before [`NOW`] (negative: in the future), every
/// appointment at the same practice and of the same kind unless changed.
fn appt(key: &str, d: i64, attendance: Attendance) -> AppointmentFact {
    AppointmentFact {
        key: key.into(),
        start: Some(days_ago(d)),
        attendance,
        cancelled_by: None,
        service: ServiceContext {
            service_types: vec!["face-to-face".into()],
            organisations: vec!["A81001".into()],
            ..ServiceContext::default()
        },
    }
}

fn undated(key: &str, attendance: Attendance) -> AppointmentFact {
    AppointmentFact {
        start: None,
        ..appt(key, 0, attendance)
    }
}

fn by_phone(mut f: AppointmentFact) -> AppointmentFact {
    f.service.service_types = vec!["telephone".into()];
    f
}

fn at_org(mut f: AppointmentFact, ods: &str) -> AppointmentFact {
    f.service.organisations = vec![ods.into()];
    f
}

fn rules(text: &str) -> RuleSet {
    match RuleSet::from_toml(text) {
        Ok(r) => r,
        Err(e) => panic!("{:?}", e.problems),
    }
}

fn rule(kind: &str, rest: &str) -> RuleSet {
    rules(&format!(
        "[[rule]]\nid = \"r\"\nname = \"R\"\nkind = \"{kind}\"\n{rest}\n"
    ))
}

/// Opened 200 days ago, no outreach contact.
fn assess_at(apps: &[AppointmentFact], set: &RuleSet, now: OffsetDateTime) -> Assessment {
    let history = CaseHistory {
        appointments: apps,
        last_contact: None,
        opened_at: days_ago(200),
    };
    assess(&history, set, now)
}

fn assess_now(apps: &[AppointmentFact], set: &RuleSet) -> Assessment {
    assess_at(apps, set, NOW)
}

/// The only risk of a one-rule set.
fn only(a: &Assessment) -> &ClosureRisk {
    assert_eq!(a.risks.len(), 1, "{a:?}");
    &a.risks[0]
}
