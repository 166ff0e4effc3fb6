//! The rendered VP, IWSP and contact note: byte-for-byte snapshots (so a
//! change to what a GP receives is seen in review), and a real XML parser's
//! view of each: well-formed XHTML, one `h1`, one `h2` per section in order,
//! hostile text kept as text, non-Latin text intact, control characters gone.
//!
//! `UPDATE_SNAPSHOTS=1 cargo test --test render_documents` rewrites the
//! files under `tests/snapshots/documents/` after a deliberate change.

use ips_bridge::render::documents::{DocumentView, SectionView, render};
use serde_json::Value;
use std::path::PathBuf;
use time::macros::{date, datetime};

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
const HOSTILE: &str = "<script>alert(1)</script> <b>markup</b> & \"quotes\" 'apos'\n\
     Arabic: مرحبا بالعالم. Chinese: 你好，世界. Polish: Zażółć gęślą jaźń. Emoji: 👩🏽‍🍳\n\n\
     A bell\u{7} rang.";

fn questionnaire(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config/questionnaires")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn headings(q: &Value) -> Vec<String> {
    q["item"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_owned())
        .collect()
}

fn view<'a>(
    title: &'a str,
    version: u32,
    sections: Vec<SectionView<'a>>,
    sessions: &'a [time::Date],
) -> DocumentView<'a> {
    DocumentView {
        title,
        patient_name: Some("Alex Example"),
        nhs_number: "9912003888",
        date_of_birth: Some(date!(1990 - 01 - 31)),
        author_name: "Sam Specialist",
        author_role: "Employment specialist",
        service_name: "Individual Placement and Support (IPS) employment service",
        organisation_ods: Some("RX4"),
        created: datetime!(2026-11-30 10:00 UTC),
        session_dates: sessions,
        version,
        status_line: Some("Sent to the GP or care coordinator for review and comment"),
        sections,
    }
}

fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/documents")
        .join(format!("{name}.xhtml"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_SNAPSHOTS=1", path.display()));
    assert!(
        expected == actual,
        "{name} differs from {}; run with UPDATE_SNAPSHOTS=1 if intended",
        path.display()
    );
}

/// Parses as XML and checks the structure every document must have.
fn check_well_formed(xhtml: &str, section_headings: &[String]) -> String {
    // Default options refuse a DTD, as many EPRs' XML readers do (.NET's
    // refuses any by default): the document carries no DOCTYPE.
    let doc = roxmltree::Document::parse(xhtml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "html");
    assert_eq!(root.tag_name().namespace(), Some(XHTML_NS));
    assert_eq!(root.attribute("lang"), Some("en-GB"));
    let named = |n: &'static str| {
        doc.descendants()
            .filter(move |e| e.is_element() && e.tag_name().name() == n)
    };
    assert_eq!(named("h1").count(), 1);
    assert_eq!(named("script").count(), 0, "no script element");
    assert_eq!(
        named("link").count() + named("img").count(),
        0,
        "self-contained"
    );
    let h2: Vec<String> = named("h2")
        .map(|e| e.text().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(h2, section_headings);
    // Everything a reader sees, as text.
    doc.descendants()
        .filter(|n| n.is_text())
        .map(|n| n.text().unwrap_or_default())
        .collect()
}

#[test]
fn the_shipped_questionnaires_define_the_sections() {
    let vp = questionnaire("vocational-profile.json");
    let iwsp = questionnaire("in-work-support-plan.json");
    for (q, url, ids, required) in [
        (
            &vp,
            "https://ips-bridge.example.nhs.uk/fhir/Questionnaire/vocational-profile",
            vec![
                "work-goal",
                "work-history",
                "education-training",
                "job-preferences",
                "strengths-skills",
                "barriers",
                "health-coping",
                "benefits-finances",
                "disclosure",
                "support-wanted",
            ],
            vec![
                "work-goal",
                "work-history",
                "job-preferences",
                "support-wanted",
            ],
        ),
        (
            &iwsp,
            "https://ips-bridge.example.nhs.uk/fhir/Questionnaire/in-work-support-plan",
            vec![
                "job-employer",
                "hours",
                "supports-agreed",
                "workplace-adjustments",
                "relapse-signature",
                "coping-strategies",
                "who-to-contact",
                "disclosure-to-employer",
                "review-dates",
            ],
            vec![
                "job-employer",
                "supports-agreed",
                "who-to-contact",
                "review-dates",
            ],
        ),
    ] {
        assert_eq!(q["resourceType"], "Questionnaire");
        assert_eq!(q["url"], url);
        assert_eq!(q["status"], "active");
        let items = q["item"].as_array().unwrap();
        let got: Vec<&str> = items
            .iter()
            .map(|i| i["linkId"].as_str().unwrap())
            .collect();
        assert_eq!(got, ids);
        let req: Vec<&str> = items
            .iter()
            .filter(|i| i["required"] == true)
            .map(|i| i["linkId"].as_str().unwrap())
            .collect();
        assert_eq!(req, required);
        assert!(
            items
                .iter()
                .all(|i| i["type"] == "text" && i["maxLength"] == 20000)
        );
    }
}

#[test]
fn a_vocational_profile_renders_every_section_under_its_heading() {
    let q = questionnaire("vocational-profile.json");
    let heads = headings(&q);
    let texts: Vec<String> = heads
        .iter()
        .enumerate()
        .map(|(n, h)| format!("Answer {n} to “{h}”.\nSecond line.\n\nSecond paragraph."))
        .collect();
    let sessions = [
        date!(2026 - 11 - 02),
        date!(2026 - 11 - 09),
        date!(2026 - 11 - 16),
    ];
    let sections = heads
        .iter()
        .zip(&texts)
        .enumerate()
        .map(|(n, (h, t))| SectionView {
            heading: h,
            text: t,
            recorded_on: Some(sessions[n % 3]),
        })
        .collect();
    let r = render(&view("Vocational profile", 2, sections, &sessions)).unwrap();
    assert_eq!(r.title, "Vocational profile – version 2");
    let text = check_well_formed(&r.xhtml, &heads);
    for t in &texts {
        assert!(text.contains(t.lines().next().unwrap()));
    }
    assert!(
        text.contains("991 200 3888")
            && text.contains("31 January 1990")
            && text.contains("2 (replaces version 1)")
    );
    snapshot("vocational-profile", &r.xhtml);
}

#[test]
fn an_in_work_support_plan_renders() {
    let q = questionnaire("in-work-support-plan.json");
    let heads = headings(&q);
    let sessions = [date!(2026 - 11 - 23)];
    let sections = heads
        .iter()
        .map(|h| SectionView {
            heading: h,
            text: "Agreed with the person and their manager.",
            recorded_on: Some(sessions[0]),
        })
        .collect();
    let r = render(&view("In-work support plan", 1, sections, &sessions)).unwrap();
    check_well_formed(&r.xhtml, &heads);
    snapshot("in-work-support-plan", &r.xhtml);
}

#[test]
fn a_hostile_note_renders_escaped_and_well_formed() {
    let sessions = [date!(2026 - 11 - 30)];
    let sections = vec![SectionView {
        heading: "Contact note <i>",
        text: HOSTILE,
        recorded_on: Some(sessions[0]),
    }];
    let mut v = view("Employment specialist contact note", 1, sections, &sessions);
    v.patient_name = Some("Zoë <O'Brien> & Co");
    v.status_line = None;
    let r = render(&v).unwrap();
    let text = check_well_formed(&r.xhtml, &["Contact note <i>".to_owned()]);
    assert!(
        text.contains("<script>alert(1)</script>"),
        "the script is text, shown as typed"
    );
    assert!(text.contains("<b>markup</b> & \"quotes\" 'apos'"));
    for s in [
        "مرحبا بالعالم",
        "你好，世界",
        "Zażółć gęślą jaźń",
        "👩🏽‍🍳",
        "Zoë <O'Brien> & Co",
    ] {
        assert!(text.contains(s), "{s} did not round-trip");
    }
    assert!(
        !text.contains('\u{7}') && text.contains("A bell\u{FFFD} rang."),
        "control character replaced"
    );
    assert!(!r.xhtml.contains("<script>") && !r.xhtml.contains("&nbsp;"));
    snapshot("contact-note", &r.xhtml);
}
