use super::*;
use std::collections::BTreeSet;

const DOCUMENT: Document<'static> = Document {
    document_id: "doc-1",
    replaces: Some("doc-0"),
    kind: DocumentKind::Vp,
    title: "Vocational profile – version 2",
    xhtml: "<html xmlns=\"http://www.w3.org/1999/xhtml\"><body><p>VP</p></body></html>",
    nhs_number: "9912003888",
    patient_name: Some("Jo Bloggs"),
    date_of_birth: Some(time::macros::date!(1990 - 04 - 01)),
    author_name: "Alice Specialist",
};

fn sample() -> SendDocument<'static> {
    SendDocument {
        message_id: "6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
        document: &DOCUMENT,
        service_name: "IPS service",
        service_ods: "RX1",
        practice_ods: Some("A81001"),
        from_mailbox: "X26ABC1",
        identifier_system: "https://ips-bridge.nhs.example/Id",
        created: "2026-12-01T09:00:00Z",
    }
}

fn resources(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect()
}

fn of<'a>(bundle: &'a Value, t: &str) -> &'a Value {
    resources(bundle)
        .into_iter()
        .find(|r| r["resourceType"] == t)
        .unwrap_or_else(|| panic!("no {t}"))
}

/// What the published example (send-document-v2-generic-example.xml) has
/// at a path, read with an XML parser: the fixture, not a copy of it.
fn published() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gpconnect/send-document-v2-generic-example.xml"
    ))
    .unwrap()
}

