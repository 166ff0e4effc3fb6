//! Structural checks on raw JSON, done while parsing it.
//!
//! `serde_json` silently keeps the last of two duplicate keys; on a clinical
//! message (two `value`s in one NHS number identifier) that is a patient-safety
//! hazard, so this parser rejects them. It also enforces the limits that are
//! part of the inbound contract (size, depth, string length) and rejects
//! invalid UTF-8 instead of decoding it lossily. One pass builds the
//! `serde_json::Value`, so the checks cost no second parse.

use crate::engine::rejection::{RejectCode, Rejection};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// Limits on inbound JSON; see `[limits]` in `config/default.toml`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_json_depth: usize,
    pub max_string_bytes: usize,
    pub max_bundle_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 << 20,
            max_json_depth: 64,
            max_string_bytes: 1 << 20,
            max_bundle_entries: 1000,
        }
    }
}

/// Why a body is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("message is {size} bytes; the limit is {max} bytes (limits.max_message_bytes)")]
    TooLarge { size: usize, max: usize },
    #[error("message is not valid UTF-8 (invalid byte sequence at offset {offset})")]
    InvalidUtf8 { offset: usize },
    #[error("message is not valid JSON: {0}")]
    Syntax(String),
    #[error("duplicate JSON key {key:?} at {path}")]
    DuplicateKey { path: String, key: String },
    #[error("JSON nesting deeper than {max} levels at {path} (limits.max_json_depth)")]
    TooDeep { path: String, max: usize },
    #[error("string at {path} contains U+0000 (NUL), which FHIR strings cannot carry")]
    Nul { path: String },
    #[error(
        "string at {path} is {len} bytes; FHIR strings are limited to {max} bytes (limits.max_string_bytes)"
    )]
    StringTooLong {
        path: String,
        len: usize,
        max: usize,
    },
}

impl GuardError {
    pub fn code(&self) -> RejectCode {
        match self {
            GuardError::TooLarge { .. } => RejectCode::MessageTooLarge,
            GuardError::InvalidUtf8 { .. } => RejectCode::InvalidUtf8,
            GuardError::Syntax(_) | GuardError::Nul { .. } => RejectCode::InvalidJson,
            GuardError::DuplicateKey { .. } => RejectCode::DuplicateJsonKey,
            GuardError::TooDeep { .. } => RejectCode::JsonTooDeep,
            GuardError::StringTooLong { .. } => RejectCode::StringTooLong,
        }
    }
}

