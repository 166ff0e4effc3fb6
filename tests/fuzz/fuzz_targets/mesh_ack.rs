//! The MESH inbox reader over arbitrary input: ITK3 acknowledgements (STU3
//! XML or JSON) and MESH reports with arbitrary control headers. It must
//! never panic; results are discarded.
//!
//! Inputs are downloaded message bodies as they are (a seed is a file as
//! MESH would deliver it), read as a data message. The same input is also
//! read as a MESH report whose `mex-LocalID`, `mex-StatusCode` and
//! `mex-StatusEvent` headers are its first three lines, with the
//! `mex-StatusSuccess` header going with its length.
#![no_main]

use ips_bridge::ingest::mesh::{MeshMessage, classify};
use libfuzzer_sys::fuzz_target;

const SUCCESS: &[Option<&str>] = &[
    None,
    Some("ERROR"),
    Some("SUCCESS"),
    Some("success"),
    Some(""),
];

fuzz_target!(|data: &[u8]| {
    let ack = MeshMessage {
        message_type: Some("DATA"),
        workflow_id: Some("GPCONNECT_SEND_DOCUMENT_ACK"),
        local_id: None,
        linked_message_id: None,
        status_success: Some("SUCCESS"),
        status_code: Some("00"),
        status_event: Some("TRANSFER"),
        body: data,
    };
    if let Ok(cmd) = classify(&ack) {
        // Debug is what an operator's trace would show: it must not panic either.
        let _ = format!("{cmd:?}");
    }

    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let report = MeshMessage {
        message_type: Some("REPORT"),
        local_id: lines.next(),
        status_code: lines.next(),
        status_event: lines.next(),
        linked_message_id: lines.next(),
        status_success: SUCCESS[data.len() % SUCCESS.len()],
        ..ack
    };
    if let Ok(cmd) = classify(&report) {
        let _ = format!("{cmd:?}");
    }
});
