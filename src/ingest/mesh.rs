//! Messages in the bridge's MESH inbox: ITK3 acknowledgements (STU3, XML
//! or JSON) about documents it sent, and MESH's own reports.
//!
//! An ITK3 response (`ITK008M`) names the message it answers in
//! `MessageHeader.response.identifier` and says how it went in
//! `response.code` (`ok`, `transient-error`, `fatal-error`) with an
//! `ITK-ResponseCodes-1` code: 1xxxx and 2xxxx are infrastructure
//! responses (20013 is the positive one), 3xxxx business responses (30001
//! and 30004 positive). A MESH report (`mex-MessageType: REPORT`) carries
//! the original `mex-LocalID` and a status. Only codes and their displays
//! are kept, never free text a sender may have filled with patient data.

use crate::domain::documents::delivery::{Ack, AckLevel};
use crate::engine::command::{AckInput, AckRef, Command};
use crate::engine::rejection::{RejectCode, Rejection};
use serde_json::Value;

pub const ITK_RESPONSE_CODES: &str = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-ResponseCodes-1";
const ITK_RESPONSE_EVENT: &str = "ITK008M";
/// Acknowledgements are a few kilobytes; anything bigger is not one.
const MAX_ACK_BYTES: usize = 1_000_000;
/// Deepest XML element nesting read. ITK3 responses nest about ten deep;
/// roxmltree parses elements recursively, so ten thousand nested elements
/// (30 KB) overflow the stack and abort the whole process (found by the
/// `mesh_ack` fuzz target). Checked before parsing.
const MAX_XML_DEPTH: usize = 128;

/// The parts of a downloaded MESH message the reader looks at.
#[derive(Debug, Clone, Copy)]
pub struct MeshMessage<'a> {
    pub message_type: Option<&'a str>,
    pub workflow_id: Option<&'a str>,
    pub local_id: Option<&'a str>,
    pub linked_message_id: Option<&'a str>,
    pub status_success: Option<&'a str>,
    pub status_code: Option<&'a str>,
    pub status_event: Option<&'a str>,
    pub body: &'a [u8],
}

/// What the message says, as a command for the engine.
pub fn classify(m: &MeshMessage<'_>) -> Result<Command, Rejection> {
    if m.message_type
        .is_some_and(|t| t.eq_ignore_ascii_case("REPORT"))
    {
        return report(m);
    }
    if m.body.len() > MAX_ACK_BYTES {
        return Err(Rejection::new(
            RejectCode::MessageTooLarge,
            format!("an ITK acknowledgement is at most {MAX_ACK_BYTES} bytes"),
        ));
    }
    let text = std::str::from_utf8(m.body)
        .map_err(|_| Rejection::new(RejectCode::InvalidUtf8, "the message is not UTF-8"))?;
    let fields = if text.trim_start().starts_with('<') {
        from_xml(text)?
    } else {
        from_json(text)?
    };
    ack_from(fields).map(|a| Command::DeliveryAck(Box::new(a)))
}

/// A MESH report: the message was not delivered (or, rarely, a success).
fn report(m: &MeshMessage<'_>) -> Result<Command, Rejection> {
    if m.status_success
        .is_some_and(|s| s.eq_ignore_ascii_case("SUCCESS"))
    {
        return Ok(Command::Ignore("a MESH success report".into()));
    }
    let local_id = m.local_id.filter(|l| !l.is_empty()).ok_or_else(|| {
        Rejection::new(
            RejectCode::MissingRequiredElement,
            "a MESH report without mex-LocalID cannot be matched to a sent document",
        )
    })?;
    let code = m.status_code.map(token);
    let text = match code.as_deref() {
        Some("14") => "MESH: not collected by the recipient within 5 days".to_owned(),
        Some(c) => format!(
            "MESH could not deliver the message (status {c}, event {})",
            m.status_event
                .map(token)
                .unwrap_or_else(|| "unknown".into())
        ),
        None => "MESH could not deliver the message".to_owned(),
    };
    Ok(Command::DeliveryAck(Box::new(AckInput {
        answers: AckRef::LocalId(local_id.to_owned()),
        ack: Ack {
            level: AckLevel::MeshReport,
            positive: false,
            code: code.map(|c| format!("MESH-{c}")),
            text: Some(text),
        },
    })))
}

/// Codes as they may be repeated: letters, digits, `-` and `_`, at most 20.
fn token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(20)
        .collect()
}

/// What an ITK3 response says, whichever syntax it came in.
#[derive(Debug, Default, PartialEq, Eq)]
struct ResponseFields {
    event: Option<String>,
    answers: Option<String>,
    response_code: Option<String>,
    itk_code: Option<String>,
    itk_display: Option<String>,
}

