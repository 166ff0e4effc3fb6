use super::*;
use Attendance::{Attended, Cancelled, DidNotAttend as Dna, EnteredInError, Pending};

fn consecutive(threshold: u32, warn: u32) -> RuleSet {
    rule(
        "consecutive_dna",
        &format!("threshold = {threshold}\nwarn_before = {{ dnas = {warn} }}"),
    )
}

fn fires(apps: &[AppointmentFact], set: &RuleSet) -> (Fires, bool, u32) {
    let a = assess_now(apps, set);
    let r = only(&a);
    (r.fires, r.within_warning, r.dnas_counted)
}

#[test]
fn consecutive_dna_counts_up_to_the_threshold() {
    let set = consecutive(2, 1);
    assert_eq!(fires(&[], &set), (Fires::AfterDnas { dnas: 2 }, false, 0));
    let one = [appt("a", 10, Dna)];
    assert_eq!(fires(&one, &set), (Fires::AtNextDna, true, 1));
    let two = [appt("a", 10, Dna), appt("b", 5, Dna)];
    assert_eq!(fires(&two, &set), (Fires::Met, true, 2));
    let three = [appt("a", 15, Dna), appt("b", 10, Dna), appt("c", 5, Dna)];
    assert_eq!(fires(&three, &set), (Fires::Met, true, 3));
}

#[test]
fn consecutive_dna_warning_edges() {
    let one = [appt("a", 10, Dna)];
    // threshold 3: one DNA leaves two to go.
    assert_eq!(
        fires(&one, &consecutive(3, 1)),
        (Fires::AfterDnas { dnas: 2 }, false, 1)
    );
    assert_eq!(
        fires(&one, &consecutive(3, 2)),
        (Fires::AfterDnas { dnas: 2 }, true, 1)
    );
    assert_eq!(
        fires(&[], &consecutive(3, 2)),
        (Fires::AfterDnas { dnas: 3 }, false, 0)
    );
    // threshold 1, warn 0: nothing until met.
    assert_eq!(fires(&[], &consecutive(1, 0)), (Fires::AtNextDna, false, 0));
    assert_eq!(fires(&one, &consecutive(1, 0)), (Fires::Met, true, 1));
}

#[test]
fn an_attendance_resets_and_a_cancellation_does_neither() {
    let set = consecutive(2, 1);
    let reset = [
        appt("a", 20, Dna),
        appt("b", 15, Attended),
        appt("c", 10, Dna),
    ];
    assert_eq!(fires(&reset, &set), (Fires::AtNextDna, true, 1));
    let attended_last = [
        appt("a", 20, Dna),
        appt("b", 15, Dna),
        appt("c", 10, Attended),
    ];
    assert_eq!(
        fires(&attended_last, &set),
        (Fires::AfterDnas { dnas: 2 }, false, 0)
    );
    let cancelled = [
        appt("a", 20, Dna),
        appt("b", 15, Cancelled),
        appt("c", 10, Dna),
    ];
    assert_eq!(fires(&cancelled, &set), (Fires::Met, true, 2));
    let pending = [appt("a", 20, Dna), appt("b", 15, Pending)];
    assert_eq!(fires(&pending, &set), (Fires::AtNextDna, true, 1));
}

#[test]
fn a_dna_corrected_to_attended_is_undone() {
    let set = consecutive(2, 1);
    let before = [appt("a", 20, Dna), appt("b", 10, Dna)];
    assert_eq!(fires(&before, &set).0, Fires::Met);
    let corrected = [appt("a", 20, Dna), appt("b", 10, Attended)];
    assert_eq!(
        fires(&corrected, &set),
        (Fires::AfterDnas { dnas: 2 }, false, 0)
    );
    let in_error = [appt("a", 20, Dna), appt("b", 10, EnteredInError)];
    assert_eq!(fires(&in_error, &set), (Fires::AtNextDna, true, 1));
}

