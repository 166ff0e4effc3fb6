//! Small read-only views over FHIR JSON.
//!
//! The bridge reads a handful of elements and keeps the original JSON for
//! storage and pass-through, so it works on `serde_json::Value` rather than
//! fhir-sdk's typed structs (which drop unknown elements silently, see
//! DESIGN §10). Code values are still validated with fhir-sdk's R4B enums.

use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

pub use crate::domain::systems::{
    BARS_EVENT_SYSTEM, DOS_SERVICE_ID_SYSTEM, ODS_SYSTEM, SNOMED_SYSTEM,
};

/// Normalises identifier and code system URIs that arrive in several
/// spellings: `http://` vs `https://` for fhir.nhs.uk, `/id/` vs `/Id/`, and
/// a trailing slash. The original is kept in the stored JSON.
pub fn normalise_system(system: &str) -> Cow<'_, str> {
    let s = system.trim().trim_end_matches('/');
    let lower = s.to_ascii_lowercase();
    for prefix in ["http://fhir.nhs.uk/id/", "https://fhir.nhs.uk/id/"] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            return Cow::Owned(format!("https://fhir.nhs.uk/Id/{rest}"));
        }
    }
    if s.len() == system.len() {
        Cow::Borrowed(system)
    } else {
        Cow::Owned(s.to_owned())
    }
}

pub fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub fn array_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// True when `key` holds a non-empty array or object or a non-empty string.
pub fn has_content(v: &Value, key: &str) -> bool {
    match v.get(key) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.trim().is_empty(),
        _ => false,
    }
}

/// `(normalised system, value)` of each identifier of a resource (or of a
/// single `Identifier` when `v` is one).
pub fn identifiers(v: &Value) -> Vec<(String, String)> {
    let list: Vec<&Value> = match v.get("identifier") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(obj @ Value::Object(_)) => vec![obj],
        _ => vec![],
    };
    list.into_iter()
        .filter_map(|i| {
            let value = str_at(i, "value")?.trim();
            if value.is_empty() {
                return None;
            }
            Some((
                normalise_system(str_at(i, "system").unwrap_or("")).into_owned(),
                value.to_owned(),
            ))
        })
        .collect()
}

pub fn identifier_value(v: &Value, system: &str) -> Option<String> {
    identifiers(v)
        .into_iter()
        .find(|(s, _)| s == system)
        .map(|(_, v)| v)
}

/// All `(system, code)` pairs of a CodeableConcept or a list of them.
pub fn codings(concepts: &Value) -> Vec<(String, String)> {
    let list: Vec<&Value> = match concepts {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    list.into_iter()
        .flat_map(|c| array_at(c, "coding").iter())
        .filter_map(|c| {
            Some((
                normalise_system(str_at(c, "system").unwrap_or("")).into_owned(),
                str_at(c, "code")?.to_owned(),
            ))
        })
        .collect()
}

/// The resource type named by a relative or absolute literal reference
/// (`Patient/1`, `https://x/fhir/Patient/1/_history/2`).
pub fn reference_type(reference: &str) -> Option<&str> {
    let trimmed = match reference.find("/_history/") {
        Some(i) => &reference[..i],
        None => reference,
    };
    let mut parts = trimmed.rsplit('/');
    let _id = parts.next()?;
    let ty = parts.next()?;
    ty.chars()
        .next()
        .filter(char::is_ascii_uppercase)
        .map(|_| ty)
}

/// `Type/id` for a literal reference, dropping any base URL and `_history`.
pub fn relative_reference(reference: &str) -> Option<String> {
    let trimmed = match reference.find("/_history/") {
        Some(i) => &reference[..i],
        None => reference,
    };
    let mut parts = trimmed.rsplit('/');
    let id = parts.next()?;
    let ty = reference_type(trimmed)?;
    Some(format!("{ty}/{id}"))
}

/// Resolves references against the resources at hand: Bundle entries by
/// `fullUrl` (including `urn:uuid:`) and by `Type/id`, resources fetched by
/// the poller, and contained resources. A reference to something not at hand
/// (an `EpisodeOfCare` elsewhere) resolves to `None` and never fails.
/// It borrows the resources, so resolving copies nothing.
#[derive(Default, Debug)]
pub struct Resolver<'r> {
    by_key: HashMap<String, &'r Value>,
}

impl<'r> Resolver<'r> {
    pub fn add(&mut self, full_url: Option<&str>, resource: &'r Value) {
        if let (Some(t), Some(id)) = (str_at(resource, "resourceType"), str_at(resource, "id")) {
            self.by_key.insert(format!("{t}/{id}"), resource);
        }
        if let Some(u) = full_url {
            if let Some(rel) = relative_reference(u) {
                self.by_key.entry(rel).or_insert(resource);
            }
            self.by_key.insert(u.to_owned(), resource);
        }
    }

    /// The resource `reference` (a `Reference` element) points at, looking in
    /// `container.contained` for `#id` references.
    pub fn resolve<'a>(&'a self, container: &'a Value, reference: &Value) -> Option<&'a Value>
    where
        'r: 'a,
    {
        let r = str_at(reference, "reference")?;
        if let Some(local) = r.strip_prefix('#') {
            return array_at(container, "contained")
                .iter()
                .find(|c| str_at(c, "id") == Some(local));
        }
        self.by_key
            .get(r)
            .or_else(|| self.by_key.get(&relative_reference(r)?))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalises_identifier_system_variants() {
        assert_eq!(
            normalise_system("https://fhir.nhs.uk/id/ods-organization-code"),
            ODS_SYSTEM
        );
        assert_eq!(
            normalise_system("http://fhir.nhs.uk/Id/dos-service-id"),
            DOS_SERVICE_ID_SYSTEM
        );
        assert_eq!(
            normalise_system("https://fhir.nhs.uk/Id/nhs-number/"),
            "https://fhir.nhs.uk/Id/nhs-number"
        );
        assert_eq!(normalise_system(SNOMED_SYSTEM), SNOMED_SYSTEM);
    }

    #[test]
    fn references_and_types() {
        assert_eq!(reference_type("Patient/1"), Some("Patient"));
        assert_eq!(
            relative_reference("https://x.nhs.uk/fhir/Patient/1/_history/3").as_deref(),
            Some("Patient/1")
        );
        assert_eq!(reference_type("urn:uuid:1234"), None);
    }

    #[test]
    fn resolves_by_full_url_type_id_and_contained() {
        let (patient, org) = (
            json!({"resourceType":"Patient","id":"p-other"}),
            json!({"resourceType":"Organization"}),
        );
        let mut r = Resolver::default();
        r.add(Some("urn:uuid:abc"), &patient);
        r.add(Some("https://s/fhir/Organization/o1"), &org);
        let sr = json!({"contained":[{"resourceType":"Patient","id":"c1"}]});
        assert!(
            r.resolve(&sr, &json!({"reference":"urn:uuid:abc"}))
                .is_some()
        );
        assert!(
            r.resolve(&sr, &json!({"reference":"Patient/p-other"}))
                .is_some()
        );
        assert!(
            r.resolve(&sr, &json!({"reference":"Organization/o1"}))
                .is_some()
        );
        assert!(r.resolve(&sr, &json!({"reference":"#c1"})).is_some());
        assert!(
            r.resolve(&sr, &json!({"reference":"EpisodeOfCare/x"}))
                .is_none()
        );
        assert!(r.resolve(&sr, &json!({"display":"no reference"})).is_none());
    }
}
