//! FHIR STU3 XML for the Send Document message.
//!
//! ITK3 says receivers SHALL take XML, and every example NHS England
//! publishes is XML. FHIR XML is not a mechanical image of the JSON: a
//! resource's type is its element name, primitives are `value`
//! attributes, `url` on an extension is an attribute, repeats are repeated
//! elements, and the children must come in the order the resource's
//! definition gives. The message is built once, as JSON
//! ([`super::message`]); this writes it as XML, putting children in
//! [`ORDER`]: one ranking that agrees with every STU3 definition the
//! message uses (checked against the published example in the tests).

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Child element order, for every element the message contains. Where two
/// names occur in one STU3 element, they are ranked here in that element's
/// order: Bundle (id, meta, identifier, type, entry), entry (fullUrl,
/// resource), Meta (lastUpdated, profile), Identifier (extension, system,
/// value), Coding (system, code, display), CodeableConcept (coding, text),
/// HumanName (use, text, family, given), MessageHeader (extension, event,
/// sender, timestamp, source, focus), Composition (identifier, status,
/// type, subject, date, author, title, confidentiality, custodian,
/// relatesTo, section), section (title, entry), relatesTo (code,
/// targetIdentifier), Patient (identifier, name, birthDate,
/// generalPractitioner), Organization (identifier, name), Binary
/// (contentType, content).
const ORDER: &[&str] = &[
    "id",
    "meta",
    "lastUpdated",
    "profile",
    "extension",
    "fullUrl",
    "resource",
    "identifier",
    "status",
    "coding",
    "use",
    "text",
    "family",
    "given",
    "system",
    "code",
    "display",
    "type",
    "event",
    "sender",
    "timestamp",
    "source",
    "endpoint",
    "focus",
    "reference",
    "subject",
    "date",
    "author",
    "title",
    "confidentiality",
    "custodian",
    "relatesTo",
    "targetIdentifier",
    "section",
    "entry",
    "name",
    "birthDate",
    "generalPractitioner",
    "contentType",
    "content",
    "value",
];

fn rank(key: &str) -> usize {
    if key.starts_with("value") && key != "value" {
        // value[x] of an extension: after its nested extensions.
        return ORDER.len();
    }
    ORDER
        .iter()
        .position(|k| *k == key)
        .unwrap_or(ORDER.len() + 1)
}

/// The resource (with its `resourceType`) as an STU3 XML document.
pub fn to_xml(resource: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    if let Some(obj) = resource.as_object() {
        write_resource(&mut out, obj, true);
    }
    out
}

fn write_resource(out: &mut String, obj: &Map<String, Value>, root: bool) {
    let name = obj
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("Resource");
    out.push('<');
    out.push_str(name);
    if root {
        out.push_str(" xmlns=\"http://hl7.org/fhir\"");
    }
    out.push('>');
    write_children(out, obj);
    let _ = write!(out, "</{name}>");
}

fn write_children(out: &mut String, obj: &Map<String, Value>) {
    let mut keys: Vec<&String> = obj
        .keys()
        .filter(|k| *k != "resourceType" && *k != "url")
        .collect();
    keys.sort_by_key(|k| rank(k));
    for k in keys {
        match &obj[k.as_str()] {
            Value::Array(items) => {
                for item in items {
                    write_element(out, k, item);
                }
            }
            v => write_element(out, k, v),
        }
    }
}

fn write_element(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Object(o) if name == "resource" => {
            out.push_str("<resource>");
            write_resource(out, o, false);
            out.push_str("</resource>");
        }
        Value::Object(o) => {
            out.push('<');
            out.push_str(name);
            if let Some(url) = o.get("url").and_then(Value::as_str) {
                let _ = write!(out, " url=\"{}\"", escape(url));
            }
            out.push('>');
            write_children(out, o);
            let _ = write!(out, "</{name}>");
        }
        Value::String(s) => {
            let _ = write!(out, "<{name} value=\"{}\"/>", escape(s));
        }
        Value::Bool(b) => {
            let _ = write!(out, "<{name} value=\"{b}\"/>");
        }
        Value::Number(n) => {
            let _ = write!(out, "<{name} value=\"{n}\"/>");
        }
        Value::Null | Value::Array(_) => {}
    }
}

/// Attribute text: markup characters as references, and characters XML 1.0
/// forbids dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn primitives_are_value_attributes_and_extension_urls_attributes() {
        let x = to_xml(&json!({
            "resourceType": "Patient",
            "id": "p1",
            "identifier": [{"extension": [{"url": "https://e", "valueBoolean": true}],
                            "system": "s", "value": "9912003888"}],
            "name": [{"use": "official", "text": "Jo \"J\" <Bloggs> & Co"}],
            "birthDate": "1990-04-01"
        }));
        assert_eq!(
            x,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Patient xmlns=\"http://hl7.org/fhir\"><id value=\"p1\"/>\
             <identifier><extension url=\"https://e\"><valueBoolean value=\"true\"/></extension>\
             <system value=\"s\"/><value value=\"9912003888\"/></identifier>\
             <name><use value=\"official\"/><text value=\"Jo &quot;J&quot; &lt;Bloggs&gt; &amp; Co\"/></name>\
             <birthDate value=\"1990-04-01\"/></Patient>"
        );
        assert!(roxmltree::Document::parse(&x).is_ok());
    }

    #[test]
    fn characters_xml_forbids_are_dropped_and_line_breaks_kept() {
        let x = to_xml(&json!({"resourceType": "Practitioner", "name": [{"text": "a\u{1}b\nc"}]}));
        let doc = roxmltree::Document::parse(&x).unwrap();
        let text = doc
            .descendants()
            .find(|n| n.has_tag_name("text"))
            .unwrap()
            .attribute("value");
        assert_eq!(text, Some("ab\nc"));
    }
}
