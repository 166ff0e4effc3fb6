//! Documents to GP practices over MESH, against NHS England's MESH sandbox
//! (`mesh-sandbox`, memory store, full NHSMESH auth), RabbitMQ and the real
//! binary. The tests play the GP practice's system: they read what arrived
//! in the practice's mailbox through the sandbox with a MESH client of their
//! own, and answer with ITK3 acknowledgements built from NHS England's
//! published response examples. Effects are counted where they land: in
//! the mailbox, on the events exchange, in the sandbox's access log.

mod common;

use base64::Engine as _;
use common::fixtures::*;
use common::mesh::{Mailbox, MeshSandbox, X26ABC1, X26ABC2};
use common::mesh_flow::*;
use common::mesh_proxy::MeshProxy;
use common::*;
use serde_json::Value;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(2500);
const ACK_WORKFLOW: &str = "GPCONNECT_SEND_DOCUMENT_ACK";

/// The must-shows 1 and 2: a completed VP for a patient whose practice is
/// routed to MESH is one message in the practice's mailbox, parsing as the
/// Send Document Bundle with the rendered document, NHS number, practice
/// and author; the practice's infrastructure and business acknowledgements
/// make it accepted with one `document.delivered`, however often they come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vp_reaches_the_practice_mailbox_and_its_acks_make_it_accepted_once() {
    let mesh = MeshSandbox::start().await;
    let d = bridge(&mesh.url, &[]).await;
    let delivered = d.p.watch(&d.n.events, "document.delivered").await;
    let nhs = nhs_number(6100);
    let case = open_case(&d, &nhs).await;
    let doc = complete_vp(&d, &case).await;

    let ids = mesh.wait_for_inbox(X26ABC2, 1, WAIT).await;
    assert_eq!(ids.len(), 1);
    let (headers, body) = mesh.download(X26ABC2, &ids[0]).await;
    assert_eq!(headers["mex-workflowid"], "GPCONNECT_SEND_DOCUMENT");
    assert_eq!(headers["mex-from"], X26ABC1.id);
    assert_eq!(headers["mex-localid"], format!("ips-doc-{doc}"));
    assert!(
        !headers["mex-subject"].contains(&nhs),
        "the subject names no patient"
    );
    // FHIR STU3 XML, as ITK3 receivers must take it.
    let text = String::from_utf8(body).expect("UTF-8");
    let x = roxmltree::Document::parse(&text).expect("the payload is well-formed XML");
    assert_eq!(x.root_element().tag_name().name(), "Bundle");
    assert_eq!(
        x.root_element().tag_name().namespace(),
        Some("http://hl7.org/fhir")
    );
    let one = |resource: &str, path: &[&str]| -> String {
        let all = values(&x, resource, path);
        assert!(!all.is_empty(), "no {resource}/{}", path.join("/"));
        all[0].clone()
    };
    assert_eq!(one("Bundle", &["type"]), "message");
    assert_eq!(
        one("Bundle", &["meta", "profile"]),
        "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Message-Bundle-1"
    );
    assert_eq!(values(&x, "Bundle", &["type"]), ["message", "document"]);
    assert_eq!(one("MessageHeader", &["event", "code"]), "ITK007C");
    assert_eq!(one("MessageHeader", &["source", "endpoint"]), X26ABC1.id);
    assert_eq!(one("Patient", &["identifier", "value"]), nhs);
    assert_eq!(one("Patient", &["birthDate"]), "1990-01-01");
    assert_eq!(one("Practitioner", &["name", "text"]), "Sam Specialist");
    let odss = values(&x, "Organization", &["identifier", "value"]);
    assert!(odss.iter().any(|o| o == PRACTICE), "{odss:?}");
    assert_eq!(one("Binary", &["contentType"]), "text/html");
    let xhtml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(one("Binary", &["content"]))
            .unwrap(),
    )
    .unwrap();
    assert!(xhtml.contains("Food hygiene level 2."), "{xhtml}");
    assert!(
        xhtml.contains(&nhs[..3]),
        "the NHS number is in the document"
    );
    let message_id = one("MessageHeader", &["id"]);
    mesh.acknowledge(X26ABC2, &ids[0]).await;

    // The practice's system answers: infrastructure ack, business ack, and
    // the business ack again (a practice system resending).
    for code in ["20013", "30001", "30001"] {
        mesh.send(
            X26ABC2,
            X26ABC1,
            ACK_WORKFLOW,
            &itk_response(code, &message_id),
            &[("mex-LocalID", PRACTICE)],
        )
        .await;
        if code == "20013" {
            delivery_in(&d, &case, "delivered").await;
        }
    }
    let v = delivery_in(&d, &case, "accepted").await;
    assert_eq!(v["code"], "30001");
    assert_eq!(v["acknowledgement"], "business");
    assert_eq!(v["recipient_ods"], PRACTICE);
    assert_eq!(v["send"]["status"], "done");
    // The bridge took every acknowledgement off its inbox.
    eventually(WAIT, "the bridge's inbox emptied", || async {
        mesh.inbox(X26ABC1).await.is_empty().then_some(())
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let events = d.p.drain(&delivered, 1, WAIT).await;
    assert_eq!(events.len(), 1, "document.delivered once");
    let e: Value = serde_json::from_slice(&events[0].delivery.data).unwrap();
    assert_eq!(e["document_id"], doc.as_str());
    assert!(
        !e.to_string().contains(&nhs),
        "no patient data in the event"
    );
    assert!(d.p.drain(&delivered, 1, QUIET).await.is_empty());
    // The daemon said what it did, and nothing about the patient.
    let logs = d.logs();
    assert!(logs.contains("MESH handshake done"), "{logs}");
    for secret in [nhs.as_str(), "Jo Example", "1990-01-01", "Food hygiene"] {
        assert!(!logs.contains(secret), "{secret:?} in the daemon's log");
    }
    // Routed to MESH alone: nothing of it on the FHIR server.
    assert!(d.sb.search_all("DocumentReference").await.is_empty());
    assert!(d.sb.search_all("Binary").await.is_empty());
    // Still one message ever sent to the practice.
    assert_eq!(mesh.requests("POST", "/messageexchange/X26ABC1/outbox"), 1);
}

/// A negative business acknowledgement: `document.rejected` with its code,
/// and the case API shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_ack_rejects_the_document_with_its_code() {
    let mesh = MeshSandbox::start().await;
    let d = bridge(&mesh.url, &[]).await;
    let rejected = d.p.watch(&d.n.events, "document.rejected").await;
    let case = open_case(&d, &nhs_number(6200)).await;
    let doc = post_note(&d, &case, "n-neg").await;
    let ids = mesh.wait_for_inbox(X26ABC2, 1, WAIT).await;
    let (_, body) = mesh.download(X26ABC2, &ids[0]).await;
    let text = String::from_utf8(body).unwrap();
    let x = roxmltree::Document::parse(&text).unwrap();
    let message_id = values(&x, "MessageHeader", &["id"]).remove(0);
    mesh.send(
        X26ABC2,
        X26ABC1,
        ACK_WORKFLOW,
        &itk_response("30003", &message_id),
        &[],
    )
    .await;
    let v = delivery_in(&d, &case, "rejected").await;
    assert_eq!(v["code"], "30003");
    assert_eq!(v["text"], "Patient no longer at this clinical setting");
    // The case itself says so (GET /api/cases/{id}).
    let (_, whole) = d.api.get(&format!("/api/cases/{case}")).await;
    assert_eq!(whole["documents"]["deliveries"][0]["state"], "rejected");
    assert_eq!(whole["documents"]["deliveries"][0]["code"], "30003");
    let events = d.p.drain(&rejected, 1, WAIT).await;
    assert_eq!(events.len(), 1);
    let e: Value = serde_json::from_slice(&events[0].delivery.data).unwrap();
    assert_eq!(
        (e["document_id"].as_str(), e["code"].as_str()),
        (Some(doc.as_str()), Some("30003"))
    );
    // A late positive ack changes nothing.
    mesh.send(
        X26ABC2,
        X26ABC1,
        ACK_WORKFLOW,
        &itk_response("30001", &message_id),
        &[],
    )
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(delivery(&d, &case).await["state"], "rejected");
    // An ack for a message the bridge never sent is kept as a dead letter.
    mesh.send(
        X26ABC2,
        X26ABC1,
        ACK_WORKFLOW,
        &itk_response("30001", "00000000-0000-4000-8000-000000000000"),
        &[],
    )
    .await;
    eventually(WAIT, "the stray ack dead-lettered", || async {
        let out = cli(&d.n, &d.db, &["dlq", "list"]).await;
        out.contains("unknown-document").then_some(())
    })
    .await;
    eventually(WAIT, "the bridge's inbox emptied", || async {
        mesh.inbox(X26ABC1).await.is_empty().then_some(())
    })
    .await;
}

