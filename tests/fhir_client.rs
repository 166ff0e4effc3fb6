//! The FHIR client against the real sandbox: conditional create, If-Match,
//! retries with Retry-After. wiremock only for a server shape the sandbox
//! does not show (a matched conditional create with no body and no Location).

mod common;

use common::*;
use ips_bridge::fhir::{FhirClient, FhirError};
use serde_json::json;
use std::time::{Duration, Instant};

fn client(url: &str) -> FhirClient {
    let s = settings("sqlite::memory:", url, &Names::new(), &[]);
    FhirClient::new(&s.fhir).unwrap()
}

#[tokio::test]
async fn conditional_create_twice_makes_one_resource() {
    let sb = Sandbox::start();
    let c = client(&sb.url);
    let value = uid();
    let task = json!({"resourceType": "Task", "status": "requested", "intent": "order",
        "identifier": [{"system": "https://ips-bridge.test/Id", "value": value}]});
    let first = c
        .create_conditional(&task, "https://ips-bridge.test/Id", &value)
        .await
        .unwrap();
    let second = c
        .create_conditional(&task, "https://ips-bridge.test/Id", &value)
        .await
        .unwrap();
    assert!(first.created);
    assert!(!second.created, "the second create must find the first");
    assert_eq!(first.id, second.id);
    let found = sb
        .search_all(&format!(
            "Task?identifier=https://ips-bridge.test/Id%7C{value}"
        ))
        .await;
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn stale_version_update_is_a_typed_conflict() {
    let sb = Sandbox::start();
    let c = client(&sb.url);
    let created = sb.create(&json!({"resourceType": "Flag", "status": "active", "code": {"text": "x"}, "subject": {"reference": "Patient/p"}})).await;
    let v1 = created["meta"]["versionId"].as_str().unwrap().to_owned();
    let mut changed = created.clone();
    changed["status"] = json!("inactive");
    let w = c.update_if_match(&changed, &v1).await.unwrap();
    assert_ne!(
        w.version.as_deref(),
        Some(v1.as_str()),
        "update makes a new version"
    );
    let err = c.update_if_match(&changed, &v1).await.unwrap_err();
    assert!(matches!(err, FhirError::VersionConflict { .. }), "{err:?}");
}

#[tokio::test]
async fn get_is_retried_after_503s_honouring_retry_after() {
    let sb = Sandbox::start();
    let c = client(&sb.url);
    let p = sb.create(&json!({"resourceType": "Patient"})).await;
    let before = sb.stats().await["requests"].as_u64().unwrap();
    sb.fault(json!({"status": 503, "count": 2, "retryAfter": 1}))
        .await;
    let started = Instant::now();
    let got = c
        .read(&format!("Patient/{}", p["id"].as_str().unwrap()))
        .await
        .unwrap();
    assert!(got.is_some());
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "two Retry-After: 1 waits, took {:?}",
        started.elapsed()
    );
    let after = sb.stats().await["requests"].as_u64().unwrap();
    assert_eq!(after - before, 3, "two refused attempts and one success");
}

#[tokio::test]
async fn throttling_429_is_retried_and_4xx_is_not() {
    let sb = Sandbox::start();
    let c = client(&sb.url);
    sb.fault(json!({"status": 429, "count": 1, "retryAfter": 0}))
        .await;
    assert!(c.get("Patient?_count=1").await.is_ok());
    sb.fault(json!({"status": 400, "count": 1})).await;
    let before = sb.stats().await["requests"].as_u64().unwrap();
    let err = c.get("Patient?_count=1").await.unwrap_err();
    assert!(
        matches!(err, FhirError::Status { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(
        sb.stats().await["requests"].as_u64().unwrap() - before,
        1,
        "a 400 is not retried"
    );
}

#[tokio::test]
async fn matched_conditional_create_without_body_or_location_is_resolved_by_search() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/fhir/Task"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/Task"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": {"resourceType": "Task", "id": "existing-1", "meta": {"versionId": "4"}}}]})))
        .mount(&server)
        .await;
    let c = client(&format!("{}/fhir", server.uri()));
    let w = c
        .create_conditional(&json!({"resourceType": "Task"}), "s", "v")
        .await
        .unwrap();
    assert_eq!(
        (w.id.as_str(), w.version.as_deref(), w.created),
        ("existing-1", Some("4"), false)
    );
}

/// OAuth2 client credentials: one token fetched and reused, a new one when the
/// server rejects it. (The sandbox has no auth, so wiremock plays both roles.)
#[tokio::test]
async fn client_credentials_token_is_cached_and_refreshed_on_401() {
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=bridge"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "tok-1", "expires_in": 3600, "token_type": "bearer"}),
        ))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/Patient/revoked"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/Patient/1"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"resourceType": "Patient", "id": "1"})),
        )
        .expect(3)
        .mount(&server)
        .await;
    let token_url = format!("{}/token", server.uri());
    let s = settings(
        "sqlite::memory:",
        &format!("{}/fhir", server.uri()),
        &Names::new(),
        &[
            ("IPS__FHIR__AUTH__KIND", "client-credentials"),
            ("IPS__FHIR__AUTH__TOKEN_URL", token_url.as_str()),
            ("IPS__FHIR__AUTH__CLIENT_ID", "bridge"),
            ("IPS__FHIR__AUTH__CLIENT_SECRET", "s3cret"),
        ],
    );
    let c = FhirClient::new(&s.fhir).unwrap();
    for _ in 0..3 {
        assert!(c.read("Patient/1").await.unwrap().is_some());
    }
    // A 401 drops the cached token: one more token request, then the error surfaces.
    let err = c.read("Patient/revoked").await.unwrap_err();
    assert!(
        matches!(err, FhirError::Status { status: 401, .. }),
        "{err:?}"
    );
}
