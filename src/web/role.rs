//! Who is signed in: the roles the pages know and the signed-in member of staff.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// A role on the pages. Claim values from the identity provider are mapped
/// to these by `web.role_values`, so a CIS2 role code never reaches a page.
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

/// The signed-in member of staff, as every page handler receives them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    /// The provider's subject identifier: stable, unlike the name.
    pub sub: String,
    pub name: String,
    pub roles: BTreeSet<Role>,
    /// This session's form token: every form the pages render carries it
    /// in a hidden field `csrf`, and [`super::CsrfForm`] checks it.
    pub csrf: String,
}

/// Without the form token: a `{:?}` in a log line must not print it.
impl std::fmt::Debug for Staff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staff")
            .field("sub", &self.sub)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Staff {
    pub fn is(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Team leads and admins see the team's pages and the reports.
    pub fn sees_team(&self) -> bool {
        self.is(Role::TeamLead) || self.is(Role::Admin)
    }
}

/// One member of staff who has signed in since the bridge started: the
/// roster the caseload assignment chooses from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffSummary {
    pub sub: String,
    pub name: String,
    pub roles: BTreeSet<Role>,
    /// The last sign-in.
    pub last_seen: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_and_print_in_kebab_case() {
        assert_eq!("team-lead".parse::<Role>().ok(), Some(Role::TeamLead));
        assert_eq!(Role::TeamLead.to_string(), "team-lead");
        let r: Vec<Role> = serde_json::from_str(r#"["specialist","admin"]"#).unwrap_or_default();
        assert_eq!(r, vec![Role::Specialist, Role::Admin]);
        assert!("lead".parse::<Role>().is_err());
    }
}
