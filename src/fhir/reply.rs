//! What the FHIR client reads from and puts into HTTP exchanges: query
//! tokens, `Location`, `ETag` and `Retry-After` headers, status classes for
//! metrics, and the same-origin rule for `next` links. Pure functions, kept
//! apart from the request loop so each can be tested on its own.

use serde_json::Value;
use std::time::Duration;

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
