//! A layer over every page route: cross-origin posts are refused before
//! any handler runs, and every response gets its security headers.
//!
//! The origin check backs up the CSRF token: browsers send `Origin` on
//! posts and `Sec-Fetch-Site` on every request, so a form posted from
//! another site is refused even if a token leaked. Either header may be
//! missing (older browsers, non-browser clients); then the token decides.

use super::WebState;
use super::extract::form_expired;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

pub async fn guard(State(web): State<Arc<WebState>>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !same_origin(req.headers(), &web.origin) {
        tracing::warn!(
            path = req.uri().path(),
            "form refused: posted from another origin"
        );
        let mut res = form_expired(&web);
        add_headers(&web, &mut res, false);
        return res;
    }
    let is_static = {
        let p = req.uri().path();
        p.starts_with("/static/") || p.starts_with("/assets/")
    };
    let mut res = next.run(req).await;
    add_headers(&web, &mut res, is_static);
    res
}

/// True unless a header says the request came from elsewhere.
fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match value("origin") {
        Some(o) => o == origin,
        None => true,
    }
}

fn add_headers(web: &WebState, res: &mut Response, is_static: bool) {
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    let cache = if is_static {
        // The frontend's files change only with the installed package.
        "public, max-age=3600"
    } else {
        // Pages show people's details and carry the form token: never stored.
        "no-store"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        h.insert(header::CONTENT_SECURITY_POLICY, web.csp.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, val) in v {
            h.insert(*k, HeaderValue::from_static(val));
        }
        h
    }

    #[test]
    fn other_origins_and_cross_site_fetches_are_refused() {
        let o = "https://ips.example";
        assert!(same_origin(&headers(&[]), o));
        assert!(same_origin(
            &headers(&[("origin", "https://ips.example")]),
            o
        ));
        assert!(!same_origin(
            &headers(&[("origin", "https://evil.example")]),
            o
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), o));
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            o
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            o
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            o
        ));
    }
}
