//! Structural checks on raw JSON, done while parsing it.
//!
//! `serde_json` silently keeps the last of two duplicate keys; on a clinical
//! message (two `value`s in one NHS number identifier) that is a patient-safety
//! hazard, so this parser rejects them. It also enforces the limits that are
//! part of the inbound contract (size, depth, string length) and rejects
//! invalid UTF-8 instead of decoding it lossily. One pass builds the
//! `serde_json::Value`, so the checks cost no second parse.

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
    pub fn code(&self) -> &'static str {
        match self {
            GuardError::TooLarge { .. } => "message-too-large",
            GuardError::InvalidUtf8 { .. } => "invalid-utf8",
            GuardError::Syntax(_) => "invalid-json",
            GuardError::DuplicateKey { .. } => "duplicate-json-key",
            GuardError::TooDeep { .. } => "json-too-deep",
            GuardError::StringTooLong { .. } => "string-too-long",
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
        path: RefCell::new(Vec::new()),
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
        Err(e) => Err(state
            .violation
            .into_inner()
            .unwrap_or_else(|| GuardError::Syntax(e.to_string()))),
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

struct State {
    limits: Limits,
    path: RefCell<Vec<Segment>>,
    violation: RefCell<Option<GuardError>>,
}

impl State {
    fn path(&self) -> String {
        let mut out = String::from("$");
        for s in self.path.borrow().iter() {
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

    fn fail<E: de::Error>(&self, v: GuardError) -> E {
        let msg = v.to_string();
        *self.violation.borrow_mut() = Some(v);
        E::custom(msg)
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
            self.state.path.borrow_mut().push(Segment::Index(out.len()));
            let next = seq.next_element_seed(inner)?;
            self.state.path.borrow_mut().pop();
            match next {
                Some(v) => out.push(v),
                None => break,
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
                    path: self.state.path(),
                    key,
                }));
            }
            self.state.path.borrow_mut().push(Segment::Key(key.clone()));
            let v = map.next_value_seed(inner)?;
            self.state.path.borrow_mut().pop();
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

impl Seed<'_> {
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.state.limits.max_json_depth {
            return Err(self.state.fail(GuardError::TooDeep {
                path: self.state.path(),
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
                path: self.state.path(),
                len,
                max,
            }));
        }
        Ok(())
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
