use super::*;
use time::macros::{date, datetime};

#[test]
fn quarters_and_months_parse_to_whole_days() {
    let q = Period::quarter("2026Q3").unwrap();
    assert_eq!(
        (q.from, q.to),
        (date!(2026 - 07 - 01), date!(2026 - 09 - 30))
    );
    let q4 = Period::quarter("2026q4").unwrap();
    assert_eq!(q4.to, date!(2026 - 12 - 31));
    assert!(Period::quarter("2026Q5").is_err());
    assert!(Period::quarter("Q3").is_err());
    let m = Period::month("2024-02").unwrap();
    assert_eq!(m.to, date!(2024 - 02 - 29));
    assert!(Period::month("2026-13").is_err());
    assert!(Period::month("2026-1").is_err());
    assert!(m.contains(datetime!(2024-02-29 23:59:59 UTC)));
    assert!(!m.contains(datetime!(2024-03-01 00:00:00 UTC)));
    assert!(Period::new(date!(2026 - 02 - 01), date!(2026 - 01 - 01)).is_err());
}

#[test]
fn caseload_item_one_follows_the_scale() {
    use caseload::{CaseloadLimit, item1_score};
    let sec = CaseloadLimit(20);
    assert_eq!(item1_score(20.0, sec), Some(5));
    assert_eq!(item1_score(20.5, sec), Some(4));
    assert_eq!(item1_score(30.0, sec), Some(3));
    assert_eq!(item1_score(40.0, sec), Some(2));
    assert_eq!(item1_score(41.0, sec), Some(1));
    let primary = CaseloadLimit(25);
    assert_eq!(item1_score(25.0, primary), Some(5));
    assert_eq!(item1_score(30.0, primary), None);
}

#[test]
fn csv_fields_are_quoted_and_formulas_defused() {
    use mhs004::csv_field;
    assert_eq!(csv_field("plain"), "plain");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_field("=1+1"), "'=1+1");
}