/// SIGKILL after MESH took the message and before the bridge recorded it:
/// after the restart the send is found by tracking, not repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_the_send_before_it_is_recorded_leaves_one_message() {
    let mesh = MeshSandbox::start().await;
    let proxy = MeshProxy::start(&mesh.url, Duration::from_secs(30)).await;
    let mut d = bridge(&proxy.url, &[("IPS__OUTBOX__LEASE", "2s")]).await;
    let case = open_case(&d, &nhs_number(6300)).await;
    proxy.hold_sends(true);
    let doc = post_note(&d, &case, "n-kill").await;
    // The practice has it; the bridge is still waiting for MESH's reply.
    let ids = mesh.wait_for_inbox(X26ABC2, 1, WAIT).await;
    assert_eq!(ids.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(delivery(&d, &case).await["send"]["status"], "pending");
    d.sigkill();
    proxy.hold_sends(false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.restart().await;
    let v = send_in(&d, &case, "done").await;
    assert!(
        v["send"]["result"]
            .as_str()
            .unwrap()
            .contains("found by tracking"),
        "{v}"
    );
    tokio::time::sleep(QUIET).await;
    assert_eq!(mesh.inbox(X26ABC2).await.len(), 1, "still one message");
    assert_eq!(mesh.requests("POST", "/messageexchange/X26ABC1/outbox"), 1);
    assert_eq!(
        mesh.requests("GET", &format!("/outbox/tracking/ips-doc-{doc}")),
        2,
        "tracked before the send and again after the restart"
    );
}

/// MESH refusing for good (credentials, recipient, size): the send is
/// parked at once with the reason, in the case API and the metrics, and
/// never retried (the sandbox's access log counts the requests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_park_the_send_with_the_reason_and_no_retry_storm() {
    struct Case {
        extra: Vec<(&'static str, &'static str)>,
        reason: &'static str,
        tracks: usize,
        sends: usize,
    }
    let wrong = Mailbox {
        id: "X26ABC1",
        password: "wrong",
    };
    let cases = [
        Case {
            extra: vec![
                ("IPS__MESH__PASSWORD", wrong.password),
                ("IPS__MESH__AUTH_BACKOFF", "1h"),
            ],
            reason: "refused the bridge's credentials (HTTP 403",
            tracks: 1,
            sends: 0,
        },
        Case {
            extra: vec![("IPS__MESH__MAILBOXES__A81001", "X26ZZZ9")],
            reason: "does not know the recipient mailbox or it does not take this workflow (HTTP 417, error code 12)",
            tracks: 1,
            sends: 1,
        },
        Case {
            extra: vec![("IPS__MESH__MAX_MESSAGE_BYTES", "2000")],
            reason: "too large for MESH",
            tracks: 0,
            sends: 0,
        },
    ];
    for c in cases {
        let mesh = MeshSandbox::start().await;
        let d = bridge(&mesh.url, &c.extra).await;
        let case = open_case(&d, &nhs_number(6400)).await;
        let doc = post_note(&d, &case, "n-bad").await;
        let v = send_in(&d, &case, "failed").await;
        let error = v["send"]["error"].as_str().unwrap();
        assert!(error.contains(c.reason), "{error}");
        assert_eq!(v["send"]["attempts"], 1, "{v}");
        assert!(!error.contains(&doc), "{error}");
        let parked = d
            .counter("ips_outbox_parked_total", &[("kind", "mesh-send")])
            .await;
        assert_eq!(parked, 1.0);
        // No retry storm: the same count after a while.
        tokio::time::sleep(QUIET).await;
        let outbox = "/messageexchange/X26ABC1/outbox";
        let tracking = format!("/outbox/tracking/ips-doc-{doc}");
        assert_eq!(mesh.requests("GET", &tracking), c.tracks, "{}", c.reason);
        assert_eq!(mesh.requests("POST", outbox), c.sends, "{}", c.reason);
        if c.reason.contains("403") {
            // The inbox is not hammered either: one look, then the backoff.
            assert!(mesh.requests("GET", "/messageexchange/X26ABC1/inbox") <= 1);
        }
        assert_eq!(mesh.inbox(X26ABC2).await.len(), 0);
    }
}

