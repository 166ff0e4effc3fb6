use super::*;

fn data(body: &[u8]) -> MeshMessage<'_> {
    MeshMessage {
        message_type: Some("DATA"),
        workflow_id: Some("GPCONNECT_SEND_DOCUMENT_ACK"),
        local_id: None,
        linked_message_id: None,
        status_success: Some("SUCCESS"),
        status_code: Some("00"),
        status_event: Some("TRANSFER"),
        body,
    }
}

fn ack_of(body: &[u8]) -> AckInput {
    match classify(&data(body)) {
        Ok(Command::DeliveryAck(a)) => *a,
        other => panic!("expected an acknowledgement, got {other:?}"),
    }
}

/// Every ITK3 response example NHS England publishes (ITK3 Messaging
/// Distribution), read as it is: XML.
#[test]
fn every_published_itk3_response_reads_with_its_level_and_outcome() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gpconnect/itk3-responses"
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let code = name
            .trim_start_matches("itk3-response-")
            .trim_end_matches(".xml")
            .to_owned();
        let a = ack_of(&std::fs::read(&path).unwrap());
        assert_eq!(a.ack.code.as_deref(), Some(code.as_str()), "{name}");
        let level = if code.starts_with('3') {
            AckLevel::Business
        } else {
            AckLevel::Infrastructure
        };
        assert_eq!(a.ack.level, level, "{name}");
        // The published positives: 20013 Success, 30001 and 30004 patient known.
        let positive = matches!(code.as_str(), "20013" | "30001" | "30004");
        assert_eq!(a.ack.positive, positive, "{name}");
        // 10009 and 10010 answer a message their sender could not read, so
        // they cannot name it (UNREADABLE-IN-ORIGINAL-MESSAGE):
        // the engine dead-letters it as unmatched; it is not lost.
        let named = matches!(a.answers, AckRef::ItkMessage(ref id) if id.len() == 36);
        assert_eq!(named, !matches!(code.as_str(), "10009" | "10010"), "{name}");
        assert!(a.ack.text.is_some(), "{name}");
        seen += 1;
    }
    assert!(seen >= 25, "only {seen} published responses found");
}

#[test]
fn the_json_form_reads_like_the_xml_form() {
    let xml = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gpconnect/itk3-responses/itk3-response-30003.xml"
    ))
    .unwrap();
    let from_xml = ack_of(&xml);
    let json = serde_json::json!({
        "resourceType": "Bundle", "type": "message",
        "entry": [
            {"resource": {"resourceType": "MessageHeader",
                "event": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2", "code": "ITK008M"},
                "response": {"identifier": "ea7221b8-3cc0-4b11-bc95-585b056b5427", "code": "fatal-error"}}},
            {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "business-rule",
                "details": {"coding": [{"system": ITK_RESPONSE_CODES, "code": "30003",
                    "display": "Patient no longer at this clinical setting"}]}}]}}
        ]
    });
    assert_eq!(ack_of(json.to_string().as_bytes()), from_xml);
}

#[test]
fn a_report_names_the_local_id_and_a_code_never_free_text() {
    let m = MeshMessage {
        message_type: Some("REPORT"),
        local_id: Some("ips-doc-1"),
        status_success: Some("ERROR"),
        status_code: Some("14"),
        status_event: Some("SEND"),
        body: b"",
        ..data(b"")
    };
    let Ok(Command::DeliveryAck(a)) = classify(&m) else {
        panic!("a report is an acknowledgement")
    };
    assert_eq!(a.answers, AckRef::LocalId("ips-doc-1".into()));
    assert_eq!(
        (a.ack.level, a.ack.positive, a.ack.code.as_deref()),
        (AckLevel::MeshReport, false, Some("MESH-14"))
    );
    let no_local_id = MeshMessage {
        local_id: None,
        ..m
    };
    assert_eq!(
        classify(&no_local_id).unwrap_err().code,
        RejectCode::MissingRequiredElement
    );
}

#[test]
fn bad_messages_are_refused_with_the_reason_and_no_content() {
    let cases: [(&[u8], RejectCode); 5] = [
        (b"\xff\xfe", RejectCode::InvalidUtf8),
        (b"{\"resourceType\": 9912003888", RejectCode::InvalidJson),
        (b"<Bundle><unclosed></Bundle>", RejectCode::InvalidBundle),
        (
            b"<!DOCTYPE x [<!ENTITY a \"9912003888\">]><Bundle>&a;</Bundle>",
            RejectCode::InvalidBundle,
        ),
        (
            b"{\"resourceType\": \"Bundle\"}",
            RejectCode::MissingMessageHeader,
        ),
    ];
    for (body, code) in cases {
        let e = classify(&data(body)).unwrap_err();
        assert_eq!(e.code, code, "{e:?}");
        assert!(!e.reason.contains("9912003888"), "{e:?}");
    }
    let send_document = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gpconnect/send-document-v2-generic-example.xml"
    ))
    .unwrap();
    assert_eq!(
        classify(&data(&send_document)).unwrap_err().code,
        RejectCode::UnknownEventType
    );
}

/// Found by the `mesh_ack` fuzz target: ten thousand nested elements
/// overflowed the stack inside roxmltree and aborted the process. Refused
/// before parsing now; the published examples are far within the limit.
#[test]
fn deeply_nested_xml_is_refused_without_overflowing_the_stack() {
    let deep = "<a>".repeat(10_000) + &"</a>".repeat(10_000);
    let e = classify(&data(deep.as_bytes())).unwrap_err();
    assert_eq!(e.code, RejectCode::InvalidBundle);
    assert!(e.reason.contains("nested deeper"), "{}", e.reason);
    // Self-closing and closing tags do not deepen; the limit itself is read.
    let flat = "<x>".to_owned() + &"<b/>".repeat(10_000) + "</x>";
    assert!(!nesting_deeper_than(&flat, MAX_XML_DEPTH));
    let at_limit = "<a>".repeat(MAX_XML_DEPTH) + &"</a>".repeat(MAX_XML_DEPTH);
    assert!(!nesting_deeper_than(&at_limit, MAX_XML_DEPTH));
    assert!(nesting_deeper_than(
        &("<a>".to_owned() + &at_limit),
        MAX_XML_DEPTH
    ));
}
