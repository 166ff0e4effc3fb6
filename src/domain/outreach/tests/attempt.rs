use super::*;
use strum::IntoEnumIterator;

#[test]
fn methods_map_to_uk_core_preferred_contact_method() {
    use AttemptMethod::*;
    let code = |m: AttemptMethod| m.preferred_contact_method().map(|(c, _)| c);
    assert_eq!(code(Phone), Some("3"));
    assert_eq!(code(TextMessage), Some("9"));
    assert_eq!(code(Letter), Some("1"));
    assert_eq!(code(Email), Some("4"));
    for visit in [HomeVisit, CommunityVisit, JointVisit] {
        assert_eq!(visit.preferred_contact_method(), Some(("2", "Visit")));
    }
    assert_eq!(code(FamilyOrCarerContact), None);
    for m in AttemptMethod::iter() {
        assert!(!m.medium_text().is_empty());
    }
}

#[test]
fn outcomes_have_snomed_codes_only_where_true_of_the_method() {
    use AttemptMethod as M;
    use AttemptOutcome as O;
    assert_eq!(
        O::NoAnswer.snomed(M::Phone),
        Some(("185337004", "No answer when rang"))
    );
    assert_eq!(
        O::MessageLeft.snomed(M::Phone),
        Some(("185340004", "Message left on answer machine"))
    );
    assert_eq!(
        O::NumberUnobtainable.snomed(M::Phone).map(|c| c.0),
        Some("185341000")
    );
    assert_eq!(
        O::NoAnswer.snomed(M::HomeVisit),
        Some(("185471009", "Home visit - no reply"))
    );
    assert_eq!(O::NoAnswer.snomed(M::Letter), None);
    assert_eq!(O::MessageLeft.snomed(M::HomeVisit), None);
    assert_eq!(O::Contacted.snomed(M::Phone), None);
    for o in AttemptOutcome::iter() {
        assert_eq!(o.is_contact(), o == O::Contacted);
        assert!(!o.label().is_empty());
    }
}
