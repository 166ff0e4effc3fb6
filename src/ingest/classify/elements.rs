//! Reading single elements: required ones, codes, instants, the content
//! hash that tells a new version from a re-read, and the NHS number.

use super::*;
use crate::domain::nhs_number::{NHS_NUMBER_SYSTEM, NhsNumber};
use crate::domain::referral::NhsField;
use sha2::{Digest, Sha256};
use std::str::FromStr;
use time::OffsetDateTime;

pub(super) fn require<'a>(
    v: &'a Value,
    key: &str,
    rt: &str,
    note: &str,
) -> Result<&'a Value, Rejection> {
    v.get(key).filter(|x| !x.is_null()).ok_or_else(|| {
        Rejection::new(
            RejectCode::MissingRequiredElement,
            format!("{rt}.{key} is required{note}"),
        )
    })
}

pub(super) fn parse_code<T: FromStr>(v: &Value, key: &str, rt: &str) -> Result<T, Rejection> {
    let raw = require(v, key, rt, "")?;
    let s = raw.as_str().ok_or_else(|| {
        Rejection::new(
            RejectCode::InvalidElement,
            format!("{rt}.{key} must be a string code"),
        )
    })?;
    T::from_str(s).map_err(|_| {
        Rejection::new(
            RejectCode::InvalidCode,
            format!("{rt}.{key} is not a valid FHIR R4 code"),
        )
    })
}

pub(super) fn parse_instant(v: Option<&str>) -> Option<OffsetDateTime> {
    v.and_then(|s| fhir_sdk::Instant::from_str(s).ok())
        .map(|i| i.0)
}

pub(super) fn parse_datetime(v: Option<&str>) -> Option<OffsetDateTime> {
    match fhir_sdk::DateTime::from_str(v?).ok()? {
        fhir_sdk::DateTime::DateTime(i) => Some(i.0),
        fhir_sdk::DateTime::Date(fhir_sdk::Date::Date(d)) => Some(d.midnight().assume_utc()),
        fhir_sdk::DateTime::Date(_) => None,
    }
}

/// Hash of what the sender authored: every element but `meta` and `id`
/// (where or when a server stored it), streamed into the hasher without
/// copying the resource.
pub(super) fn content_hash(parts: &[&Value]) -> String {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Hashing(Sha256::new());
    for p in parts {
        match p {
            Value::Object(m) => {
                for (k, v) in m.iter().filter(|(k, _)| *k != "meta" && *k != "id") {
                    // Writing to a hasher cannot fail.
                    let _ = serde_json::to_writer(&mut w, k);
                    w.0.update(b":");
                    let _ = serde_json::to_writer(&mut w, v);
                    w.0.update(b",");
                }
            }
            other => {
                let _ = serde_json::to_writer(&mut w, other);
            }
        }
        w.0.update(b"\x1e");
    }
    hex::encode(w.0.finalize())
}

pub(super) fn nhs_field(patient: Option<&Value>, reference: Option<&Value>) -> NhsField {
    let from_patient = patient.and_then(|p| identifier_value(p, NHS_NUMBER_SYSTEM));
    let from_ref = reference.and_then(|r| identifier_value(r, NHS_NUMBER_SYSTEM));
    match from_patient.or(from_ref) {
        None => NhsField::Missing,
        Some(n) => match NhsNumber::parse(&n) {
            Ok(n) => NhsField::Valid(n),
            Err(e) => NhsField::Invalid(e),
        },
    }
}