/// No acknowledgement within `mesh.ack_within`: the delivery is
/// `unacknowledged`, with one `document.unacknowledged`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_practice_makes_the_delivery_unacknowledged_once() {
    let mesh = MeshSandbox::start().await;
    let d = bridge(&mesh.url, &[("IPS__MESH__ACK_WITHIN", "2s")]).await;
    let silent = d.p.watch(&d.n.events, "document.unacknowledged").await;
    let case = open_case(&d, &nhs_number(6500)).await;
    let doc = post_note(&d, &case, "n-silent").await;
    mesh.wait_for_inbox(X26ABC2, 1, WAIT).await;
    let v = delivery_in(&d, &case, "unacknowledged").await;
    assert_eq!(v["document_id"], doc.as_str());
    tokio::time::sleep(QUIET).await;
    assert_eq!(d.p.drain(&silent, 1, WAIT).await.len(), 1);
    assert!(d.p.drain(&silent, 1, QUIET).await.is_empty());
}

/// Over `mesh.chunk_bytes` the message goes in chunks; when the chunks
/// after the first are lost (the proxy answers 503 without passing them
/// on), the retry finds the half-sent message by tracking and finishes it
/// instead of starting a second one. The practice gets one whole message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_document_goes_in_chunks_and_a_broken_upload_is_finished_not_repeated() {
    let mesh = MeshSandbox::start().await;
    let proxy = MeshProxy::start(&mesh.url, Duration::from_secs(1)).await;
    let d = bridge(&proxy.url, &[("IPS__MESH__CHUNK_BYTES", "1500")]).await;
    let case = open_case(&d, &nhs_number(6600)).await;
    proxy.fail_chunks(1);
    complete_vp(&d, &case).await;
    let ids = mesh.wait_for_inbox(X26ABC2, 1, WAIT).await;
    let v = send_in(&d, &case, "done").await;
    assert!(
        v["send"]["result"]
            .as_str()
            .unwrap()
            .contains("chunks resumed"),
        "{v}"
    );
    assert_eq!(v["send"]["attempts"], 2, "{v}");
    let (headers, body) = mesh.download(X26ABC2, &ids[0]).await;
    let chunks: usize = headers["mex-chunk-range"]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(chunks >= 3, "{headers:?}");
    assert!(body.len() > 1500 * (chunks - 1), "every chunk arrived");
    let text = String::from_utf8(body).unwrap();
    let x = roxmltree::Document::parse(&text).expect("the chunks join into the whole message");
    assert_eq!(values(&x, "MessageHeader", &["event", "code"]), ["ITK007C"]);
    tokio::time::sleep(QUIET).await;
    assert_eq!(mesh.inbox(X26ABC2).await.len(), 1, "one message");
    // One message started (the first chunk), never a second.
    let starts = mesh
        .access_log()
        .iter()
        .filter(|l| l.method == "POST" && l.path.ends_with("/messageexchange/X26ABC1/outbox"))
        .count();
    assert_eq!(starts, 1);
}

