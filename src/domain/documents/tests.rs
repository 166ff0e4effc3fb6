use super::*;
use serde_json::json;
use time::macros::{date, datetime};

fn questionnaire() -> serde_json::Value {
    json!({
        "resourceType": "Questionnaire",
        "url": "https://example.org/Questionnaire/vp",
        "version": "1.0.0",
        "item": [
            {"linkId": "work-goal", "text": "What work you want", "type": "text", "required": true},
            {"linkId": "barriers", "text": "What gets in the way", "type": "text", "maxLength": 10},
            {"linkId": "support-wanted", "text": "Support you want", "type": "text", "required": true}
        ]
    })
}

fn template() -> Template {
    Template::from_questionnaire(DocumentKind::Vp, &questionnaire()).expect("valid")
}

fn input(id: &str, text: &str) -> SectionInput {
    SectionInput {
        id: id.into(),
        text: text.into(),
    }
}

#[test]
fn a_questionnaire_gives_sections_in_order_with_headings_and_rules() {
    let t = template();
    assert_eq!(
        t.sections.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["work-goal", "barriers", "support-wanted"]
    );
    assert_eq!(t.section("barriers").and_then(|s| s.max_chars), Some(10));
    assert!(t.section("work-goal").is_some_and(|s| s.required));
    assert!(t.answers_to("https://example.org/Questionnaire/vp"));
    assert!(t.answers_to("https://example.org/Questionnaire/vp|1.0.0"));
    assert!(!t.answers_to("https://example.org/Questionnaire/vp|2.0.0"));
    assert!(!t.answers_to("https://example.org/Questionnaire/other"));
}

#[test]
fn a_broken_questionnaire_names_every_problem() {
    let q = json!({
        "resourceType": "Questionnaire",
        "item": [
            {"text": "no id", "type": "text"},
            {"linkId": "a", "type": "choice", "text": "A"},
            {"linkId": "b", "type": "text"},
            {"linkId": "c", "type": "text", "text": "C", "maxLength": -1},
            {"linkId": "c", "type": "text", "text": "C again"}
        ]
    });
    let e = Template::from_questionnaire(DocumentKind::Vp, &q).expect_err("invalid");
    let all = e.problems.join(" | ");
    for needle in [
        "url is missing",
        "item[0] has no linkId",
        "\"a\" has type choice",
        "\"b\" has no text",
        "\"c\" maxLength",
        "\"c\" appears twice",
    ] {
        assert!(all.contains(needle), "{needle:?} not in {all}");
    }
}

#[test]
fn a_draft_grows_over_sessions_and_the_latest_text_wins() {
    let t = template();
    let mut d = Draft::default();
    let s1 = date!(2026 - 11 - 02);
    let s2 = date!(2026 - 11 - 09);
    assert_eq!(
        d.apply(&t, &[input("work-goal", "Café work")], s1, "es", 100),
        Ok(true)
    );
    assert_eq!(d.missing_required(&t), ["support-wanted"]);
    assert!(d.check_complete(&t).is_err());
    assert_eq!(
        d.apply(
            &t,
            &[
                input("work-goal", "Kitchen work"),
                input("support-wanted", "CV help")
            ],
            s2,
            "es",
            100
        ),
        Ok(true)
    );
    assert_eq!(d.sections["work-goal"].text, "Kitchen work");
    assert_eq!(d.sections["work-goal"].session_date, s2);
    assert_eq!(d.sessions.len(), 2);
    assert!(d.check_complete(&t).is_ok());
    // The same text again in the same session changes nothing.
    assert_eq!(
        d.apply(&t, &[input("work-goal", "Kitchen work")], s2, "es", 100),
        Ok(false)
    );
    let order: Vec<&str> = d.ordered(&t).map(|(def, _)| def.id.as_str()).collect();
    assert_eq!(order, ["work-goal", "support-wanted"]);
}

#[test]
fn bad_sections_are_refused_whole_with_every_problem_and_no_value() {
    let t = template();
    let mut d = Draft::default();
    let secret = "9912003888 lives at 1 High St";
    let problems = d
        .apply(
            &t,
            &[
                input("salary", secret),
                input("barriers", "far more than ten characters"),
                input("work-goal", "   "),
                input("support-wanted", "bell\u{7}"),
                input("support-wanted", "twice"),
            ],
            date!(2026 - 11 - 02),
            "es",
            100,
        )
        .expect_err("refused");
    let text = summary(&problems);
    assert!(text.contains("sections[0]: unknown section id"), "{text}");
    assert!(
        text.contains("known: work-goal, barriers, support-wanted"),
        "{text}"
    );
    assert!(
        text.contains("(barriers): is 28 characters; the limit is 10"),
        "{text}"
    );
    assert!(text.contains("(work-goal): is empty"), "{text}");
    assert!(text.contains("control characters"), "{text}");
    assert!(text.contains("given twice"), "{text}");
    assert!(
        !text.contains("9912003888") && !text.contains("High St"),
        "{text}"
    );
    assert_eq!(d, Draft::default(), "nothing applied");
}

#[test]
fn reviews_are_chased_a_bounded_number_of_times() {
    let p = ReviewPolicy {
        due_after: std::time::Duration::from_secs(14 * 86_400),
        chase_every: std::time::Duration::from_secs(7 * 86_400),
        max_chases: 2,
    };
    let published = datetime!(2026-11-02 10:00 UTC);
    let due = p.due_at(published);
    assert_eq!(due, datetime!(2026-11-16 10:00 UTC));
    assert_eq!(p.next_chase(due, 0), Some(due));
    assert_eq!(p.next_chase(due, 1), Some(datetime!(2026-11-23 10:00 UTC)));
    assert_eq!(p.next_chase(due, 2), None);
    let never = ReviewPolicy { max_chases: 0, ..p };
    assert_eq!(never.next_chase(due, 0), None);
}
