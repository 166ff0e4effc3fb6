use super::*;
use crate::domain::source::SourceKind;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);

fn version(nhs: &str, reason: bool) -> ReferralVersion {
    ReferralVersion {
        status: RequestStatus::Active,
        source_updated_at: None,
        nhs: match NhsNumber::parse(nhs) {
            Ok(n) => NhsField::Valid(n),
            Err(e) => NhsField::Invalid(e),
        },
        patient_included: true,
        has_contact_route: true,
        has_reason: reason,
        source: ReferralSource {
            ods_code: Some("A81001".into()),
            kind: SourceKind::GpPractice,
        },
        content_hash: format!("{nhs}-{reason}"),
        closure: None,
        gp_practice: None,
    }
}

fn known(state: ReferralState, hash: &str, completed: Option<OffsetDateTime>) -> KnownReferral {
    KnownReferral {
        state,
        content_hash: hash.into(),
        source_updated_at: None,
        completed_at: completed,
    }
}

#[test]
fn complete_referral_awaits_decision_and_records_complete_date() {
    let Intake::New(r) = apply_version(None, &version("9912003888", true), NOW) else {
        panic!()
    };
    assert_eq!(r.state, ReferralState::AwaitingDecision);
    assert_eq!(r.completed_at, Some(NOW));
    assert!(r.incomplete_reasons.is_empty());
}

#[test]
fn invalid_nhs_number_makes_incomplete_with_named_reason() {
    let Intake::New(r) = apply_version(None, &version("9912003889", true), NOW) else {
        panic!()
    };
    assert_eq!(r.state, ReferralState::Incomplete);
    assert_eq!(r.completed_at, None);
    assert!(
        r.incomplete_reasons[0].contains("modulus-11"),
        "{:?}",
        r.incomplete_reasons
    );
}

#[test]
fn update_supplying_missing_reason_completes() {
    let k = known(ReferralState::Incomplete, "9912003888-false", None);
    let later = NOW + time::Duration::days(2);
    let Intake::Updated(r) = apply_version(Some(&k), &version("9912003888", true), later) else {
        panic!()
    };
    assert_eq!(r.state, ReferralState::AwaitingDecision);
    assert_eq!(r.completed_at, Some(later));
    assert!(r.completed_now);
}

#[test]
fn same_content_changes_nothing() {
    let k = known(
        ReferralState::AwaitingDecision,
        "9912003888-true",
        Some(NOW),
    );
    assert_eq!(
        apply_version(Some(&k), &version("9912003888", true), NOW),
        Intake::Unchanged
    );
}

#[test]
fn older_version_is_ignored() {
    let mut k = known(ReferralState::AwaitingDecision, "x", Some(NOW));
    k.source_updated_at = Some(NOW);
    let mut v = version("9912003888", true);
    v.source_updated_at = Some(NOW - time::Duration::minutes(1));
    assert_eq!(apply_version(Some(&k), &v, NOW), Intake::Unchanged);
}

#[test]
fn revoked_withdraws_and_dna_closure_is_not_a_withdrawal() {
    let k = known(ReferralState::Accepted, "x", Some(NOW));
    let mut v = version("9912003888", true);
    v.status = RequestStatus::Revoked;
    let Intake::Updated(r) = apply_version(Some(&k), &v, NOW) else {
        panic!()
    };
    assert_eq!(r.state, ReferralState::Withdrawn);
    assert!(r.closed_now);
    v.closure = Some(ClosureCause::DidNotAttend);
    let Intake::Updated(r) = apply_version(Some(&k), &v, NOW) else {
        panic!()
    };
    assert_eq!(r.state, ReferralState::ClosedByReferrerAfterDna);
}

#[test]
fn decisions_are_idempotent_and_checked() {
    let reasons = vec!["not-eligible".to_string()];
    let d = Decision::Decline {
        reason: "not-eligible".into(),
    };
    assert!(matches!(
        decide(
            ReferralState::AwaitingDecision,
            None,
            &[],
            &d,
            &reasons,
            NOW
        ),
        Ok(DecisionEffect::Record {
            state: ReferralState::Declined,
            ..
        })
    ));
    assert_eq!(
        decide(ReferralState::Declined, Some(&d), &[], &d, &reasons, NOW),
        Ok(DecisionEffect::AlreadyRecorded)
    );
    assert_eq!(
        decide(
            ReferralState::Declined,
            Some(&d),
            &[],
            &Decision::Accept,
            &reasons,
            NOW
        ),
        Err(DecisionError::AlreadyDecided("declined"))
    );
    assert!(matches!(
        decide(
            ReferralState::Incomplete,
            None,
            &["no NHS number".into()],
            &Decision::Accept,
            &reasons,
            NOW
        ),
        Err(DecisionError::Incomplete(_))
    ));
    assert!(matches!(
        decide(
            ReferralState::AwaitingDecision,
            None,
            &[],
            &Decision::Decline {
                reason: "bored".into()
            },
            &reasons,
            NOW
        ),
        Err(DecisionError::UnknownDeclineReason(..))
    ));
}

#[test]
fn first_attendance_starts_assistance_once() {
    assert_eq!(
        on_attended(ReferralState::Accepted, None),
        Some(ReferralState::Started)
    );
    assert_eq!(on_attended(ReferralState::Started, Some(NOW)), None);
    assert_eq!(on_attended(ReferralState::AwaitingDecision, None), None);
    assert_eq!(days_waiting(NOW - time::Duration::days(10), NOW), 10);
}

#[test]
fn state_names_round_trip() {
    for s in [
        "incomplete",
        "awaiting-decision",
        "accepted",
        "started",
        "declined",
        "withdrawn",
        "closed-by-referrer-after-dna",
    ] {
        assert_eq!(ReferralState::parse(s).map(ReferralState::as_str), Some(s));
    }
}

#[test]
fn state_codes_are_spelled_the_same_by_serde_and_strum() {
    use strum::IntoEnumIterator;
    for st in ReferralState::iter() {
        assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        assert_eq!(ReferralState::parse(st.as_str()), Some(st));
    }
    assert_eq!(
        ReferralState::ClosedByReferrerAfterDna.as_str(),
        "closed-by-referrer-after-dna"
    );
    assert_eq!(ReferralState::parse("nonsense"), None);
}
