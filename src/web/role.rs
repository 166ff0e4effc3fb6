//! Who is signed in: the roles the pages know and the signed-in member of staff.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::OffsetDateTime;

pub use crate::domain::staff::Role;

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