/// `mesh.patient_routing`: a practice with no configured mailbox is
/// addressed by the patient's details (MESH's automated routing). The
/// sandbox has no such routing, so it refuses the address (417): the send
/// shows it went that way and is parked with the reason. Without a date of
/// birth the document cannot be addressed and is `unroutable`, with why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_based_routing_addresses_the_patient_when_the_practice_has_no_mailbox() {
    let mesh = MeshSandbox::start().await;
    let d = bridge(&mesh.url, &[("IPS__MESH__PATIENT_ROUTING", "true")]).await;
    let rejected = d.p.watch(&d.n.events, "document.rejected").await;
    let case = open_case_at(&d, &nhs_number(6700), "B82002").await;
    post_note(&d, &case, "n-no-dob").await;
    let v = delivery_in(&d, &case, "unroutable").await;
    assert!(v["text"].as_str().unwrap().contains("date of birth"), "{v}");
    assert_eq!(d.p.drain(&rejected, 1, WAIT).await.len(), 1);
    complete_vp(&d, &case).await;
    let v = eventually(WAIT, "the VP's send parked", || async {
        let (_, v) = d.api.get(&format!("/api/cases/{case}/documents")).await;
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["send"]["status"] == "failed")
            .cloned()
    })
    .await;
    assert_eq!(v["mailbox"], "patient-routing");
    // The address holds the NHS number; it is in no log line, API field or error.
    let nhs = nhs_number(6700);
    assert!(
        !d.logs().contains(&nhs),
        "the NHS number in the daemon's log"
    );
    assert!(!v.to_string().contains(&nhs), "{v}");
    assert_eq!(v["recipient_ods"], "B82002");
    assert!(
        v["send"]["error"].as_str().unwrap().contains("HTTP 417"),
        "{v}"
    );
    assert_eq!(mesh.requests("POST", "/messageexchange/X26ABC1/outbox"), 1);
}

