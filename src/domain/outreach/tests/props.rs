//! Properties every assessment keeps, whatever the history and the rules.

use super::*;
use proptest::prelude::*;

fn attendance() -> impl Strategy<Value = Attendance> {
    prop_oneof![
        Just(Attendance::Pending),
        Just(Attendance::Attended),
        Just(Attendance::DidNotAttend),
        Just(Attendance::Cancelled),
        Just(Attendance::EnteredInError),
    ]
}

fn some_of(codes: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(codes, 0..=codes.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

/// An appointment between 200 days ago and 30 days ahead (in hours, so
/// several can share a day), sometimes undated, at one of two teams.
fn fact(key: String) -> impl Strategy<Value = AppointmentFact> {
    (
        proptest::option::weighted(0.9, -720i64..4800),
        attendance(),
        some_of(&["face-to-face", "home"]),
        some_of(&["A81001", "RX4E2"]),
    )
        .prop_map(
            move |(hours_ago, attendance, types, orgs)| AppointmentFact {
                key: key.clone(),
                start: hours_ago.map(|h| NOW - Duration::hours(h)),
                attendance,
                cancelled_by: None,
                service: ServiceContext {
                    service_types: types,
                    organisations: orgs,
                    ..ServiceContext::default()
                },
            },
        )
}

/// Facts with distinct keys.
fn facts() -> impl Strategy<Value = Vec<AppointmentFact>> {
    (0usize..12).prop_flat_map(|n| (0..n).map(|i| fact(format!("k{i}"))).collect::<Vec<_>>())
}

fn applies_to() -> impl Strategy<Value = RuleMatch> {
    prop_oneof![
        Just(RuleMatch::default()),
        some_of(&["A81001", "RX4E2"]).prop_map(|organisations| RuleMatch {
            organisations,
            ..RuleMatch::default()
        }),
    ]
}

/// One rule of each kind, with random numbers and teams; every rule exempts
/// telephone appointments.
fn rule_set() -> impl Strategy<Value = RuleSet> {
    let telephone = Exemption::Matches(RuleMatch {
        service_types: vec!["telephone".into()],
        ..RuleMatch::default()
    });
    (
        (1u32..5, 0u32..5, applies_to()),
        (1u32..5, 1u32..120, 0u32..5, applies_to()),
        applies_to(),
        (1u32..90, 0u32..90, applies_to()),
    )
        .prop_map(move |(c, w, f, n)| {
            let make = |id: &str, kind, warn_before, applies_to| DischargeRule {
                id: id.into(),
                name: id.into(),
                kind,
                warn_before,
                applies_to,
                exempt: vec![telephone.clone()],
            };
            RuleSet {
                rules: vec![
                    make(
                        "consecutive",
                        RuleKind::ConsecutiveDna { threshold: c.0 },
                        WarnBefore::Dnas(c.1.min(c.0 - 1)),
                        c.2,
                    ),
                    make(
                        "within",
                        RuleKind::DnaWithin {
                            threshold: w.0,
                            days: w.1,
                        },
                        WarnBefore::Dnas(w.2.min(w.0 - 1)),
                        w.3,
                    ),
                    make(
                        "first",
                        RuleKind::FirstAppointmentDna,
                        WarnBefore::Dnas(1),
                        f,
                    ),
                    make(
                        "contact",
                        RuleKind::NoContactFor { days: n.0 },
                        WarnBefore::Days(n.1.min(n.0 - 1)),
                        n.2,
                    ),
                ],
            }
        })
}

fn case() -> impl Strategy<Value = (Option<i64>, i64)> {
    (proptest::option::of(0i64..4800), 0i64..7200)
}

fn run(
    apps: &[AppointmentFact],
    set: &RuleSet,
    (contact, opened): (Option<i64>, i64),
) -> Assessment {
    let history = CaseHistory {
        appointments: apps,
        last_contact: contact.map(|h| NOW - Duration::hours(h)),
        opened_at: NOW - Duration::hours(opened),
    };
    assess(&history, set, NOW)
}

proptest! {
    #[test]
    fn the_order_of_the_history_does_not_matter(
        (apps, shuffled) in facts().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        set in rule_set(),
        c in case(),
    ) {
        prop_assert_eq!(run(&apps, &set, c), run(&shuffled, &set, c));
    }

    #[test]
    fn conflicting_facts_for_one_key_are_chosen_whatever_their_order(
        apps in (0usize..10).prop_flat_map(|n| (0..n).map(|i| fact(format!("k{}", i % 3))).collect::<Vec<_>>()),
        set in rule_set(),
        c in case(),
    ) {
        let mut reversed = apps.clone();
        reversed.reverse();
        prop_assert_eq!(run(&apps, &set, c), run(&reversed, &set, c));
    }

    #[test]
    fn duplicated_facts_change_nothing(
        apps in facts(),
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        set in rule_set(),
        c in case(),
    ) {
        let mut doubled = apps.clone();
        if !apps.is_empty() {
            doubled.extend(picks.iter().map(|i| apps[i.index(apps.len())].clone()));
        }
        prop_assert_eq!(run(&apps, &set, c), run(&doubled, &set, c));
    }

    #[test]
    fn exempt_appointments_never_change_the_result(
        apps in facts(),
        extra in (0usize..6).prop_flat_map(|n| (0..n).map(|i| fact(format!("x{i}"))).collect::<Vec<_>>()),
        set in rule_set(),
        c in case(),
    ) {
        let mut with = apps.clone();
        with.extend(extra.into_iter().map(by_phone));
        prop_assert_eq!(run(&apps, &set, c), run(&with, &set, c));
    }

    #[test]
    fn an_attendance_in_place_of_a_dna_never_adds_urgency(
        apps in facts(),
        pick in any::<prop::sample::Index>(),
        set in rule_set(),
        c in case(),
    ) {
        let dnas: Vec<usize> = (0..apps.len())
            .filter(|i| apps[*i].attendance == Attendance::DidNotAttend)
            .collect();
        prop_assume!(!dnas.is_empty());
        let mut corrected = apps.clone();
        corrected[dnas[pick.index(dnas.len())]].attendance = Attendance::Attended;
        let before = run(&apps, &set, c);
        let after = run(&corrected, &set, c);
        for risk in &after.risks {
            let old = before.risks.iter().find(|r| r.rule_id == risk.rule_id);
            prop_assert!(old.is_some(), "{} appeared: {:?}", risk.rule_id, after);
            if let Some(old) = old {
                prop_assert!(
                    risk.cmp_urgency(old) != std::cmp::Ordering::Less,
                    "{:?} became more urgent than {:?}", risk, old
                );
                prop_assert!(risk.dnas_counted <= old.dnas_counted);
            }
        }
        prop_assert!(after.warning().is_none() || before.warning().is_some());
    }

    #[test]
    fn valid_rule_sets_read_back_from_their_toml(set in rule_set()) {
        let text = toml::to_string(&set).expect("serialise");
        prop_assert_eq!(RuleSet::from_toml(&text).map_err(|e| e.problems), Ok(set));
    }
}
