//! Referral source: who referred, as IPS Grow counts it.
//!
//! IPS services report referrals by source (GP practice, community mental
//! health team, self-referral, other). The FHIR requester only tells us the
//! kind of resource and, usually, an ODS code; the mapping to a source kind is
//! a rule with local configuration, kept here so that it is testable.

use serde::{Deserialize, Serialize};

/// The kind of referrer, as reported to IPS Grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    GpPractice,
    CommunityMentalHealthTeam,
    SelfReferral,
    Other,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::GpPractice => "gp-practice",
            SourceKind::CommunityMentalHealthTeam => "community-mental-health-team",
            SourceKind::SelfReferral => "self-referral",
            SourceKind::Other => "other",
        }
    }

    /// Every kind, for parsing and for metric labels.
    pub const ALL: [Self; 4] = [
        Self::GpPractice,
        Self::CommunityMentalHealthTeam,
        Self::SelfReferral,
        Self::Other,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What the FHIR `requester` reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequesterKind {
    Patient,
    RelatedPerson,
    Organization,
    Practitioner,
    PractitionerRole,
    Unknown,
}

impl RequesterKind {
    pub fn from_resource_type(t: &str) -> Self {
        match t {
            "Patient" => Self::Patient,
            "RelatedPerson" => Self::RelatedPerson,
            "Organization" => Self::Organization,
            "Practitioner" => Self::Practitioner,
            "PractitionerRole" => Self::PractitionerRole,
            _ => Self::Unknown,
        }
    }
}

/// Local knowledge used to classify referrers.
#[derive(Debug, Clone, Default)]
pub struct SourceRules {
    /// ODS codes of the community mental health teams that refer to this service.
    pub cmht_ods_codes: Vec<String>,
    /// Organisation type codes (any system) that mean a mental health team.
    pub cmht_type_codes: Vec<String>,
}

/// Who referred, reduced to what is stored and reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralSource {
    pub ods_code: Option<String>,
    pub kind: SourceKind,
}

/// Classifies a referrer.
///
/// GP practices are recognised by the shape of their ODS code (one letter and
/// five digits, e.g. `A81001`): ODS gives practices that shape and trusts and
/// their sites other shapes (`RX4`, `RX4E2`), so no lookup service is needed.
pub fn classify(
    requester: RequesterKind,
    ods_code: Option<&str>,
    org_type_codes: &[String],
    rules: &SourceRules,
) -> ReferralSource {
    let ods = ods_code
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty());
    let kind = match requester {
        RequesterKind::Patient | RequesterKind::RelatedPerson => SourceKind::SelfReferral,
        _ => match ods.as_deref() {
            Some(code)
                if rules
                    .cmht_ods_codes
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(code)) =>
            {
                SourceKind::CommunityMentalHealthTeam
            }
            _ if org_type_codes
                .iter()
                .any(|t| rules.cmht_type_codes.contains(t)) =>
            {
                SourceKind::CommunityMentalHealthTeam
            }
            Some(code) if is_gp_practice_code(code) => SourceKind::GpPractice,
            _ => SourceKind::Other,
        },
    };
    ReferralSource {
        ods_code: ods,
        kind,
    }
}

/// ODS codes for GP practices: a letter followed by five digits.
pub fn is_gp_practice_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 6 && b[0].is_ascii_alphabetic() && b[1..].iter().all(u8::is_ascii_digit)
}

/// Shape check for an ODS organisation code (used to validate configuration):
/// 3 to 6 letters and digits, starting with a letter or digit.
pub fn is_ods_code(code: &str) -> bool {
    (3..=6).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> SourceRules {
        SourceRules {
            cmht_ods_codes: vec!["RX4E2".into()],
            cmht_type_codes: vec!["CMHT".into()],
        }
    }

    #[test]
    fn classifies_each_kind() {
        let r = rules();
        assert_eq!(
            classify(RequesterKind::Organization, Some("a81001"), &[], &r).kind,
            SourceKind::GpPractice
        );
        assert_eq!(
            classify(RequesterKind::PractitionerRole, Some("RX4E2"), &[], &r).kind,
            SourceKind::CommunityMentalHealthTeam
        );
        assert_eq!(
            classify(
                RequesterKind::Organization,
                Some("RX4"),
                &["CMHT".into()],
                &r
            )
            .kind,
            SourceKind::CommunityMentalHealthTeam
        );
        assert_eq!(
            classify(RequesterKind::Patient, None, &[], &r).kind,
            SourceKind::SelfReferral
        );
        assert_eq!(
            classify(RequesterKind::Organization, Some("RX4"), &[], &r).kind,
            SourceKind::Other
        );
        assert_eq!(
            classify(RequesterKind::Unknown, None, &[], &r).kind,
            SourceKind::Other
        );
    }

    #[test]
    fn normalises_ods_case() {
        let s = classify(RequesterKind::Organization, Some(" a81001 "), &[], &rules());
        assert_eq!(s.ods_code.as_deref(), Some("A81001"));
    }

    #[test]
    fn source_kind_round_trips() {
        for k in [
            SourceKind::GpPractice,
            SourceKind::CommunityMentalHealthTeam,
            SourceKind::SelfReferral,
            SourceKind::Other,
        ] {
            assert_eq!(SourceKind::parse(k.as_str()), Some(k));
        }
    }
}