#[test]
fn undated_appointments_come_last_in_sequence_rules() {
    let set = consecutive(2, 1);
    let dna = [appt("a", 10, Dna), undated("u", Dna)];
    assert_eq!(fires(&dna, &set).0, Fires::Met);
    let attended = [appt("a", 10, Dna), undated("u", Attended)];
    assert_eq!(fires(&attended, &set).2, 0);
}

#[test]
fn exemptions_and_applies_to_decide_what_counts() {
    let set = rules(
        "[[rule]]\nid = \"gp\"\nname = \"GP\"\nkind = \"consecutive_dna\"\nthreshold = 2\nwarn_before = { dnas = 1 }\n\
         applies_to = { organisations = [\"A81001\"] }\n[[rule.exempt]]\nwhen = \"matches\"\nservice_types = [\"telephone\"]\n",
    );
    let apps = [
        appt("a", 20, Dna),
        by_phone(appt("b", 15, Dna)),
        at_org(appt("c", 10, Dna), "RX4E2"),
    ];
    assert_eq!(fires(&apps, &set), (Fires::AtNextDna, true, 1));
    // Only other teams' or exempt appointments: the rule does not apply.
    let elsewhere = [
        by_phone(appt("b", 15, Dna)),
        at_org(appt("c", 10, Dna), "RX4E2"),
    ];
    assert!(assess_now(&elsewhere, &set).risks.is_empty());
    assert!(assess_now(&[], &set).risks.is_empty());
}

#[test]
fn the_next_pending_appointment_is_reported() {
    let set = consecutive(2, 1);
    let apps = [
        appt("a", 10, Dna),
        appt("past-pending", 2, Pending),
        appt("later", -14, Pending),
        appt("soon", -7, Pending),
        appt("cancelled", -3, Cancelled),
    ];
    let a = assess_now(&apps, &set);
    assert_eq!(only(&a).next_appointment, Some(days_ago(-7)));
    assert_eq!(
        a.next_check, None,
        "consecutive DNAs do not change with time"
    );
}

fn within(threshold: u32, days: u32, warn: u32) -> RuleSet {
    rule(
        "dna_within",
        &format!("threshold = {threshold}\ndays = {days}\nwarn_before = {{ dnas = {warn} }}"),
    )
}

#[test]
fn dna_within_counts_the_window_ending_now() {
    let set = within(3, 90, 1);
    let apps = [
        appt("a", 100, Dna),
        appt("b", 50, Dna),
        appt("c", 10, Attended),
        appt("d", 5, Dna),
    ];
    let a = assess_now(&apps, &set);
    assert_eq!(
        (
            only(&a).fires,
            only(&a).within_warning,
            only(&a).dnas_counted
        ),
        (Fires::AtNextDna, true, 2)
    );
    // The DNA 50 days ago leaves the window 40 days from now.
    assert_eq!(a.next_check, Some(days_ago(-40)));
    let later = assess_at(&apps, &set, days_ago(-40));
    assert_eq!(only(&later).fires, Fires::AfterDnas { dnas: 2 });
    let just_before = assess_at(&apps, &set, days_ago(-40) - Duration::seconds(1));
    assert_eq!(only(&just_before).fires, Fires::AtNextDna);
}

#[test]
fn dna_within_window_edges() {
    let set = within(2, 90, 1);
    assert_eq!(
        fires(&[appt("a", 90, Dna)], &set).2,
        0,
        "exactly `days` ago is outside"
    );
    let inside = [AppointmentFact {
        start: Some(days_ago(90) + Duration::seconds(1)),
        ..appt("a", 0, Dna)
    }];
    assert_eq!(fires(&inside, &set).2, 1);
    assert_eq!(fires(&[appt("a", -1, Dna)], &set).2, 0, "not yet happened");
    assert_eq!(
        fires(&[undated("u", Dna)], &set).2,
        0,
        "undated: cannot be placed"
    );
}

