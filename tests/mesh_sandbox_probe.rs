//! The MESH test harness (tests/common/mesh.rs) against a real `mesh-sandbox`
//! process: proves that the GP practice's side the MESH tests rely on behaves as
//! they assume — handshake and auth, a send arriving byte for byte with its local
//! id, acknowledgement, the error statuses, tracking by local id, chunked and gzip
//! downloads, reports, and the access-log request counts.
//!
//! What makes it fail: a sandbox version whose API moved (the pinned
//! requirements.txt changed), an auth header computed in another order, or a
//! harness that loses chunks, leaves bytes gzipped, or miscounts requests.

mod common;

use common::mesh::*;
use reqwest::Method;

const WORKFLOW: &str = "GPCONNECT_SEND_DOCUMENT";

fn local_id() -> String {
    format!("probe-{}", uuid::Uuid::new_v4().simple())
}

/// Send X26ABC1 -> X26ABC2, receive, acknowledge, and follow it by tracking.
#[tokio::test]
async fn send_arrives_intact_and_acknowledge_clears_the_inbox() {
    let sb = MeshSandbox::start().await;
    let hs = sb.handshake(X26ABC1).await;
    assert_eq!(hs.status, 200, "handshake: {}", hs.text());

    // Binary on purpose: NUL, high bytes, CR/LF must come back unchanged.
    let body: Vec<u8> = (0..=255u8)
        .chain(b"\r\n%PDF-1.7\0end".iter().copied())
        .collect();
    let local = local_id();
    let id = sb
        .send(
            X26ABC1,
            X26ABC2,
            WORKFLOW,
            &body,
            &[
                ("mex-LocalID", local.as_str()),
                ("mex-FileName", "letter.pdf"),
            ],
        )
        .await;
    assert_eq!(sb.requests("POST", "/messageexchange/X26ABC1/outbox"), 1);

    assert_eq!(sb.inbox(X26ABC2).await, vec![id.clone()]);
    assert!(
        sb.inbox(X26ABC1).await.is_empty(),
        "nothing comes back to the sender"
    );

    let (h, got) = sb.download(X26ABC2, &id).await;
    assert_eq!(got, body);
    assert_eq!(h["mex-localid"], local);
    assert_eq!(h["mex-from"], "X26ABC1");
    assert_eq!(h["mex-to"], "X26ABC2");
    assert_eq!(h["mex-workflowid"], WORKFLOW);
    assert_eq!(h["mex-messagetype"], "DATA");
    assert_eq!(h["mex-messageid"], id);
    assert_eq!(h["mex-filename"], "letter.pdf");
    assert_eq!(h["mex-chunk-range"], "1:1");
    assert!(!h.contains_key("content-encoding"), "{h:?}");

    let (status, t) = sb.tracking(X26ABC1, &local).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["messageId"], id.as_str());
    assert_eq!(t["localId"], local.as_str());
    assert_eq!(t["status"], "Accepted");
    assert_eq!(t["statusSuccess"], "SUCCESS");
    assert_eq!(
        t["downloadTimestamp"], "",
        "a download alone is not an acknowledgement"
    );

    sb.acknowledge(X26ABC2, &id).await;
    assert!(sb.inbox(X26ABC2).await.is_empty());
    let (status, t) = sb.tracking(X26ABC1, &local).await;
    assert_eq!(status, 200);
    assert_eq!(t["status"], "Acknowledged");
    assert_ne!(t["downloadTimestamp"], "");
    let (status, t2) = sb.tracking_by_id(X26ABC1, &id).await;
    assert_eq!((status, t2["status"].as_str()), (200, Some("acknowledged")));

    // Tracking is the sender's: unknown local id 404, reused local id 300.
    assert_eq!(sb.tracking(X26ABC1, "never-sent").await.0, 404);
    assert_eq!(sb.tracking(X26ABC2, &local).await.0, 404);
    sb.send(
        X26ABC1,
        X26ABC2,
        WORKFLOW,
        b"again",
        &[("mex-LocalID", local.as_str())],
    )
    .await;
    assert_eq!(sb.tracking(X26ABC1, &local).await.0, 300);
    assert_eq!(sb.requests("POST", "/messageexchange/X26ABC1/outbox"), 2);
    assert_eq!(sb.requests("PUT", "/status/acknowledged"), 1);
}

