//! Staff sign-in against a real OpenID Connect provider (panva's
//! `oidc-provider`, which enforces PKCE), with the bridge as a process.
//!
//! The client here is a minimal browser: it follows no redirect by itself
//! and keeps cookies by hand (the daemon's cookies are not `Secure` in this
//! plain-HTTP test: `web.cookie_secure = false`), so each step of the flow
//! (sign-in redirect, callback, session cookie, sign-out) is visible.

mod common;

use common::daemon::Daemon;
use common::oidc::OidcProvider;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, ORIGIN, SET_COOKIE};
use std::collections::BTreeMap;
use std::time::Duration;

const ASSETS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/local/web-assets/node_modules/nhsuk-frontend/dist/nhsuk"
);

const FORM: &str = "application/x-www-form-urlencoded";

fn encode(form: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}

/// A daemon with the pages enabled against `issuer`, on a port chosen
/// first so that the redirect URL can name it.
async fn daemon(issuer: &str, session_ttl: &str) -> (Daemon, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let redirect = format!("{base}/auth/callback");
    let d = Daemon::start(&[
        ("IPS__HTTP__LISTEN", &listen),
        ("IPS__WEB__ENABLED", "true"),
        ("IPS__WEB__ISSUER", issuer),
        ("IPS__WEB__CLIENT_ID", "ips-bridge"),
        ("IPS__WEB__CLIENT_SECRET", "ips-bridge-local-secret"),
        ("IPS__WEB__REDIRECT_URL", &redirect),
        ("IPS__WEB__COOKIE_SECURE", "false"),
        ("IPS__WEB__SESSION_TTL", session_ttl),
        ("IPS__WEB__ASSETS_DIR", ASSETS),
    ])
    .await;
    (d, base)
}

/// One "browser": a cookie jar and no automatic redirects.
struct Visitor {
    http: reqwest::Client,
    base: String,
    jar: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first `name="csrf"` hidden input.
    fn csrf(&self) -> String {
        self.body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a form token on the page")
            .to_owned()
    }
}

impl Visitor {
    fn new(base: &str) -> Visitor {
        Visitor {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            base: base.to_owned(),
            jar: BTreeMap::new(),
        }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let r = req
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("request to the daemon");
        for c in r.headers().get_all(SET_COOKIE) {
            let text = c.to_str().unwrap_or("");
            let (name, value) = text
                .split(';')
                .next()
                .and_then(|p| p.split_once('='))
                .expect("name=value");
            if text.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap_or_default(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(self.url(path));
        self.send(req).await
    }

    /// A form post from this service's own pages (same Origin).
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self
            .http
            .post(self.url(path))
            .header(ORIGIN, self.base.clone())
            .header(CONTENT_TYPE, FORM)
            .body(encode(form));
        self.send(req).await
    }

    /// Signs `user` in from `path`: redirected to sign-in, to the provider,
    /// back to the callback, and to `path` again. Returns the callback URL.
    async fn sign_in(&mut self, oidc: &OidcProvider, user: &str, path: &str) -> String {
        let to_sign_in = self.get(path).await;
        assert_eq!(to_sign_in.status, 303, "{path} without a session");
        let to_provider = self.get(to_sign_in.location()).await;
        assert_eq!(to_provider.status, 303, "{}", to_provider.body);
        assert!(
            to_provider.location().starts_with(&oidc.issuer),
            "sign-in goes to the provider: {}",
            to_provider.location()
        );
        assert!(
            to_provider
                .location()
                .contains("code_challenge_method=S256")
        );
        let callback = oidc
            .authorize_without_browser(to_provider.location(), user)
            .await;
        let back = self.get(&callback).await;
        assert_eq!(back.status, 303, "callback: {}", back.body);
        assert_eq!(back.location(), path);
        assert!(self.jar.contains_key("ips-session"), "{:?}", self.jar);
        callback
    }
}

#[tokio::test]
async fn sign_in_roles_csrf_and_sign_out() {
    let oidc = OidcProvider::start(&OidcProvider::example_users());
    let (d, base) = daemon(&oidc.issuer, "8h").await;
    let mut alice = Visitor::new(&base);

    // Not signed in: a page sends you to sign-in, keeping where you were going.
    let first = alice.get("/caseload").await;
    assert_eq!(first.status, 303);
    assert_eq!(first.location(), "/auth/sign-in?return_to=%2Fcaseload");

    // Sign in through the provider; the caseload shows who is signed in.
    let callback = alice.sign_in(&oidc, "alice", "/caseload").await;
    let page = alice.get("/caseload").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Alice Specialist"), "{}", page.body);
    assert!(
        page.body
            .contains("<main class=\"nhsuk-main-wrapper\" id=\"maincontent\">")
    );
    assert!(
        !page.body.contains("href=\"/reports\""),
        "no team-lead links for a specialist"
    );
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains(&format!("form-action 'self' {}", oidc.issuer)),
        "{csp}"
    );
    let home = alice.get("/").await;
    assert_eq!((home.status, home.location()), (303, "/caseload"));

    // The callback cannot be replayed: the pending sign-in was used once.
    let mut replay = Visitor::new(&base);
    let replayed = replay.get(&callback).await;
    assert_eq!(replayed.status, 400, "{}", replayed.body);
    assert!(!replay.jar.contains_key("ips-session"));

    // A specialist may not open team-lead pages.
    let reports = alice.get("/reports").await;
    assert_eq!(reports.status, 403);
    assert!(
        reports
            .body
            .contains("You do not have permission to see this page"),
        "{}",
        reports.body
    );

