//! What the FHIR client reads from and puts into HTTP exchanges: query
//! tokens, `Location`, `ETag` and `Retry-After` headers, status classes for
//! metrics, and the same-origin rule for `next` links. Pure functions, kept
//! apart from the request loop so each can be tested on its own.

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// One HTTP exchange's answer, as the request loop hands it to the callers.
pub(super) struct Reply {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub location: Option<String>,
    /// The body as received. Why not a `Value`: a write's reply is the whole
    /// resource echoed back, of which the bridge needs only `id` and
    /// `meta.versionId` (see [`Reply::stamp`]); building a tree of it, and
    /// dropping it, cost more than the request on the write path.
    pub body: bytes::Bytes,
}

impl Reply {
    /// The body as JSON; `Null` when empty or not JSON.
    pub fn json(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `(id, meta.versionId)` of the resource in the body, reading only
    /// those two members (the rest is skipped, not built).
    pub fn stamp(&self) -> Option<(String, Option<String>)> {
        #[derive(serde::Deserialize)]
        struct Stamp {
            id: Option<Value>,
            meta: Option<Value>,
        }
        let s: Stamp = serde_json::from_slice(&self.body).ok()?;
        let id = s.id.as_ref().and_then(Value::as_str)?.to_owned();
        let version = s.meta.as_ref().and_then(|m| m["versionId"].as_str());
        Some((id, version.map(str::to_owned)))
    }
}

/// `identifier=system%7Cvalue`: the search that makes a create conditional
/// (a literal `|` is not safe in every server's query parser).
pub(super) fn identifier_query(system: &str, value: &str) -> String {
    let token: String =
        url::form_urlencoded::byte_serialize(format!("{system}|{value}").as_bytes()).collect();
    format!("identifier={token}")
}

pub(super) fn meta_version(v: &Value) -> Option<String> {
    v["meta"]["versionId"].as_str().map(str::to_owned)
}

/// `…/Type/id` or `…/Type/id/_history/vid` → `(id, vid?)`.
pub(super) fn parse_location(loc: &str) -> Option<(String, Option<String>)> {
    let (path, version) = match loc.split_once("/_history/") {
        Some((p, v)) => (p, Some(v.trim_end_matches('/').to_owned())),
        None => (loc, None),
    };
    let id = path.trim_end_matches('/').rsplit('/').next()?.to_owned();
    (!id.is_empty()).then_some((id, version))
}

/// `W/"3"` → `3`.
pub(super) fn strip_etag(s: &str) -> String {
    s.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_owned()
}

/// `Retry-After` in seconds (HTTP dates are turned into a short default).
pub(super) fn parse_retry_after(s: &str) -> Option<Duration> {
    match s.trim().parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs.min(300))),
        Err(_) => Some(Duration::from_secs(5)),
    }
}

pub(super) fn status_class(s: u16) -> &'static str {
    match s {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

pub(super) fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &'static str) -> Reply {
        Reply {
            status: StatusCode::CREATED,
            etag: None,
            location: None,
            body: bytes::Bytes::from_static(body.as_bytes()),
        }
    }

    /// The write path reads only `id` and `meta.versionId` of an echoed
    /// resource: the same answers a whole `Value` gave, and none from a body
    /// that is not a resource (then `Location` decides).
    #[test]
    fn a_reply_stamp_reads_id_and_version_only() {
        let echoed = r#"{"resourceType":"Task","id":"t1","meta":{"versionId":"3","lastUpdated":"2026-12-01T10:00:00Z"},"note":[{"text":"x"}]}"#;
        assert_eq!(reply(echoed).stamp(), Some(("t1".into(), Some("3".into()))));
        assert_eq!(reply(r#"{"id":"t2"}"#).stamp(), Some(("t2".into(), None)));
        assert_eq!(
            reply(r#"{"id":"t3","meta":"odd"}"#).stamp(),
            Some(("t3".into(), None))
        );
        assert_eq!(reply(r#"{"id":7}"#).stamp(), None);
        assert_eq!(reply("").stamp(), None);
        assert_eq!(reply("<html>").stamp(), None);
        assert_eq!(reply("").json(), Value::Null);
        assert_eq!(
            reply(r#"{"entry":[1,2]}"#).json()["entry"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn parses_locations_with_and_without_history() {
        assert_eq!(
            parse_location("https://s/fhir/Task/abc/_history/2"),
            Some(("abc".into(), Some("2".into())))
        );
        assert_eq!(parse_location("Task/abc"), Some(("abc".into(), None)));
        assert_eq!(strip_etag("W/\"7\""), "7");
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
    }

    #[test]
    fn only_follows_links_on_the_same_server() {
        assert!(same_origin(
            "http://127.0.0.1:1/fhir/X?a",
            "http://127.0.0.1:1/fhir"
        ));
        assert!(!same_origin(
            "http://evil.example/fhir/X",
            "http://127.0.0.1:1/fhir"
        ));
    }
}