/// The statuses a client has to tell apart: 403 auth, 417 recipient, 400 headers.
#[tokio::test]
async fn wrong_password_is_403_unknown_recipient_417_missing_header_400() {
    let sb = MeshSandbox::start().await;

    let bad = X26ABC1.with_password("not-the-password");
    let r = sb.handshake(bad).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["detail"][0]["msg"], "Invalid Authentication Token");
    assert_eq!(
        sb.try_send(bad, "X26ABC2", WORKFLOW, b"x", &[])
            .await
            .status,
        403
    );

    // A header signed with another shared key is refused the same way.
    let other_key = auth_header("X26ABC1", "password", "Banana");
    let r = sb
        .raw(
            Method::GET,
            "/messageexchange/X26ABC1/inbox",
            &[("authorization", other_key.as_str())],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    let r = sb
        .raw(Method::GET, "/messageexchange/X26ABC1/inbox", &[], None)
        .await;
    assert_eq!(r.status, 403, "no Authorization header");

    let r = sb.try_send(X26ABC1, "X26NOPE9", WORKFLOW, b"x", &[]).await;
    assert_eq!(r.status, 417, "{}", r.text());
    let err = r.json();
    let d = &err["detail"][0];
    assert_eq!(
        (d["event"].as_str(), d["code"].as_str()),
        (Some("SEND"), Some("12"))
    );

    // Missing mex-WorkflowID: FastAPI's validation error, not MESH's error shape.
    let r = sb
        .request(
            Method::POST,
            X26ABC1,
            "/outbox",
            &[("mex-To", "X26ABC2")],
            Some(b"x".to_vec()),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["detail"][0]["loc"][1], "mex-workflowid");

    assert_eq!(
        sb.try_send(X26ABC1, "X26ABC2", WORKFLOW, b"", &[])
            .await
            .status,
        417
    );
    assert!(sb.inbox(X26ABC2).await.is_empty());
}

/// Chunks: tracking shows `Uploading` until the last chunk, the recipient sees the
/// message only then, and the harness joins the chunks (and un-gzips a gzip stream
/// split across chunks, which the sandbox itself cannot).
#[tokio::test]
async fn chunked_and_gzip_messages_download_whole() {
    let sb = MeshSandbox::start().await;
    let local = local_id();
    let id = sb
        .send(
            X26ABC1,
            X26ABC2,
            WORKFLOW,
            b"first,",
            &[("mex-Chunk-Range", "1:3"), ("mex-LocalID", local.as_str())],
        )
        .await;
    let (_, t) = sb.tracking(X26ABC1, &local).await;
    assert_eq!(
        (t["status"].as_str(), t["chunkCount"].as_u64()),
        (Some("Uploading"), Some(3))
    );
    assert!(
        sb.inbox(X26ABC2).await.is_empty(),
        "incomplete messages are not delivered"
    );
    assert_eq!(
        sb.upload_chunk(X26ABC1, &id, 2, 3, b"second,", &[]).await,
        202
    );
    assert_eq!(
        sb.upload_chunk(X26ABC2, &id, 3, 3, b"third", &[]).await,
        403
    );
    assert_eq!(
        sb.upload_chunk(X26ABC1, &id, 3, 3, b"third", &[]).await,
        202
    );
    assert_eq!(
        sb.upload_chunk(X26ABC1, &id, 3, 3, b"third", &[]).await,
        423
    );
    assert_eq!(sb.tracking(X26ABC1, &local).await.1["status"], "Accepted");
    assert_eq!(sb.inbox(X26ABC2).await, vec![id.clone()]);
    let (h, body) = sb.download(X26ABC2, &id).await;
    assert_eq!(body, b"first,second,third");
    assert_eq!(h["mex-chunk-range"], "1:3");

    // gzip.compress(b"The GP practice's copy of the letter.\n" * 3, mtime=0), split in two.
    const GZ: [u8; 60] = [
        31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 11, 201, 72, 85, 112, 15, 80, 40, 40, 74, 76, 46, 201, 76,
        78, 85, 47, 86, 72, 206, 47, 168, 84, 200, 79, 83, 40, 1, 202, 228, 164, 150, 148, 164, 22,
        233, 113, 133, 80, 81, 21, 0, 123, 78, 142, 166, 114, 0, 0, 0,
    ];
    let plain = b"The GP practice's copy of the letter.\n".repeat(3);
    let gz = sb
        .send_chunked(
            X26ABC1,
            X26ABC3,
            WORKFLOW,
            &[&GZ[..25], &GZ[25..]],
            &[("Content-Encoding", "gzip")],
        )
        .await;
    let (h, body) = sb.download(X26ABC3, &gz).await;
    assert_eq!(body, plain);
    assert_eq!(
        h["content-encoding"], "gzip",
        "the harness tells the sender compressed"
    );
    let single = sb
        .send(
            X26ABC1,
            X26ABC3,
            WORKFLOW,
            &GZ,
            &[("Content-Encoding", "gzip")],
        )
        .await;
    assert_eq!(sb.download(X26ABC3, &single).await.1, plain);
    // Two chunk uploads, three first POSTs from X26ABC1.
    let posts = sb
        .access_log()
        .into_iter()
        .filter(|l| l.method == "POST" && l.path == "/messageexchange/X26ABC1/outbox")
        .count();
    assert_eq!(posts, 3);
}

