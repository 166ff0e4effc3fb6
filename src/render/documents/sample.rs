//! A made-up VP, IWSP or note (no real person), for people to see what a
//! GP receives (`ips-bridge render-sample`, `deploy/local/screenshot-document.sh`).

use super::{DocumentView, RenderError, Rendered, SectionView, render};
use crate::domain::documents::{DocumentKind, Templates};
use time::OffsetDateTime;
use time::macros::date;

/// Example text per section id; anything else gets a generic line.
fn example(id: &str) -> &'static str {
    match id {
        "work-goal" => "To work in a café kitchen, about 16 hours a week, within six months.",
        "work-history" => {
            "Kitchen porter at a hotel (2019–2021). Left when unwell.\nVolunteered at a food bank in 2023."
        }
        "education-training" => "GCSEs in English and maths. Food hygiene level 2 (2020).",
        "job-preferences" => "Mornings; on the 42 bus route; a small team.",
        "strengths-skills" => {
            "Reliable and punctual. Calm under pressure once settled in.\n\nGood with customers."
        }
        "barriers" => "A gap in the CV since 2021. Anxiety at interviews.",
        "health-coping" => "Walking each morning helps. Takes medication in the evening.",
        "benefits-finances" => {
            "Universal Credit. Wants a better-off calculation before accepting hours."
        }
        "disclosure" => "Happy for an employer to know about anxiety; not about the diagnosis.",
        "support-wanted" => {
            "Help with a CV and interview practice; someone at the first interview."
        }
        "job-employer" => "Kitchen assistant, The Corner Café (12 staff).",
        "hours" => "16 hours a week, Monday to Thursday mornings.",
        "supports-agreed" => "Weekly check-in for the first month, then fortnightly.",
        "workplace-adjustments" => "A quiet start to each shift; breaks agreed in advance.",
        "relapse-signature" => "Sleeping badly; missing the morning walk; skipping meals.",
        "coping-strategies" => "Short walk at the break; text the specialist.",
        "who-to-contact" => "Employment specialist first; care coordinator if unwell.",
        "disclosure-to-employer" => "The manager knows about anxiety, nothing more.",
        "review-dates" => "Four weeks after starting, then every three months.",
        _ => "Discussed and agreed at the session.",
    }
}

pub fn render_sample(
    kind: DocumentKind,
    templates: &Templates,
    service_name: &str,
    ods: &str,
    now: OffsetDateTime,
) -> Result<Rendered, RenderError> {
    let sessions = [
        date!(2026 - 11 - 02),
        date!(2026 - 11 - 09),
        date!(2026 - 11 - 16),
    ];
    let sections: Vec<SectionView<'_>> = match templates.get(kind) {
        Some(t) => t
            .sections
            .iter()
            .enumerate()
            .map(|(n, s)| SectionView {
                heading: &s.heading,
                text: example(&s.id),
                recorded_on: sessions.get(n % sessions.len()).copied(),
            })
            .collect(),
        None => vec![SectionView {
            heading: "Contact note",
            text: "Met at the library. Updated the CV together; two applications sent.\n\nNext contact: Thursday by phone.",
            recorded_on: Some(sessions[2]),
        }],
    };
    render(&DocumentView {
        title: kind.title(),
        patient_name: Some("Alex Example (fictional)"),
        nhs_number: "9000000009",
        date_of_birth: Some(date!(1990 - 01 - 31)),
        author_name: "Sam Specialist",
        author_role: "Employment specialist",
        service_name,
        organisation_ods: Some(ods),
        created: now,
        session_dates: if kind.has_sections() {
            &sessions
        } else {
            &sessions[2..]
        },
        version: 1,
        status_line: kind
            .is_reviewed()
            .then_some("Sent to the GP or care coordinator for review and comment"),
        sections,
    })
}
