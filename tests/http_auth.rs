//! Authentication is a layer on the router: every `/api` route answers 401
//! with a JSON error before anything else happens (no extractor runs, so a
//! bad query or body cannot answer 400 to a caller without a token), and the
//! FHIR rest-hook likewise with an OperationOutcome.

mod common;

use common::*;
use serde_json::Value;

/// Every API route as it exists today, including requests whose query or
/// body is malformed: without the token they must still be refused as 401.
const API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/cases"),
    ("GET", "/api/cases?limit=lots"),
    ("GET", "/api/cases/some-case"),
    ("GET", "/api/referrals"),
    ("GET", "/api/referrals?status=waiting&limit=lots"),
    ("GET", "/api/referrals/some-referral"),
    ("POST", "/api/referrals/some-referral/decision"),
];

async fn call(method: &str, url: &str, auth: Option<&str>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = match method {
        "POST" => http
            .post(url)
            .header("content-type", "application/json")
            .body("{not json"),
        _ => http.get(url),
    };
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_api_route_refuses_a_missing_or_wrong_token_with_a_json_401() {
    let b = Bridge::start(&[]).await;
    let base = &b.api.base;
    let wrong = [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(TOKEN.to_owned()),
        Some(format!("Basic {TOKEN}")),
    ];
    for (method, path) in API_ROUTES {
        for auth in &wrong {
            let (status, body) = call(method, &format!("{base}{path}"), auth.as_deref()).await;
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {body}");
            assert_eq!(
                body["error"]["code"], "unauthorized",
                "{method} {path} with {auth:?}: {body}"
            );
        }
    }
    // With the token the same requests get past the layer (so the 401s above
    // came from authentication, not from the route).
    let good = format!("Bearer {TOKEN}");
    let (status, _) = call("GET", &format!("{base}/api/cases"), Some(&good)).await;
    assert_eq!(status, 200);
    let (status, _) = call("GET", &format!("{base}/api/cases?limit=lots"), Some(&good)).await;
    assert_eq!(
        status, 400,
        "a bad query is answered only after authentication"
    );
    let (status, _) = call("GET", &format!("{base}/api/referrals/nope"), Some(&good)).await;
    assert_eq!(status, 404);

    let hook = format!("{base}/fhir/notify");
    for auth in [None, Some("Bearer wrong"), Some("Bearer test-api-token")] {
        let (status, body) = call("POST", &hook, auth).await;
        assert_eq!(status, 401, "rest-hook with {auth:?}");
        assert_eq!(body["resourceType"], "OperationOutcome");
    }
    let (status, _) = call("POST", &hook, Some("Bearer hook-secret")).await;
    assert_eq!(status, 202);
    b.stop().await;
}

#[tokio::test]
async fn api_without_a_configured_token_is_disabled() {
    let b = Bridge::start(&[("IPS__HTTP__API_TOKEN", "")]).await;
    let (status, body) = call("GET", &format!("{}/api/cases", b.api.base), Some("Bearer ")).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("API disabled"),
        "{body}"
    );
    b.stop().await;
}

/// A refused body is described by path and kind, never by serde's message,
/// which would quote the value (here an NHS number in the wrong field).
#[tokio::test]
async fn a_bad_decision_body_is_described_without_its_values() {
    let b = Bridge::start(&[]).await;
    let url = format!("{}/api/referrals/some-referral/decision", b.api.base);
    let bodies = [
        r#"{"outcome": 9912003888}"#,
        r#"{"outcome": "accepted", "decided_by": ["9912003888"]}"#,
        r#"{"outcome": "accepted", "9912003888": 1}"#,
        r#"{"outcome": "9912003888"#,
    ];
    for body in bodies {
        let r = reqwest::Client::new()
            .post(&url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid-body", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(!message.contains("9912003888"), "{body} -> {message}");
    }
    b.stop().await;
}