fn ack_from(f: ResponseFields) -> Result<AckInput, Rejection> {
    match f.event.as_deref() {
        Some(ITK_RESPONSE_EVENT) => {}
        Some(_) => {
            return Err(Rejection::new(
                RejectCode::UnknownEventType,
                "the MessageHeader's event is not ITK008M (ITK Response)",
            ));
        }
        None => {
            return Err(Rejection::new(
                RejectCode::MissingMessageHeader,
                "not an ITK3 message: no MessageHeader with an event",
            ));
        }
    }
    let answers = f.answers.filter(|a| !a.trim().is_empty()).ok_or_else(|| {
        Rejection::new(
            RejectCode::MissingRequiredElement,
            "MessageHeader.response.identifier is missing: the response names no message",
        )
    })?;
    let response_code = f.response_code.ok_or_else(|| {
        Rejection::new(
            RejectCode::MissingRequiredElement,
            "MessageHeader.response.code is missing",
        )
    })?;
    let positive = match response_code.as_str() {
        "ok" => true,
        "transient-error" | "fatal-error" => false,
        _ => {
            return Err(Rejection::new(
                RejectCode::InvalidCode,
                "MessageHeader.response.code is not ok, transient-error or fatal-error",
            ));
        }
    };
    let code = f.itk_code.map(|c| token(&c)).filter(|c| !c.is_empty());
    let level = match code.as_deref().and_then(|c| c.chars().next()) {
        Some('3') => AckLevel::Business,
        _ => AckLevel::Infrastructure,
    };
    Ok(AckInput {
        answers: AckRef::ItkMessage(answers.trim().to_owned()),
        ack: Ack {
            level,
            positive,
            code,
            // The code's display: a published meaning, capped.
            text: f.itk_display.map(|d| d.chars().take(200).collect()),
        },
    })
}

fn from_json(text: &str) -> Result<ResponseFields, Rejection> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        Rejection::new(
            RejectCode::InvalidJson,
            format!("not JSON ({:?} at line {})", e.classify(), e.line()),
        )
    })?;
    let resources: Vec<&Value> = v
        .get("entry")
        .and_then(Value::as_array)
        .map(|es| es.iter().filter_map(|e| e.get("resource")).collect())
        .unwrap_or_default();
    let of = |t: &str| {
        resources
            .iter()
            .copied()
            .find(|r| r.get("resourceType").and_then(Value::as_str) == Some(t))
    };
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let mut f = ResponseFields::default();
    if let Some(h) = of("MessageHeader") {
        // STU3: event is one Coding.
        f.event = s(h.pointer("/event/code"));
        f.answers = s(h.pointer("/response/identifier"));
        f.response_code = s(h.pointer("/response/code"));
    }
    if let Some(oo) = of("OperationOutcome") {
        let coding = oo
            .get("issue")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| i.pointer("/details/coding").and_then(Value::as_array))
            .flatten()
            .find(|c| c.get("system").and_then(Value::as_str) == Some(ITK_RESPONSE_CODES));
        if let Some(c) = coding {
            f.itk_code = s(c.get("code"));
            f.itk_display = s(c.get("display"));
        }
    }
    Ok(f)
}

fn from_xml(text: &str) -> Result<ResponseFields, Rejection> {
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(Rejection::new(
            RejectCode::InvalidBundle,
            "XML with a DTD is refused",
        ));
    }
    if nesting_deeper_than(text, MAX_XML_DEPTH) {
        return Err(Rejection::new(
            RejectCode::InvalidBundle,
            format!("XML nested deeper than {MAX_XML_DEPTH} elements is refused"),
        ));
    }
    let doc = roxmltree::Document::parse(text).map_err(|e| {
        Rejection::new(
            RejectCode::InvalidBundle,
            format!("not well-formed XML (at {})", e.pos()),
        )
    })?;
    let value = |n: roxmltree::Node<'_, '_>, path: &[&str]| -> Option<String> {
        let mut cur = n;
        for name in path {
            cur = cur.children().find(|c| c.has_tag_name(*name))?;
        }
        cur.attribute("value").map(str::to_owned)
    };
    let mut f = ResponseFields::default();
    if let Some(h) = doc.descendants().find(|n| n.has_tag_name("MessageHeader")) {
        f.event = value(h, &["event", "code"]);
        f.answers = value(h, &["response", "identifier"]);
        f.response_code = value(h, &["response", "code"]);
    }
    let coding = doc
        .descendants()
        .filter(|n| n.has_tag_name("OperationOutcome"))
        .flat_map(|oo| oo.descendants())
        .filter(|n| n.has_tag_name("coding"))
        .find(|c| value(*c, &["system"]).as_deref() == Some(ITK_RESPONSE_CODES));
    if let Some(c) = coding {
        f.itk_code = value(c, &["code"]);
        f.itk_display = value(c, &["display"]);
    }
    Ok(f)
}

/// Whether start tags nest deeper than `max`, in one linear pass over the
/// text. Over-counts rather than under-counts (a `<` inside a comment or
/// CDATA opens an element here), so a document it passes is no deeper.
fn nesting_deeper_than(text: &str, max: usize) -> bool {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'/') => {
                depth = depth.saturating_sub(1);
                i += 2;
            }
            Some(b'?' | b'!') => i += 2,
            _ => {
                // The tag ends at the next `>` (or a stray `<` starts another).
                let mut j = i + 1;
                while j < b.len() && b[j] != b'>' && b[j] != b'<' {
                    j += 1;
                }
                let self_closing = j < b.len() && b[j] == b'>' && b[j - 1] == b'/';
                if !self_closing {
                    depth += 1;
                    if depth > max {
                        return true;
                    }
                }
                i = j;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests;
