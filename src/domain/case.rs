//! A patient's IPS case: one open case per patient, whatever the number of referrals.

use serde::Serialize;

/// Whether a case is open. Closing needs an explicit decision with a reason
/// (never missed appointments alone: IPS fidelity item 25).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum CaseStatus {
    Open,
    Closed,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A stored code this version does not know: refused, never defaulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown case status code {0:?}")]
pub struct UnknownCaseStatus(pub String);

impl TryFrom<String> for CaseStatus {
    type Error = UnknownCaseStatus;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map_err(|_| UnknownCaseStatus(s))
    }
}