/// Parses `bytes` into a JSON value, enforcing `limits`.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Value, GuardError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(GuardError::TooLarge {
            size: bytes.len(),
            max: limits.max_message_bytes,
        });
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(GuardError::InvalidUtf8 {
            offset: e.valid_up_to(),
        });
    }
    let state = State {
        limits: *limits,
        violation: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Seed {
        state: &state,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => Err(match state.violation.into_inner() {
            Some((v, segments)) => with_path(v, &segments),
            None => GuardError::Syntax(e.to_string()),
        }),
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

/// Parser state. The path to a violation is built only when one happens: each
/// level adds its segment while the error unwinds, so the common (valid) case
/// pays nothing for it.
struct State {
    limits: Limits,
    violation: RefCell<Option<(GuardError, Vec<Segment>)>>,
}

impl State {
    fn fail<E: de::Error>(&self, v: GuardError) -> E {
        let msg = v.to_string();
        *self.violation.borrow_mut() = Some((v, Vec::new()));
        E::custom(msg)
    }

    /// Called by a container while an error from one of its children unwinds.
    fn unwinding(&self, segment: impl FnOnce() -> Segment) {
        if let Some((_, path)) = self.violation.borrow_mut().as_mut() {
            path.push(segment());
        }
    }
}

/// A key as an error may show it: FHIR JSON keys are element names
/// (`identifier`, `_birthDate`, `valueCodeableConcept`), which say where a
/// problem is and carry no patient data. Any other key is message content
/// (a sender could put an NHS number or a name there) and the error, which
/// is logged and sent in dead-letter headers, shows `?` instead.
fn shown_key(key: &str) -> &str {
    let mut chars = key.chars();
    let element_name = key.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if element_name { key } else { "?" }
}

/// `$.entry[3].resource`, from segments collected innermost first.
fn render_path(segments: &[Segment]) -> String {
    let mut out = String::from("$");
    for s in segments.iter().rev() {
        match s {
            Segment::Key(k) => {
                out.push('.');
                out.push_str(shown_key(k));
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Puts the rendered path into the error that carries one.
fn with_path(v: GuardError, segments: &[Segment]) -> GuardError {
    match v {
        GuardError::DuplicateKey { key, .. } => GuardError::DuplicateKey {
            path: render_path(segments),
            key,
        },
        GuardError::Nul { .. } => GuardError::Nul {
            path: render_path(segments),
        },
        GuardError::TooDeep { max, .. } => GuardError::TooDeep {
            path: render_path(segments),
            max,
        },
        GuardError::StringTooLong { len, max, .. } => GuardError::StringTooLong {
            path: render_path(segments),
            len,
            max,
        },
        other => other,
    }
}

#[derive(Clone, Copy)]
struct Seed<'a> {
    state: &'a State,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.check_string(v)?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.check_string(&v)?;
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut out = Vec::new();
        loop {
            match seq.next_element_seed(inner) {
                Ok(Some(v)) => out.push(v),
                Ok(None) => break,
                Err(e) => {
                    let i = out.len();
                    self.state.unwinding(|| Segment::Index(i));
                    return Err(e);
                }
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if let Err(e) = self.check_string(&key) {
                self.state.unwinding(|| Segment::Key(key));
                return Err(e);
            }
            if out.contains_key(&key) {
                return Err(self.state.fail(GuardError::DuplicateKey {
                    path: String::new(),
                    key: shown_key(&key).to_owned(),
                }));
            }
            match map.next_value_seed(inner) {
                Ok(v) => {
                    out.insert(key, v);
                }
                Err(e) => {
                    self.state.unwinding(|| Segment::Key(key));
                    return Err(e);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

impl Seed<'_> {
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.state.limits.max_json_depth {
            return Err(self.state.fail(GuardError::TooDeep {
                path: String::new(),
                max: self.state.limits.max_json_depth,
            }));
        }
        Ok(Seed {
            state: self.state,
            depth: self.depth + 1,
        })
    }

    /// A string (value or key) within the length limit and without U+0000:
    /// FHIR cannot carry NUL (XML 1.0 has no way to write it), and a column
    /// holding it would be refused by PostgreSQL on every redelivery.
    fn check_string<E: de::Error>(self, v: &str) -> Result<(), E> {
        let len = v.len();
        if v.contains('\0') {
            return Err(self.state.fail(GuardError::Nul {
                path: String::new(),
            }));
        }
        let max = self.state.limits.max_string_bytes;
        if len > max {
            return Err(self.state.fail(GuardError::StringTooLong {
                path: String::new(),
                len,
                max,
            }));
        }
        Ok(())
    }
}

impl From<GuardError> for Rejection {
    fn from(e: GuardError) -> Self {
        Rejection::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_message_bytes: 10_000_000,
            max_json_depth: 8,
            max_string_bytes: 1000,
            max_bundle_entries: 10,
        }
    }

    #[test]
    fn parses_ordinary_json_like_serde_json() {
        let text = r#"{"a":[1,2.5,"x",{"b":null,"c":true}],"d":-3}"#;
        assert_eq!(
            parse(text.as_bytes(), &limits()).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn rejects_duplicate_keys_with_path() {
        let text = r#"{"identifier":[{"system":"s","value":"1","value":"2"}]}"#;
        let err = parse(text.as_bytes(), &limits()).unwrap_err();
        assert_eq!(
            err,
            GuardError::DuplicateKey {
                path: "$.identifier[0]".into(),
                key: "value".into()
            }
        );
    }

    /// Keys that are not FHIR element names are message content: the
    /// error (logged, and sent in dead-letter headers) never shows them.
    #[test]
    fn errors_show_element_names_but_never_other_keys() {
        let dup = r#"{"entry":[{"9434765919":1,"9434765919":2}]}"#;
        let err = parse(dup.as_bytes(), &limits()).unwrap_err();
        assert_eq!(
            err,
            GuardError::DuplicateKey {
                path: "$.entry[0]".into(),
                key: "?".into()
            }
        );
        let long = format!(r#"{{"Jane Smith":{{"text":"{}"}}}}"#, "x".repeat(1001));
        let err = parse(long.as_bytes(), &limits()).unwrap_err();
        assert!(
            matches!(&err, GuardError::StringTooLong { path, .. } if path == "$.?.text"),
            "{err:?}"
        );
        let deep = format!(r#"{{"_birthDate":{}}}"#, r#"{"<script>":"#.repeat(10));
        let err = parse(deep.as_bytes(), &limits()).unwrap_err();
        assert!(!err.to_string().contains("script"), "{err}");
        assert!(err.to_string().contains("$._birthDate.?"), "{err}");
    }

    /// `\u0000` is valid JSON but no FHIR string: refused with its path,
    /// in values and in keys.
    #[test]
    fn rejects_nul_in_strings_and_keys() {
        let err = parse(br#"{"reasonCode":[{"text":"a\u0000b"}]}"#, &limits()).unwrap_err();
        assert_eq!(
            err,
            GuardError::Nul {
                path: "$.reasonCode[0].text".into()
            }
        );
        assert_eq!(err.code(), RejectCode::InvalidJson);
        let err = parse(br#"{"id":{"a\u0000":1}}"#, &limits()).unwrap_err();
        assert_eq!(
            err,
            GuardError::Nul {
                path: "$.id.?".into()
            }
        );
        // A raw NUL byte is not JSON at all.
        assert!(matches!(
            parse(b"{\"id\":\"a\x00\"}", &limits()),
            Err(GuardError::Syntax(_))
        ));
    }

    #[test]
    fn rejects_depth_size_strings_and_utf8() {
        let deep = "[".repeat(20) + &"]".repeat(20);
        assert!(matches!(
            parse(deep.as_bytes(), &limits()),
            Err(GuardError::TooDeep { .. })
        ));
        let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(1001));
        assert!(matches!(
            parse(long.as_bytes(), &limits()),
            Err(GuardError::StringTooLong { len: 1001, .. })
        ));
        let small = Limits {
            max_message_bytes: 4,
            ..limits()
        };
        assert!(matches!(
            parse(b"[1,2,3]", &small),
            Err(GuardError::TooLarge { size: 7, max: 4 })
        ));
        assert_eq!(
            parse(b"{\"a\":\"\xff\"}", &limits()),
            Err(GuardError::InvalidUtf8 { offset: 6 })
        );
        assert!(matches!(
            parse(b"{\"a\":", &limits()),
            Err(GuardError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"{} trailing", &limits()),
            Err(GuardError::Syntax(_))
        ));
    }
}
