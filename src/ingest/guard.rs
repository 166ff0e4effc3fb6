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
            GuardError::Syntax(_) => RejectCode::InvalidJson,
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

/// `$.entry[3].resource`, from segments collected innermost first.
fn render_path(segments: &[Segment]) -> String {
    let mut out = String::from("$");
    for s in segments.iter().rev() {
        match s {
            Segment::Key(k) => {
                out.push('.');
                out.push_str(k);
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
        self.check_string(v.len())?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.check_string(v.len())?;
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
            if out.contains_key(&key) {
                return Err(self.state.fail(GuardError::DuplicateKey {
                    path: String::new(),
                    key,
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

    fn check_string<E: de::Error>(self, len: usize) -> Result<(), E> {
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
