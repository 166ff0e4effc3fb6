//! The poller reads Appointments with a cursor of their own, beside the
//! ServiceRequests. Against a stub FHIR server (wiremock) and an SQLite
//! store: no broker, no sandbox process.

mod common;

use common::*;
use ips_bridge::config::PolledResource;
use ips_bridge::engine::{Context, Engine, SystemClock};
use ips_bridge::fhir::FhirClient;
use ips_bridge::fhir::poller::{CURSOR_KEY, Poller};
use ips_bridge::ingest::Reading;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn searchset(resources: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "searchset",
        "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
}

fn versioned(mut r: Value, last_updated: &str) -> Value {
    r["meta"] = json!({"versionId": "1", "lastUpdated": last_updated});
    r
}

#[tokio::test]
async fn appointments_are_polled_with_their_own_cursor_and_read_once() {
    let fhir = MockServer::start().await;
    let nhs = fixtures::nhs_number(4242);
    let mut by_reference = fixtures::appointment("ap-3", &nhs, "booked");
    // Only a literal reference to the Patient: the poller fetches it.
    by_reference["participant"][0]["actor"] = json!({"reference": "Patient/p3"});
    let appointments = vec![
        versioned(
            fixtures::appointment("ap-1", &nhs, "noshow"),
            "2026-11-20T09:00:00Z",
        ),
        versioned(
            fixtures::appointment("ap-2", &nhs, "fulfilled"),
            "2026-11-20T09:30:00Z",
        ),
        versioned(by_reference, "2026-11-20T10:00:00Z"),
    ];
    Mock::given(method("GET"))
        .and(path("/Appointment"))
        .respond_with(ResponseTemplate::new(200).set_body_json(searchset(appointments)))
        .mount(&fhir)
        .await;
    Mock::given(method("GET"))
        .and(path("/ServiceRequest"))
        .respond_with(ResponseTemplate::new(200).set_body_json(searchset(vec![])))
        .mount(&fhir)
        .await;
    Mock::given(method("GET"))
        .and(path("/Patient/p3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "resourceType": "Patient", "id": "p3",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}]})))
        .expect(2)
        .mount(&fhir)
        .await;

    let (_dir, db) = temp_sqlite_url();
    let s = settings(&db, &fhir.uri(), &Names::new(), &[]);
    assert_eq!(
        s.poller.resources,
        [PolledResource::ServiceRequest, PolledResource::Appointment],
        "both are polled by default"
    );
    let store = ips_bridge::store::connect(&s.store).await.unwrap();
    store.migrate().await.unwrap();
    let key = s.patient_key().unwrap().unwrap();
    let engine = Engine::new(
        store.clone(),
        Context::from_settings(&s, key),
        Arc::new(SystemClock),
    );
    let poller = Poller {
        engine,
        reading: Arc::new(Reading::from_settings(&s)),
        fhir: Arc::new(FhirClient::new(&s.fhir).unwrap()),
        interval: Duration::from_secs(60),
        overlap: s.poller.overlap,
        page_size: s.poller.page_size,
        resources: s.poller.resources.clone(),
        wake: Arc::new(Notify::new()),
    };

    let first = poller.poll_once().await.unwrap();
    assert_eq!((first.resources, first.new), (3, 3), "{first:?}");
    assert_eq!(
        store
            .cursor(PolledResource::Appointment.cursor_key())
            .await
            .unwrap()
            .as_deref(),
        Some("2026-11-20T10:00:00Z")
    );
    assert_eq!(
        store.cursor(CURSOR_KEY).await.unwrap(),
        None,
        "the ServiceRequests' cursor does not move with Appointments"
    );

    // The second poll re-reads from the cursor less the overlap: nothing new.
    let second = poller.poll_once().await.unwrap();
    assert_eq!((second.resources, second.new), (3, 0), "{second:?}");
    let appointment_queries: Vec<String> = fhir
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/Appointment")
        .map(|r| r.url.query().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(appointment_queries.len(), 2);
    assert!(!appointment_queries[0].contains("_lastUpdated=ge"));
    assert!(
        appointment_queries[1].contains("_lastUpdated=ge2026-11-20T09:58:00Z"),
        "{}",
        appointment_queries[1]
    );
    assert!(appointment_queries[1].contains("_sort=_lastUpdated"));
    assert_eq!(
        effects::inbox_count(&db, "fhir-poll").await,
        3,
        "deduplicated on Appointment/{{id}}/_history/{{version}}"
    );
}
