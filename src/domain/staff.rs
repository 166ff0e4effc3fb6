//! Staff roles: what a member of staff may see and do on the pages. Claim
//! values from the identity provider are mapped to these by configuration
//! (`web.role_values`), so the rest of the code knows only these three.

use serde::{Deserialize, Serialize};

/// A role on the pages. A CIS2 role code never reaches a page.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Role {
    /// An employment specialist: their own caseload.
    Specialist,
    /// Sees the team's caseloads and the fidelity and IPS Grow reports.
    TeamLead,
    /// Everything a team lead sees (and, later, the service's settings).
    Admin,
}