#[test]
fn a_met_dna_within_rule_is_next_checked_when_it_stops_being_met() {
    let set = within(3, 90, 1);
    let apps = [
        appt("a", 40, Dna),
        appt("b", 30, Dna),
        appt("c", 20, Dna),
        appt("d", 10, Dna),
    ];
    let a = assess_now(&apps, &set);
    assert_eq!(only(&a).fires, Fires::Met);
    // Losing the oldest leaves three (still met); losing the next un-meets it.
    assert_eq!(a.next_check, Some(days_ago(-60)));
    assert_eq!(
        only(&assess_at(&apps, &set, days_ago(-60))).fires,
        Fires::AtNextDna
    );
    assert_eq!(
        only(&assess_at(&apps, &set, days_ago(-55))).fires,
        Fires::Met
    );
}

fn first() -> RuleSet {
    rule("first_appointment_dna", "warn_before = { dnas = 1 }")
}

#[test]
fn first_appointment_dna() {
    let set = first();
    assert_eq!(
        fires(&[], &set),
        (Fires::AtNextDna, false, 0),
        "nothing booked: no flag"
    );
    let booked = [appt("a", -7, Pending)];
    let a = assess_now(&booked, &set);
    assert_eq!(
        (only(&a).fires, only(&a).within_warning),
        (Fires::AtNextDna, true)
    );
    assert_eq!(only(&a).next_appointment, Some(days_ago(-7)));
    let missed = [appt("a", 7, Dna), appt("b", -7, Pending)];
    assert_eq!(fires(&missed, &set), (Fires::Met, true, 1));
    let attended = [appt("a", 14, Attended), appt("b", 7, Dna)];
    assert!(
        assess_now(&attended, &set).risks.is_empty(),
        "the rule no longer applies"
    );
    let cancelled_first = [appt("a", 14, Cancelled), appt("b", 7, Dna)];
    assert_eq!(fires(&cancelled_first, &set).0, Fires::Met);
    let corrected = [appt("a", 7, Attended)];
    assert!(assess_now(&corrected, &set).risks.is_empty());
    let in_error_first = [appt("a", 14, EnteredInError), appt("b", 7, Dna)];
    assert_eq!(fires(&in_error_first, &set).0, Fires::Met);
}

fn no_contact(days: u32, warn: u32) -> RuleSet {
    rule(
        "no_contact_for",
        &format!("days = {days}\nwarn_before = {{ days = {warn} }}"),
    )
}

fn assess_case(
    apps: &[AppointmentFact],
    opened: i64,
    contact: Option<i64>,
    set: &RuleSet,
) -> Assessment {
    let history = CaseHistory {
        appointments: apps,
        last_contact: contact.map(days_ago),
        opened_at: days_ago(opened),
    };
    assess(&history, set, NOW)
}

#[test]
fn no_contact_for_counts_from_the_last_contact() {
    let set = no_contact(28, 7);
    let a = assess_case(&[], 10, None, &set);
    assert_eq!(only(&a).fires, Fires::On { at: days_ago(-18) });
    assert!(!only(&a).within_warning);
    assert_eq!(a.next_check, Some(days_ago(-11)), "when the warning starts");
    let a = assess_case(&[], 21, None, &set);
    assert!(only(&a).within_warning, "warning starts 7 days before");
    assert_eq!(a.next_check, Some(days_ago(-7)), "then when it fires");
    let a = assess_case(&[], 28, None, &set);
    assert_eq!(
        (only(&a).fires, only(&a).within_warning, a.next_check),
        (Fires::Met, true, None)
    );
    // An attendance or an outreach contact restarts the clock; the latest wins.
    let apps = [appt("a", 25, Attended), appt("b", 5, Dna)];
    assert_eq!(
        only(&assess_case(&apps, 100, None, &set)).fires,
        Fires::On { at: days_ago(-3) }
    );
    assert_eq!(
        only(&assess_case(&apps, 100, Some(2), &set)).fires,
        Fires::On { at: days_ago(-26) }
    );
    // A contact dated after now (clock skew) counts as now.
    let future = [appt("a", -3, Attended)];
    assert_eq!(
        only(&assess_case(&future, 100, None, &set)).fires,
        Fires::On { at: days_ago(-28) }
    );
}