#[test]
fn the_message_header_matches_the_published_example() {
    let text = published();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let header = doc
        .descendants()
        .find(|n| n.has_tag_name("MessageHeader"))
        .unwrap();
    let value = |n: roxmltree::Node<'_, '_>, path: &[&str]| -> String {
        let mut cur = n;
        for p in path {
            cur = cur.children().find(|c| c.has_tag_name(*p)).unwrap();
        }
        cur.attribute("value").unwrap().to_owned()
    };
    let handling = header
        .children()
        .find(|n| n.has_tag_name("extension"))
        .unwrap();
    let ours = message(&sample());
    let h = of(&ours, "MessageHeader");
    // The extension and its parts, by the published URLs.
    assert_eq!(handling.attribute("url"), Some(MESSAGE_HANDLING));
    assert_eq!(h["extension"][0]["url"], MESSAGE_HANDLING);
    let published_parts: Vec<String> = handling
        .children()
        .filter(|n| n.has_tag_name("extension"))
        .map(|n| n.attribute("url").unwrap().to_owned())
        .collect();
    let our_parts: Vec<String> = h["extension"][0]["extension"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(our_parts, published_parts);
    let def = handling
        .descendants()
        .find(|n| n.has_tag_name("reference"))
        .unwrap()
        .attribute("value")
        .unwrap();
    assert_eq!(def, SEND_DOCUMENT_DEFINITION);
    // Both acknowledgements asked for, as in the example.
    for (i, name) in [(0, "BusAckRequested"), (1, "InfAckRequested")] {
        assert_eq!(h["extension"][0]["extension"][i]["url"], name);
        assert_eq!(h["extension"][0]["extension"][i]["valueBoolean"], true);
    }
    assert_eq!(value(header, &["event", "system"]), MESSAGE_EVENT_SYSTEM);
    assert_eq!(value(header, &["event", "code"]), "ITK007C");
    assert_eq!(h["event"]["code"], "ITK007C");
    assert_eq!(h["event"]["display"], value(header, &["event", "display"]));
    assert_eq!(h["source"]["endpoint"], "X26ABC1");
    // The focus is the document Bundle, as in the example.
    let focus = h["focus"]["reference"].as_str().unwrap();
    let focused = ours["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["fullUrl"] == focus)
        .unwrap();
    assert_eq!(focused["resource"]["type"], "document");
    assert_eq!(h["id"], "6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b");
}

#[test]
fn the_document_bundle_holds_what_the_published_example_holds() {
    let text = published();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let inner = doc
        .descendants()
        .filter(|n| n.has_tag_name("Bundle"))
        .nth(1)
        .unwrap();
    let published_types: BTreeSet<String> = inner
        .children()
        .filter(|n| n.has_tag_name("entry"))
        .filter_map(|e| e.children().find(|c| c.has_tag_name("resource")))
        .filter_map(|r| r.first_element_child())
        .map(|n| n.tag_name().name().to_owned())
        .collect();
    let ours = message(&sample());
    let inner_ours = &resources(&ours)
        .into_iter()
        .find(|r| r["type"] == "document")
        .unwrap();
    let our_types: BTreeSet<String> = resources(inner_ours)
        .iter()
        .map(|r| r["resourceType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(our_types, published_types);
    // Every entry is referenced by its urn:uuid fullUrl, and every
    // reference resolves inside the message.
    let text = ours.to_string();
    let urls: BTreeSet<&str> = ours["entry"]
        .as_array()
        .unwrap()
        .iter()
        .chain(inner_ours["entry"].as_array().unwrap())
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    for r in text.split("\"reference\":\"").skip(1) {
        let target = &r[..r.find('"').unwrap()];
        assert!(
            urls.contains(target) || target == SEND_DOCUMENT_DEFINITION,
            "{target}"
        );
    }
    // Every resource has its profile (GPCM-SD-108).
    for r in resources(&ours).into_iter().chain(resources(inner_ours)) {
        assert!(r["meta"]["profile"][0].is_string(), "{}", r["resourceType"]);
    }
}

#[test]
fn patient_practice_author_and_document_are_what_was_published() {
    let s = sample();
    let ours = message(&s);
    let inner = resources(&ours)
        .into_iter()
        .find(|r| r["type"] == "document")
        .unwrap()
        .clone();
    let patient = of(&inner, "Patient");
    assert_eq!(patient["identifier"][0]["system"], NHS_NUMBER);
    assert_eq!(patient["identifier"][0]["value"], "9912003888");
    assert_eq!(patient["birthDate"], "1990-04-01");
    assert_eq!(patient["name"][0]["text"], "Jo Bloggs");
    let composition = of(&inner, "Composition");
    assert_eq!(composition["status"], "final");
    assert_eq!(composition["relatesTo"][0]["code"], "replaces");
    assert_eq!(
        composition["relatesTo"][0]["targetIdentifier"]["value"],
        "ips-document-doc-0"
    );
    assert_eq!(
        of(&inner, "Practitioner")["name"][0]["text"],
        "Alice Specialist"
    );
    let odss: BTreeSet<&str> = resources(&inner)
        .into_iter()
        .filter(|r| r["resourceType"] == "Organization")
        .map(|o| o["identifier"][0]["value"].as_str().unwrap())
        .collect();
    assert_eq!(odss, BTreeSet::from(["A81001", "RX1"]));
    let binary = of(&inner, "Binary");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(binary["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, s.document.xhtml.as_bytes());
    // Built twice, the same bytes: a resend after a crash is identical.
    assert_eq!(message(&s).to_string(), ours.to_string());
}

/// Which child element comes before which, per parent element name: every
/// `(parent, earlier, later)` seen in any one element.
fn child_pairs(x: &roxmltree::Document<'_>) -> std::collections::HashSet<(String, String, String)> {
    let mut out = std::collections::HashSet::new();
    for n in x.descendants().filter(|n| n.is_element()) {
        let names: Vec<&str> = n
            .children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name())
            .collect();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                if a != b {
                    out.insert((
                        n.tag_name().name().to_owned(),
                        (*a).to_owned(),
                        (*b).to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn the_xml_orders_elements_as_the_published_example_does() {
    let ours_text = Format::Xml.encode(&message(&sample())).0;
    let ours = roxmltree::Document::parse(&ours_text).expect("well-formed");
    assert_eq!(
        ours.root_element().tag_name().namespace(),
        Some("http://hl7.org/fhir")
    );
    let theirs_text = published();
    let theirs = roxmltree::Document::parse(&theirs_text).unwrap();
    let (ours_pairs, theirs_pairs) = (child_pairs(&ours), child_pairs(&theirs));
    // No two children in the opposite order to the published example's.
    for (parent, a, b) in &ours_pairs {
        assert!(
            !theirs_pairs.contains(&(parent.clone(), b.clone(), a.clone())),
            "{parent}: ours puts {a} before {b}, the published example {b} before {a}"
        );
    }
    let shared = ours_pairs.intersection(&theirs_pairs).count();
    assert!(shared > 40, "only {shared} orderings compared");
    // The XML says what the JSON says: the same patient, document and ids.
    let json = message(&sample());
    let value = |rt: &str, path: &[&str]| -> Option<String> {
        let mut cur = ours.descendants().find(|n| n.has_tag_name(rt))?;
        for p in path {
            cur = cur.children().find(|c| c.has_tag_name(*p))?;
        }
        cur.attribute("value").map(str::to_owned)
    };
    assert_eq!(
        value("MessageHeader", &["id"]).as_deref(),
        json["entry"][0]["resource"]["id"].as_str()
    );
    assert_eq!(
        value("Patient", &["identifier", "value"]).as_deref(),
        Some("9912003888")
    );
    assert_eq!(
        value("Binary", &["contentType"]).as_deref(),
        Some(CONTENT_TYPE)
    );
    let handling = ours
        .descendants()
        .find(|n| n.attribute("url") == Some(MESSAGE_HANDLING))
        .expect("the handling extension, url as an attribute");
    assert_eq!(
        handling
            .children()
            .filter(|c| c.has_tag_name("extension"))
            .count(),
        6
    );
}

#[test]
fn the_patient_address_is_number_birth_date_and_surname() {
    let dob = Some(time::macros::date!(1955 - 01 - 09));
    assert_eq!(
        patient_address("1234567890", dob, Some("Richard Smith")).as_deref(),
        Some("GPPROVIDER_1234567890_09011955_Smith")
    );
    assert_eq!(
        patient_address("1234567890", None, Some("Richard Smith")),
        None
    );
    assert_eq!(patient_address("1234567890", dob, None), None);
    assert_eq!(patient_address("1234567890", dob, Some("Smith_X")), None);
}

#[test]
fn without_a_known_practice_the_message_names_none() {
    let mut s = sample();
    s.practice_ods = None;
    let m = message(&s);
    let text = m.to_string();
    assert!(!text.contains("A81001"));
    assert!(!text.contains("generalPractitioner"));
}
