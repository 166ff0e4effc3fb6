//! Describing refused JSON without quoting it.

/// Describes a serde error by where and what kind, never by its message:
/// serde's messages quote the offending value (`invalid type: string
/// "9912003888", expected ...`), and a value from a message must not reach a
/// log, a metric or a dead letter's headers.
pub fn serde_summary(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let what = match e.inner().classify() {
        serde_json::error::Category::Data => "wrong type, unknown field or invalid value",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Io => "read error",
    };
    let mut path = String::new();
    for seg in e.path().iter() {
        use serde_path_to_error::Segment;
        match seg {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !path.is_empty() {
                    path.push('.');
                }
                // A key comes from the message too (an unknown field is named by it).
                path.push_str(if is_plain_name(key) { key } else { "<key>" });
            }
            Segment::Unknown => path.push_str(".?"),
        }
    }
    if path.is_empty() {
        what.to_owned()
    } else {
        format!("{what} at {path}")
    }
}

/// A field name as a schema would have it, not a value used as a key: a
/// letter first, then letters, digits, `_` or `-`, and no run of 4 digits.
fn is_plain_name(k: &str) -> bool {
    let mut digits = 0;
    k.len() <= 64
        && k.starts_with(|c: char| c.is_ascii_alphabetic())
        && k.chars().all(|c| {
            digits = if c.is_ascii_digit() { digits + 1 } else { 0 };
            digits < 4 && (c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_summary_names_the_path_not_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            referral_id: String,
        }
        let v = serde_json::json!({"referral_id": 9912003888u64});
        let e = serde_path_to_error::deserialize::<_, T>(v).unwrap_err();
        assert!(e.to_string().contains("9912003888"), "serde quotes it: {e}");
        let s = serde_summary(&e);
        assert!(!s.contains("9912003888"), "{s}");
        assert!(s.contains("referral_id"), "{s}");

        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            a: Option<u8>,
        }
        let v = serde_json::json!({"9912003888": 1});
        let e = serde_path_to_error::deserialize::<_, Strict>(v).unwrap_err();
        assert!(!serde_summary(&e).contains("9912003888"), "{e}");
    }
}