#[test]
fn no_contact_for_with_applies_to_needs_a_counted_appointment() {
    let set = rules(
        "[[rule]]\nid = \"cmht\"\nname = \"C\"\nkind = \"no_contact_for\"\ndays = 28\nwarn_before = { days = 7 }\n\
         applies_to = { organisations = [\"RX4E2\"] }\n",
    );
    assert!(assess_case(&[], 100, None, &set).risks.is_empty());
    let gp = [appt("a", 5, Attended)];
    assert!(assess_case(&gp, 100, None, &set).risks.is_empty());
    let cmht = [at_org(appt("a", 50, Dna), "RX4E2"), appt("b", 5, Attended)];
    // The GP attendance is not this team's contact.
    assert_eq!(only(&assess_case(&cmht, 100, None, &set)).fires, Fires::Met);
}

#[test]
fn risks_are_most_urgent_first_and_next_check_is_the_earliest() {
    let set = rules(
        r#"
[[rule]]
id = "z-consecutive"
name = "Z"
kind = "consecutive_dna"
threshold = 3
warn_before = { dnas = 1 }
[[rule]]
id = "y-first"
name = "Y"
kind = "first_appointment_dna"
warn_before = { dnas = 1 }
[[rule]]
id = "x-window"
name = "X"
kind = "dna_within"
threshold = 2
days = 30
warn_before = { dnas = 1 }
[[rule]]
id = "w-contact"
name = "W"
kind = "no_contact_for"
days = 60
warn_before = { days = 7 }
[[rule]]
id = "v-contact"
name = "V"
kind = "no_contact_for"
days = 90
warn_before = { days = 7 }
"#,
    );
    // First appointment attended; one DNA 10 days ago.
    let apps = [appt("a", 40, Attended), appt("b", 10, Dna)];
    let a = assess_now(&apps, &set);
    let order: Vec<(&str, Fires, bool)> = a
        .risks
        .iter()
        .map(|r| (r.rule_id.as_str(), r.fires, r.within_warning))
        .collect();
    assert_eq!(
        order,
        [
            ("x-window", Fires::AtNextDna, true),
            ("w-contact", Fires::On { at: days_ago(-20) }, false),
            ("v-contact", Fires::On { at: days_ago(-50) }, false),
            ("z-consecutive", Fires::AfterDnas { dnas: 2 }, false),
        ]
    );
    assert_eq!(a.warning().map(|r| r.rule_id.as_str()), Some("x-window"));
    // w's warning starts in 13 days; x's DNA leaves its window in 20.
    assert_eq!(a.next_check, Some(days_ago(-13)));
    // Everything met but the consecutive rule (no contact since 200 days ago).
    let met = assess_now(&[appt("a", 20, Dna), appt("b", 10, Dna)], &set);
    let ids: Vec<&str> = met.risks.iter().map(|r| r.rule_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "v-contact",
            "w-contact",
            "x-window",
            "y-first",
            "z-consecutive"
        ],
        "Met ties by rule id"
    );
    assert!(met.risks[..4].iter().all(|r| r.fires == Fires::Met));
}

#[test]
fn identical_duplicates_change_nothing() {
    let set = consecutive(3, 1);
    let once = [appt("a", 20, Dna), appt("b", 10, Dna)];
    let twice = [appt("a", 20, Dna), appt("b", 10, Dna), appt("a", 20, Dna)];
    assert_eq!(assess_now(&once, &set), assess_now(&twice, &set));
}