/// A send parked because MESH refused the credentials goes once the
/// credentials are fixed: `outbox failed` lists it with the reason, and
/// `outbox retry` puts it back for the restarted bridge to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_send_goes_after_the_fix_and_outbox_retry() {
    let mesh = MeshSandbox::start().await;
    let mut d = bridge(
        &mesh.url,
        &[
            ("IPS__MESH__PASSWORD", "wrong"),
            ("IPS__MESH__AUTH_BACKOFF", "1h"),
        ],
    )
    .await;
    let case = open_case(&d, &nhs_number(6800)).await;
    post_note(&d, &case, "n-fix").await;
    send_in(&d, &case, "failed").await;
    let listed = cli(&d.n, &d.db, &["outbox", "failed", "--kind", "mesh-send"]).await;
    assert!(listed.contains("mesh-send"), "{listed}");
    assert!(
        listed.contains("refused the bridge's credentials"),
        "{listed}"
    );
    // The operator fixes the password and restarts the bridge.
    d.sigkill();
    let text = std::fs::read_to_string(&d.config).unwrap();
    let mut cfg: toml::Table = text.parse().unwrap();
    cfg["mesh"]["password"] = toml::Value::String("password".into());
    std::fs::write(&d.config, toml::to_string(&cfg).unwrap()).unwrap();
    d.restart().await;
    tokio::time::sleep(QUIET).await;
    assert!(mesh.inbox(X26ABC2).await.is_empty(), "parked stays parked");
    let out = cli(
        &d.n,
        &d.db,
        &["outbox", "retry", "--all", "--kind", "mesh-send"],
    )
    .await;
    assert!(out.contains("1 row(s)"), "{out}");
    assert_eq!(mesh.wait_for_inbox(X26ABC2, 1, WAIT).await.len(), 1);
    let v = send_in(&d, &case, "done").await;
    assert_eq!(v["send"]["attempts"], 1);
    tokio::time::sleep(QUIET).await;
    assert_eq!(mesh.inbox(X26ABC2).await.len(), 1);
}
