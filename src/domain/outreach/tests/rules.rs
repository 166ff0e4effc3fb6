use super::*;

/// Every problem line of a rules file that must not load.
fn problems(text: &str) -> Vec<String> {
    match RuleSet::from_toml(text) {
        Ok(r) => panic!("expected problems, got {r:?}"),
        Err(e) => e.lines().collect(),
    }
}

fn has(lines: &[String], want: &str) -> bool {
    lines.iter().any(|l| l.contains(want))
}

const EXAMPLE: &str = r#"
[[rule]]
id = "primary-care-2-consecutive-dna"
name = "Primary care: discharged after 2 consecutive DNAs"
kind = "consecutive_dna"
threshold = 2
warn_before = { dnas = 1 }
applies_to = { organisations = ["A81001"] }
[[rule.exempt]]
when = "matches"
service_types = ["telephone"]
"#;

#[test]
fn the_example_reads_as_written() {
    let set = rules(EXAMPLE);
    let want = DischargeRule {
        id: "primary-care-2-consecutive-dna".into(),
        name: "Primary care: discharged after 2 consecutive DNAs".into(),
        kind: RuleKind::ConsecutiveDna { threshold: 2 },
        warn_before: WarnBefore::Dnas(1),
        applies_to: RuleMatch {
            organisations: vec!["A81001".into()],
            ..RuleMatch::default()
        },
        exempt: vec![Exemption::Matches(RuleMatch {
            service_types: vec!["telephone".into()],
            ..RuleMatch::default()
        })],
    };
    assert_eq!(set.rules, vec![want]);
}

#[test]
fn the_shipped_rules_file_is_valid_and_round_trips() {
    let set = rules(include_str!("../../../../config/discharge-rules.toml"));
    let kinds: Vec<&str> = set.rules.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "consecutive_dna",
            "dna_within",
            "first_appointment_dna",
            "no_contact_for"
        ]
    );
    let text = toml::to_string(&set).expect("serialise");
    assert_eq!(rules(&text), set, "{text}");
}

#[test]
fn an_empty_file_is_no_rules() {
    assert_eq!(rules(""), RuleSet::default());
}

#[test]
fn every_problem_is_listed_each_naming_its_rule() {
    let lines = problems(
        r#"
[[rule]]
id = "a"
name = "A"
kind = "consecutive_dna"
threshold = 0
warn_before = { days = 3 }
colour = "red"

[[rule]]
name = "no id"
kind = "no_contact_for"
days = 0
warn_before = { dnas = 1 }

[[rule]]
id = "Bad Id!"
name = "B"
kind = "first_appointment_dna"
threshold = 2
warn_before = { dnas = 2 }

[[rule]]
id = "a"
kind = "dna_within"
threshold = 3
days = 90
warn_before = { dnas = 3 }
applies_to = { organisation = ["A81001"] }
[[rule.exempt]]
when = "matches"
"#,
    );
    let expect = [
        "rule a: threshold must be at least 1",
        "rule a: warn_before.days does not apply to consecutive_dna",
        "rule a: unknown key `colour`",
        "rule[1]: missing `id`",
        "rule[1]: days must be at least 1",
        "rule[1]: warn_before.dnas does not apply to no_contact_for",
        "rule[2]: `id` must be lower-case letters, digits and '-'",
        "rule[2]: `threshold` does not apply to kind first_appointment_dna",
        "rule[2]: warn_before.dnas must be 1 for first_appointment_dna",
        "rule a: missing `name`",
        "rule a: warn_before.dnas must be less than threshold: with threshold or more DNAs to go, the warning would start before any DNA",
        "rule a: unknown key `applies_to.organisation`",
        "rule a: `exempt[0]` names no codes",
        "rule a: the id is used by rule[0] and rule[3]",
    ];
    for e in expect {
        assert!(has(&lines, e), "missing {e:?} in {lines:#?}");
    }
    assert_eq!(lines.len(), expect.len(), "{lines:#?}");
}

#[test]
fn warnings_must_start_after_something_has_happened() {
    let lines = problems(
        "[[rule]]\nid = \"n\"\nname = \"N\"\nkind = \"no_contact_for\"\ndays = 28\nwarn_before = { days = 28 }\n",
    );
    assert!(
        has(&lines, "rule n: warn_before.days must be less than days"),
        "{lines:?}"
    );
    // One below the threshold is the earliest warning allowed; 0 warns once met.
    rule(
        "consecutive_dna",
        "threshold = 2\nwarn_before = { dnas = 1 }",
    );
    rule(
        "consecutive_dna",
        "threshold = 1\nwarn_before = { dnas = 0 }",
    );
    rule("no_contact_for", "days = 28\nwarn_before = { days = 27 }");
    let lines = problems(
        "[[rule]]\nid = \"w\"\nname = \"W\"\nkind = \"dna_within\"\nthreshold = 2\ndays = 30\nwarn_before = { dnas = 2 }\n",
    );
    assert!(
        has(
            &lines,
            "rule w: warn_before.dnas must be less than threshold"
        ),
        "{lines:?}"
    );
}

