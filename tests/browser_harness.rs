//! The staff pages' browser-test harness works: headless Chromium through chromedriver,
//! axe-core really runs, screenshots are PNG files, and the local OIDC provider's sign-in
//! form signs a user in (authorization code + PKCE) in the browser and without one.

mod common;

use common::browser::{Browser, sign_in};
use common::oidc::{OidcProvider, jwt_claims, pkce_pair};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A response of the tiny site: status, extra headers, HTML body.
type Reply = (u16, Vec<(&'static str, String)>, String);

/// A tiny HTTP/1.1 site on 127.0.0.1 (GET only, one request per connection), answering
/// each request's path-and-query with `route`. Stops when the test's runtime ends.
fn serve(listener: TcpListener, route: impl Fn(&str) -> Reply + Send + Sync + 'static) {
    let route = Arc::new(route);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let route = route.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, headers, body) = route(&target);
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
}

fn html(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><main><h1>{title}</h1>{main}</main></body></html>"
    )
}

fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_runs_and_screenshots_are_png_in_headless_chromium() {
    let provider = OidcProvider::start(&OidcProvider::example_users());
    let browser = Browser::start().await;

    // The provider's discovery document, in the browser.
    browser.goto(&provider.discovery_url()).await;
    let source = browser.source().await;
    assert!(
        source.contains("authorization_endpoint") && source.contains(&provider.issuer),
        "discovery document: {source}"
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    serve(listener, |path| match path {
        "/good" => (
            200,
            vec![],
            html(
                "A labelled form",
                "<form method=\"post\" action=\"/good\"><label for=\"q\">Username</label>\
                 <input id=\"q\" name=\"q\" type=\"text\"><button type=\"submit\">Search</button></form>",
            ),
        ),
        "/bad" => (
            200,
            vec![],
            html(
                "An image without alt",
                "<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\" width=\"20\" height=\"20\">\
                 <input type=\"text\">",
            ),
        ),
        _ => (404, vec![], html("Not found", "")),
    });

    browser.goto(&format!("{base}/good")).await;
    let good = browser.axe().await;
    assert!(
        good.iter().all(|v| !v.is_serious()),
        "a plain labelled form should have no serious violations: {good:#?}"
    );
    browser.assert_no_serious_axe("labelled form").await;

    browser.goto(&format!("{base}/bad")).await;
    let bad = browser.axe().await;
    let image_alt = bad
        .iter()
        .find(|v| v.id == "image-alt")
        .unwrap_or_else(|| panic!("axe did not report the image without alt: {bad:#?}"));
    assert!(image_alt.is_serious(), "{image_alt}");
    assert_eq!(image_alt.targets, vec!["img".to_owned()]);
    assert!(
        bad.iter().any(|v| v.id == "label" && v.is_serious()),
        "the unlabelled input: {bad:#?}"
    );
    let failed = std::panic::AssertUnwindSafe(browser.assert_no_serious_axe("bad page"));
    let panic = futures_util::FutureExt::catch_unwind(failed)
        .await
        .expect_err("assert_no_serious_axe must fail on the bad page");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("image-alt"), "{message}");

    let shot = browser.screenshot("browser-harness-bad-page").await;
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
        "{} is not a PNG",
        shot.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_sign_in_form_gives_a_code_with_pkce_in_the_browser() {
    let provider = Arc::new(OidcProvider::start(&OidcProvider::example_users()));
    let browser = Browser::start().await;

    // A stand-in for the daemon: /auth/sign-in redirects to the provider with fresh PKCE
    // parameters (the verifier kept by state), /auth/callback shows what came back.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let redirect_uri = format!("{base}/auth/callback");
    let verifiers: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    {
        let (provider, redirect_uri, verifiers) =
            (provider.clone(), redirect_uri.clone(), verifiers.clone());
        serve(listener, move |path| {
            if path == "/auth/sign-in" {
                let (verifier, challenge) = pkce_pair();
                let state = common::uid();
                verifiers.lock().unwrap().insert(state.clone(), verifier);
                let to = provider.authorize_url(&redirect_uri, &state, &challenge);
                (302, vec![("location", to)], String::new())
            } else if path.starts_with("/auth/callback?") {
                (
                    200,
                    vec![],
                    html("Callback", "<p>The provider sent the browser back.</p>"),
                )
            } else {
                (404, vec![], html("Not found", ""))
            }
        });
    }

    // 1. An authorization request built by hand, through the form in the browser.
    let (verifier, challenge) = pkce_pair();
    browser
        .goto(&provider.authorize_url(&redirect_uri, "state-1", &challenge))
        .await;
    assert_eq!(browser.text("label[for=login]").await, "Username");
    browser.assert_no_serious_axe("provider sign-in form").await;
    browser.fill("#login", "mallory").await;
    browser.click("#sign-in").await;
    assert!(
        browser.text("#login-error").await.contains("No user named"),
        "unknown user: {}",
        browser.source().await
    );
    browser
        .assert_no_serious_axe("provider sign-in form with an error")
        .await;
    browser
        .screenshot("browser-harness-provider-sign-in-error")
        .await;
    browser.fill("#login", "alice").await;
    browser.click("#sign-in").await;
    let landed = browser.wait_for_url_prefix(&redirect_uri).await;
    let code = query_param(&landed, "code").unwrap_or_else(|| panic!("no code in {landed}"));
    assert_eq!(query_param(&landed, "state").as_deref(), Some("state-1"));

    let (status, tokens) = provider
        .exchange_code(&code, &redirect_uri, &verifier)
        .await;
    assert_eq!(status, 200, "{tokens}");
    let id = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["roles"], json!(["specialist"]));
    assert_eq!(id["name"], "Alice Specialist");

    // 2. The sign_in helper, in the same browser, as someone else, with changed roles.
    provider
        .set_user(
            "lena",
            &json!({"name": "Lena Lead", "roles": ["team-lead", "admin"]}),
        )
        .await;
    let landed = sign_in(&browser, &base, "lena").await;
    assert!(landed.as_str().starts_with(&redirect_uri), "{landed}");
    let state = query_param(&landed, "state").expect("state");
    let verifier = verifiers.lock().unwrap()[&state].clone();
    let code = query_param(&landed, "code").expect("code");
    let (status, tokens) = provider
        .exchange_code(&code, &redirect_uri, &verifier)
        .await;
    assert_eq!(status, 200, "{tokens}");
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], "lena");
    assert_eq!(id["roles"], json!(["team-lead", "admin"]));

    // 3. Without a browser, and a wrong code_verifier is refused.
    let start = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}/auth/sign-in"))
        .send()
        .await
        .unwrap();
    let to_provider = start.headers()["location"].to_str().unwrap().to_owned();
    let back = provider
        .authorize_without_browser(&to_provider, "bob")
        .await;
    let back = url::Url::parse(&back).unwrap();
    assert!(back.as_str().starts_with(&redirect_uri), "{back}");
    let code = query_param(&back, "code").expect("code");
    let (wrong, _) = pkce_pair();
    let (status, body) = provider.exchange_code(&code, &redirect_uri, &wrong).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}