/// Reports (admin injection), the endpoint lookup, and reset.
#[tokio::test]
async fn reports_lookup_and_reset() {
    let sb = MeshSandbox::start().await;
    let id = sb.send(X26ABC1, X26ABC2, WORKFLOW, b"x", &[]).await;
    let ndr = sb.inject_undeliverable(X26ABC1, &id, WORKFLOW).await;
    assert_eq!(sb.inbox(X26ABC1).await, vec![ndr.clone()]);
    let (h, body) = sb.download(X26ABC1, &ndr).await;
    assert!(body.is_empty());
    assert_eq!(h["mex-messagetype"], "REPORT");
    assert_eq!(h["mex-linkedmsgid"], id);
    assert_eq!(h["mex-statuscode"], "14");
    assert_eq!(h["mex-statusevent"], "SEND");
    assert_eq!(h["mex-statussuccess"], "ERROR");
    assert!(!h.contains_key("mex-from"), "{h:?}");
    sb.acknowledge(X26ABC1, &ndr).await;

    let err = sb
        .inject_error_report(X26ABC1, &id, WORKFLOW, "12", "Unregistered to address")
        .await;
    let (h, _) = sb.download(X26ABC1, &err).await;
    assert_eq!(
        (h["mex-statusevent"].as_str(), h["mex-statuscode"].as_str()),
        ("TRANSFER", "12")
    );

    // The original's tracking only changes with an event of its own.
    let (_, t) = sb.tracking_by_id(X26ABC1, &id).await;
    assert_eq!(t["status"], "accepted");
    sb.add_event(&id, "error", "14", "SEND", "not collected")
        .await;
    let (_, t) = sb.tracking_by_id(X26ABC1, &id).await;
    assert_eq!(
        (t["status"].as_str(), t["status_success"].as_bool()),
        (Some("error"), Some(false))
    );

    let v = sb.endpoint_lookup("X26", "TEST_WORKFLOW").await;
    assert_eq!(v["results"][0]["mailbox_id"], "X26ABC2");
    assert_eq!(
        sb.endpoint_lookup("X26", WORKFLOW).await["results"],
        serde_json::json!([])
    );

    sb.reset().await;
    assert!(sb.inbox(X26ABC1).await.is_empty());
    assert!(sb.message_details(&id).await.is_none());
}

#[test]
fn auth_header_matches_the_sandbox_formula() {
    // HMAC-SHA256 keyed "TestKey" over "X26ABC1:nonce-1:1:password:202601021530", as
    // the sandbox's own generate_cipher_text computes it.
    let h = auth_header_with(
        "X26ABC1",
        "password",
        "TestKey",
        "nonce-1",
        1,
        "202601021530",
    );
    assert_eq!(
        h,
        "NHSMESH X26ABC1:nonce-1:1:202601021530:\
         60fee8138d1d3ed13230c0bede07f224c4592ac823bcf09b74bfb637e6448abd"
    );
}