    // A form without the session's token, with a wrong one, or from another origin, is refused.
    let csrf = page.csrf();
    for (form, origin) in [
        (vec![], base.as_str()),
        (vec![("csrf", "not-the-token")], base.as_str()),
        (vec![("csrf", csrf.as_str())], "http://evil.example"),
    ] {
        let req = alice
            .http
            .post(alice.url("/auth/sign-out"))
            .header(ORIGIN, origin)
            .header(CONTENT_TYPE, FORM)
            .body(encode(&form));
        let refused = alice.send(req).await;
        assert_eq!(refused.status, 403, "{form:?} from {origin}");
        assert!(
            refused
                .body
                .contains("This form has expired or was not sent from this service"),
            "{}",
            refused.body
        );
    }
    assert_eq!(alice.get("/caseload").await.status, 200, "still signed in");

    // Sign out with the token: the session ends, and the old cookie no longer works.
    let old_cookie = alice.cookie_header();
    let out = alice.post("/auth/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location()), (303, "/auth/signed-out"));
    assert!(!alice.jar.contains_key("ips-session"), "cookie cleared");
    let bye = alice.get("/auth/signed-out").await;
    assert!(bye.body.contains("You have signed out"), "{}", bye.body);
    let stale = alice
        .http
        .get(alice.url("/caseload"))
        .header(COOKIE, old_cookie)
        .send()
        .await
        .expect("request");
    assert_eq!(stale.status(), 303, "the old session cookie is dead");

    // A team lead starts at the team's page and may open the reports.
    let mut lena = Visitor::new(&base);
    lena.sign_in(&oidc, "lena", "/reports").await;
    let reports = lena.get("/reports").await;
    assert_eq!(reports.status, 200, "{}", reports.body);
    assert!(reports.body.contains("Lena Lead") && reports.body.contains("href=\"/team\""));
    let home = lena.get("/").await;
    assert_eq!((home.status, home.location()), (303, "/team"));

    // No session token, code or secret in the daemon's logs.
    let logs = d.logs();
    let code = url::Url::parse(&callback)
        .expect("callback URL")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    for secret in [code.as_str(), &csrf, "ips-bridge-local-secret"] {
        assert!(!logs.contains(secret), "the logs hold a secret");
    }
    for token in lena.jar.values() {
        assert!(!logs.contains(token.as_str()), "the logs hold a cookie");
    }
}

#[tokio::test]
async fn a_tampered_state_is_refused() {
    let oidc = OidcProvider::start(&OidcProvider::example_users());
    let (d, base) = daemon(&oidc.issuer, "8h").await;
    let mut v = Visitor::new(&base);
    let to_provider = v.get("/auth/sign-in?return_to=/caseload").await;
    assert_eq!(to_provider.status, 303);
    let callback = oidc
        .authorize_without_browser(to_provider.location(), "alice")
        .await;
    let mut url = url::Url::parse(&callback).expect("callback URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                format!("{v}x")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let refused = v.get(url.as_str()).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("Sign-in could not be completed"),
        "{}",
        refused.body
    );
    assert!(!v.jar.contains_key("ips-session"));
    assert!(
        d.logs().contains("state does not match"),
        "refused for its state"
    );
    // Nor does the untampered callback work afterwards: the attempt used the sign-in up.
    let after = v.get(&callback).await;
    assert_eq!(after.status, 400);
    assert_eq!(v.get("/caseload").await.status, 303, "not signed in");
}

#[tokio::test]
async fn an_expired_or_absent_session_goes_to_sign_in() {
    let oidc = OidcProvider::start(&OidcProvider::example_users());
    let (_d, base) = daemon(&oidc.issuer, "3s").await;
    let mut v = Visitor::new(&base);
    v.sign_in(&oidc, "bob", "/caseload").await;
    assert_eq!(v.get("/caseload").await.status, 200);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let expired = v.get("/caseload?tab=all").await;
    assert_eq!(
        expired.status, 303,
        "an expired session ends on the server too"
    );
    assert_eq!(
        expired.location(),
        "/auth/sign-in?return_to=%2Fcaseload%3Ftab%3Dall"
    );

    // No cookie at all: pages redirect to sign-in.
    let mut stranger = Visitor::new(&base);
    let r = stranger.get("/reports").await;
    assert_eq!(
        (r.status, r.location()),
        (303, "/auth/sign-in?return_to=%2Freports")
    );

    // The frontend's files, and a 404 page that is HTML for pages only.
    let css = stranger.get("/static/nhsuk-frontend.min.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
    let icon = stranger
        .get("/assets/images/nhsuk-icon-arrow-down.svg")
        .await;
    assert_eq!(icon.status, 200);
    let module = stranger.get("/static/ips-bridge.mjs").await;
    assert!(module.header("content-type").starts_with("text/javascript"));
    let missing = stranger.get("/no-such-page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Page not found"));
    assert!(stranger.get("/api/no-such-route").await.body.is_empty());
}

#[tokio::test]
async fn a_provider_that_is_down_does_not_stop_the_bridge() {
    // Nothing listens on port 9 (discard) here: discovery fails at start.
    let (d, base) = daemon("http://127.0.0.1:9", "8h").await;
    let mut v = Visitor::new(&base);
    let r = v.get("/auth/sign-in").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("sign-in is not available"), "{}", r.body);
    assert_eq!(v.get("/healthz").await.status, 200);
    assert!(
        d.logs().contains("discovery document"),
        "the failure is logged"
    );
}