#[test]
fn kinds_and_warnings_must_be_complete() {
    let lines = problems(
        "[[rule]]\nid = \"k\"\nname = \"K\"\nkind = \"dna_within\"\nthreshold = 2\n\
         [[rule]]\nid = \"m\"\nname = \"M\"\nkind = \"three_strikes\"\nwarn_before = { dnas = 1, days = 2 }\n\
         [[rule]]\nid = \"z\"\nname = \"Z\"\nwarn_before = { weeks = 1 }\n",
    );
    for e in [
        "rule k: missing `days`",
        "rule k: missing `warn_before`",
        "rule m: `kind` must be one of consecutive_dna, dna_within, first_appointment_dna, no_contact_for",
        "rule m: `warn_before` must give either dnas or days, not both",
        "rule z: missing `kind`",
        "rule z: unknown key `warn_before.weeks`",
    ] {
        assert!(has(&lines, e), "missing {e:?} in {lines:#?}");
    }
}

#[test]
fn wrong_types_name_the_key_and_type_never_the_value() {
    let lines = problems(
        "[[rule]]\nid = \"t\"\nname = \"T\"\nkind = \"consecutive_dna\"\nthreshold = \"secret-two\"\n\
         warn_before = { dnas = -1 }\napplies_to = { organisations = \"secret-A81001\" }\n",
    );
    assert!(
        has(
            &lines,
            "rule t: `threshold` must be a whole number, found string"
        ),
        "{lines:?}"
    );
    assert!(
        has(
            &lines,
            "rule t: `warn_before.dnas` must be a whole number from 0 to"
        ),
        "{lines:?}"
    );
    assert!(
        has(
            &lines,
            "rule t: `applies_to.organisations` must be a list of codes"
        ),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("secret")), "{lines:?}");
}

#[test]
fn syntax_errors_give_line_and_column_never_the_text() {
    for text in [
        "[[rule]]\nid = \"a\"\nname = \"secret name\nkind = 1\n",
        "[[rule]]\nid = \"a\"\nname = secret-bare-word\n",
        "[[rule]]\nid = \"a\"\nid = \"secret-dup\"\n",
    ] {
        let lines = problems(text);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("TOML syntax error at line "),
            "{lines:?}"
        );
        assert!(!lines[0].contains("secret"), "{lines:?}");
    }
    let lines = problems("[[rule]]\nid = \"a\"\nname = nope\n");
    assert!(lines[0].contains("line 3, column 8"), "{lines:?}");
}

#[test]
fn the_file_shape_itself_is_checked() {
    let lines = problems("rules = []\nrule = 3\n");
    assert!(has(&lines, "unknown key `rules`"), "{lines:?}");
    assert!(
        has(&lines, "`rule` must be an array of tables"),
        "{lines:?}"
    );
}

#[test]
fn a_match_is_and_across_fields_or_within_one() {
    let f = appt("a", 1, Attendance::Attended);
    assert!(RuleMatch::default().matches(&f));
    let m = |types: &[&str], orgs: &[&str]| RuleMatch {
        service_types: types.iter().map(|s| s.to_string()).collect(),
        organisations: orgs.iter().map(|s| s.to_string()).collect(),
        ..RuleMatch::default()
    };
    assert!(m(&["telephone", "face-to-face"], &[]).matches(&f));
    assert!(m(&["face-to-face"], &["RX4E2", "A81001"]).matches(&f));
    assert!(!m(&["face-to-face"], &["RX4E2"]).matches(&f));
    assert!(!m(&["telephone"], &["A81001"]).matches(&f));
    // Codes compare exactly.
    assert!(!m(&[], &["a81001"]).matches(&f));
    let loc = RuleMatch {
        locations: vec!["Location/1".into()],
        ..RuleMatch::default()
    };
    assert!(
        !loc.matches(&f),
        "a filled field needs a value on the appointment"
    );
}

#[test]
fn an_appointment_counts_when_it_applies_and_is_not_exempt() {
    let set = rules(EXAMPLE);
    let r = &set.rules[0];
    assert!(r.counts(&appt("a", 1, Attendance::DidNotAttend)));
    assert!(!r.counts(&by_phone(appt("a", 1, Attendance::DidNotAttend))));
    assert!(!r.counts(&at_org(appt("a", 1, Attendance::DidNotAttend), "RX4E2")));
    assert_eq!(set.get("primary-care-2-consecutive-dna"), Some(r));
}