#[test]
fn medians() {
    assert_eq!(median_days(vec![]), None);
    assert_eq!(median_days(vec![3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median_days(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
}

mod scenario {
    //! A small team's facts built by hand, and the fidelity figures worked
    //! out by hand from them (not by calling the report code).
    use super::super::caseload::{CaseloadLimit, loads, waiting_list};
    use super::super::*;
    use crate::domain::documents::{DocumentKind, ReviewStatus};
    use crate::domain::referral::{DecisionOutcome, ReferralState};
    use time::macros::{date, datetime};
    use time::{Duration, OffsetDateTime};

    const END: OffsetDateTime = datetime!(2026-09-01 00:00 UTC);

    fn case(id: &str, who: Option<&str>) -> CaseFacts {
        CaseFacts {
            id: id.into(),
            opened_at: datetime!(2026-06-01 09:00 UTC),
            closed_at: None,
            specialist: who.map(str::to_owned),
            nhs_number: None,
        }
    }

    fn accepted(id: &str, case: &str, at: OffsetDateTime) -> ReferralFacts {
        ReferralFacts {
            id: id.into(),
            case_id: Some(case.into()),
            state: ReferralState::Accepted,
            received_at: at - Duration::days(3),
            completed_at: Some(at - Duration::days(3)),
            incomplete_reasons: vec![],
            source_kind: "gp-practice".into(),
            is_multiple: false,
            decision: Some(DecisionOutcome::Accepted),
            decline_reason: None,
            decided_at: Some(at),
            assistance_commenced_at: None,
        }
    }

    fn doc(case: &str, kind: DocumentKind, review: Option<ReviewStatus>) -> DocumentFacts {
        DocumentFacts {
            case_id: case.into(),
            kind,
            version: 1,
            created_at: datetime!(2026-08-10 12:00 UTC),
            review,
            review_due_at: None,
        }
    }

    fn snapshot() -> Snapshot {
        let mut s = Snapshot::default();
        s.specialists.insert("alice".into(), "Alice".into());
        s.specialists.insert("bob".into(), "Bob".into());
        s.cases = vec![
            case("c1", Some("alice")),
            case("c2", Some("alice")),
            case("c3", Some("alice")),
            case("c4", Some("bob")),
            case("c5", None),
        ];
        // c1 waits 50 days at the period's end: its 6 weeks ran out on 24 Aug (a breach);
        // c2 waits 10 days: no breach yet. c3 was seen on day 4 after its referral.
        let mut seen = accepted("r3", "c3", datetime!(2026-08-01 09:00 UTC));
        seen.state = ReferralState::Started;
        seen.assistance_commenced_at = Some(datetime!(2026-08-02 09:00 UTC));
        s.referrals = vec![
            accepted("r1", "c1", END - Duration::days(50)),
            accepted("r2", "c2", END - Duration::days(10)),
            seen,
        ];
        s.attended = vec![(
            "c3".into(),
            datetime!(2026-08-01 09:00 UTC) + Duration::days(1),
        )];
        // Two flags in August: c1's got an attempt before its Task was due, c4's did not.
        s.episodes = vec![
            EpisodeFacts {
                id: "e1".into(),
                case_id: "c1".into(),
                opened_at: datetime!(2026-08-05 10:00 UTC),
                due_at: datetime!(2026-08-07 10:00 UTC),
                resolved_at: Some(datetime!(2026-08-06 10:00 UTC)),
                resolution: Some("contacted".into()),
            },
            EpisodeFacts {
                id: "e2".into(),
                case_id: "c4".into(),
                opened_at: datetime!(2026-08-05 10:00 UTC),
                due_at: datetime!(2026-08-07 10:00 UTC),
                resolved_at: None,
                resolution: None,
            },
        ];
        s.attempts = vec![
            AttemptFacts {
                case_id: "c1".into(),
                episode_id: Some("e1".into()),
                attempted_at: datetime!(2026-08-06 10:00 UTC),
                reached: true,
            },
            // After c4's Task was due: not "before the rule would fire".
            AttemptFacts {
                case_id: "c4".into(),
                episode_id: Some("e2".into()),
                attempted_at: datetime!(2026-08-09 10:00 UTC),
                reached: false,
            },
        ];
        s.closures_by_rule = vec![ClosureFacts {
            case_id: "c4".into(),
            closed_at: datetime!(2026-08-20 10:00 UTC),
        }];
        s.documents = vec![
            doc("c1", DocumentKind::Vp, Some(ReviewStatus::Awaiting)),
            doc("c2", DocumentKind::Vp, Some(ReviewStatus::Commented)),
            doc("c3", DocumentKind::Iwsp, Some(ReviewStatus::Awaiting)),
            doc("c3", DocumentKind::Note, None),
        ];
        s
    }

    fn measure(r: &fidelity::FidelityReport, key: &str) -> (f64, Option<f64>) {
        let m = r.measures.iter().find(|m| m.key == key).unwrap();
        (m.numerator, m.denominator)
    }

    #[test]
    fn fidelity_items_match_the_hand_count() {
        let s = snapshot();
        let august = Period::month("2026-08").unwrap();
        let r = fidelity::report(&s, august, CaseloadLimit(2));
        // Item 1: 4 held cases over 2 specialists; alice holds 3, over a limit of 2.
        assert_eq!(measure(&r, "caseload.per_specialist"), (4.0, Some(2.0)));
        assert_eq!(measure(&r, "caseload.specialists_over_limit").0, 1.0);
        assert_eq!(measure(&r, "caseload.unassigned").0, 1.0);
        // Waiting list: c1 and c2; one 6-week breach (c1's, 24 Aug).
        assert_eq!(measure(&r, "waiting.list").0, 2.0);
        assert_eq!(measure(&r, "waiting.six_week_breaches").0, 1.0);
        // Item 25: 1 of 2 flags documented in time; 1 prevented, 1 happened.
        assert_eq!(measure(&r, "outreach.documented"), (1.0, Some(2.0)));
        assert_eq!(measure(&r, "outreach.closures_prevented").0, 1.0);
        assert_eq!(measure(&r, "outreach.closures_happened").0, 1.0);
        // Items 14, 22, 5.
        assert_eq!(measure(&r, "documents.vp_sent").0, 2.0);
        assert_eq!(measure(&r, "documents.vp_commented"), (1.0, Some(2.0)));
        assert_eq!(measure(&r, "documents.iwsp_sent").0, 1.0);
        assert_eq!(measure(&r, "documents.iwsp_commented"), (0.0, Some(1.0)));
        assert_eq!(measure(&r, "documents.written_to_record").0, 4.0);
        // First contacts in August: c3 seen 2 Aug 09:00, 4 days after its referral
        // (29 Jul 09:00); c1 reached by phone 6 Aug 10:00, 27 days 10 hours after
        // its referral (10 Jul 00:00). The median of the two: 15.708 days.
        let (median, _) = measure(&r, "contact.median_days_referral_to_first");
        assert!(
            (median - (4.0 + 27.0 + 10.0 / 24.0) / 2.0).abs() < 1e-6,
            "{median}"
        );
        // The same facts in July: no flags, documents or breaches.
        let july = fidelity::report(&s, Period::month("2026-07").unwrap(), CaseloadLimit(2));
        assert_eq!(measure(&july, "outreach.documented"), (0.0, Some(0.0)));
        assert_eq!(measure(&july, "documents.written_to_record").0, 0.0);
        assert_eq!(measure(&july, "waiting.six_week_breaches").0, 0.0);
    }

    #[test]
    fn caseloads_and_the_waiting_list_stand_at_a_moment() {
        let s = snapshot();
        let l = loads(&s, CaseloadLimit(2), END);
        let by = |id: Option<&str>| l.iter().find(|x| x.specialist.as_deref() == id).unwrap();
        assert_eq!(
            (by(Some("alice")).open_cases, by(Some("alice")).over_limit),
            (3, true)
        );
        assert_eq!(
            (by(Some("bob")).open_cases, by(Some("bob")).over_limit),
            (1, false)
        );
        assert_eq!(by(None).open_cases, 1);
        let w = waiting_list(&s, END);
        assert_eq!(
            w.iter()
                .map(|x| (x.referral_id.as_str(), x.days_waiting, x.over_six_weeks))
                .collect::<Vec<_>>(),
            vec![("r1", 50, true), ("r2", 10, false)]
        );
        assert_eq!(date!(2026 - 09 - 01), END.date());
    }
}
