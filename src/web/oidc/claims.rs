//! Reading the roles claim, wherever the provider puts it.

use openidconnect::AdditionalClaims;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// Every claim of the ID token beyond the standard ones, kept as JSON:
/// which one holds the roles is configuration (`web.roles_claim`), not a
/// type.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExtraClaims(pub HashMap<String, Value>);

impl AdditionalClaims for ExtraClaims {}

/// The strings at `path` (`a.b.c`): a string, or a list, each step going
/// into an object's field or into every element of a list. Anything else
/// (numbers, missing fields) contributes nothing.
pub fn strings_at<'a>(claims: &'a ExtraClaims, path: &str) -> Vec<&'a str> {
    let mut parts = path.split('.');
    let Some(first) = parts.next().and_then(|p| claims.0.get(p)) else {
        return Vec::new();
    };
    let mut here: Vec<&Value> = vec![first];
    for part in parts {
        here = here
            .into_iter()
            .flat_map(elements)
            .filter_map(|v| v.get(part))
            .collect();
    }
    here.into_iter()
        .flat_map(elements)
        .filter_map(Value::as_str)
        .collect()
}

fn elements(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> ExtraClaims {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn a_list_a_string_or_a_path_through_objects() {
        let c = claims(json!({
            "roles": ["specialist", 3, "admin"],
            "role": "team-lead",
            "nhsid_nrbac_roles": [
                {"role_code": "S8000:G8000:R8001", "org_code": "RX4"},
                {"role_code": "S8000:G8000:R8000"},
                {"other": true}
            ]
        }));
        assert_eq!(strings_at(&c, "roles"), ["specialist", "admin"]);
        assert_eq!(strings_at(&c, "role"), ["team-lead"]);
        assert_eq!(
            strings_at(&c, "nhsid_nrbac_roles.role_code"),
            ["S8000:G8000:R8001", "S8000:G8000:R8000"]
        );
        assert!(strings_at(&c, "missing").is_empty());
        assert!(strings_at(&c, "roles.x").is_empty());
    }
}
