//! A ServiceRequest: is it an IPS referral, who sent it, is it complete.

use super::elements::{
    content_hash, nhs_field, parse_code, parse_datetime, parse_instant, require,
};
use super::*;
use crate::domain::referral::{ClosureCause, ReferralVersion, RequestStatus};
use crate::domain::source::{self, RequesterKind};
use crate::ingest::bars::{BarsMessage, logical_id};
use fhir_sdk::r4b::codes;

pub(super) type InMessage<'m, 'a> = Option<(&'m BarsMessage<'a>, Option<&'a str>)>;

pub(super) fn referral(
    sr: Value,
    resolver: &Resolver,
    header: Option<&Value>,
    closure: Option<ClosureCause>,
    rules: &IntakeRules,
    bars: InMessage<'_, '_>,
) -> Result<Option<ReferralInput>, Rejection> {
    const RT: &str = "ServiceRequest";
    let status: codes::RequestStatus = parse_code(&sr, "status", RT)?;
    let _intent: codes::RequestIntent = parse_code(&sr, "intent", RT)?;
    let subject = require(&sr, "subject", RT, " (R4 cardinality 1..1)")?;
    if !is_ips_referral(&sr, header, rules) {
        return Ok(None);
    }
    let patient = resolver
        .resolve(&sr, subject)
        .filter(|p| str_at(p, "resourceType") == Some("Patient"));
    let nhs = nhs_field(patient, Some(subject));
    let (requester_kind, ods, org_types) = requester(&sr, resolver, header);
    let src = source::classify(requester_kind, ods.as_deref(), &org_types, &rules.sources);
    let key = identifiers(&sr)
        .into_iter()
        .next()
        .map(|(s, v)| format!("{s}|{v}"))
        .or_else(|| match bars {
            // In a BaRS message the id (or fullUrl UUID) is the requester's: scope it to them.
            Some((m, url)) => m.key(RT, &sr, url),
            None => str_at(&sr, "id").map(|id| format!("ServiceRequest/{id}")),
        })
        .ok_or_else(|| {
            Rejection::new(
                RejectCode::MissingRequiredElement,
                "ServiceRequest has neither identifier, id nor a urn:uuid fullUrl",
            )
        })?;
    let version = ReferralVersion {
        status: match status {
            codes::RequestStatus::Draft => RequestStatus::Draft,
            codes::RequestStatus::Active => RequestStatus::Active,
            codes::RequestStatus::OnHold => RequestStatus::OnHold,
            codes::RequestStatus::Completed => RequestStatus::Completed,
            codes::RequestStatus::Revoked => RequestStatus::Revoked,
            codes::RequestStatus::EnteredInError => RequestStatus::EnteredInError,
            _ => RequestStatus::Unknown,
        },
        source_updated_at: parse_instant(sr.get("meta").and_then(|m| str_at(m, "lastUpdated"))),
        nhs,
        patient_included: patient.is_some(),
        has_contact_route: patient
            .is_some_and(|p| has_content(p, "telecom") || has_content(p, "address")),
        has_reason: has_content(&sr, "reasonCode")
            || has_content(&sr, "reasonReference")
            || has_content(&sr, "note"),
        source: src,
        content_hash: content_hash(&[&sr, patient.unwrap_or(&Value::Null)]),
        closure,
        gp_practice: patient.and_then(|p| gp_practice(p, resolver)),
    };
    Ok(Some(ReferralInput {
        key,
        resource_ref: str_at(&sr, "id").map(|id| format!("ServiceRequest/{id}")),
        authored_at: parse_datetime(str_at(&sr, "authoredOn")),
        version,
        origin: bars.map(|(m, url)| m.origin(resolver, logical_id(&sr, url))),
        fhir_status: str_at(&sr, "status").unwrap_or("unknown").to_owned(),
        raw: sr.to_string(),
        feedback_appointment: None,
    }))
}

fn is_ips_referral(sr: &Value, header: Option<&Value>, rules: &IntakeRules) -> bool {
    let code_match = sr
        .get("code")
        .map(codings)
        .unwrap_or_default()
        .iter()
        .any(|(s, c)| s == SNOMED_SYSTEM && rules.snomed_codes.contains(c));
    let performer_match = array_at(sr, "performer").iter().any(|p| {
        let by_ref = str_at(p, "reference").and_then(relative_reference);
        let by_id = p.get("identifier").and_then(|i| {
            Some(format!(
                "{}|{}",
                normalise_system(str_at(i, "system")?),
                str_at(i, "value")?
            ))
        });
        rules
            .performer_references
            .iter()
            .any(|r| Some(r) == by_ref.as_ref() || Some(r) == by_id.as_ref())
    });
    let service_match = header.is_some_and(|h| {
        array_at(h, "destination")
            .iter()
            .filter_map(|d| str_at(d, "endpoint"))
            .any(|ep| {
                let id = match ep.split_once('|') {
                    Some((sys, id)) if normalise_system(sys) == DOS_SERVICE_ID_SYSTEM => id,
                    _ => return false,
                };
                rules.bars_service_ids.iter().any(|s| s == id.trim())
            })
    });
    code_match || performer_match || service_match
}

/// Who referred: the kind of requester, its ODS code and its organisation type codes.
fn requester(
    sr: &Value,
    resolver: &Resolver,
    header: Option<&Value>,
) -> (RequesterKind, Option<String>, Vec<String>) {
    let Some(req) = sr.get("requester") else {
        return (
            RequesterKind::Unknown,
            header_sender_ods(header, resolver),
            vec![],
        );
    };
    let resolved = resolver.resolve(sr, req);
    let kind = resolved
        .and_then(|r| str_at(r, "resourceType"))
        .or_else(|| str_at(req, "type"))
        .or_else(|| str_at(req, "reference").and_then(reference_type))
        .map(RequesterKind::from_resource_type)
        .unwrap_or(RequesterKind::Unknown);
    let org = match (kind, resolved) {
        (RequesterKind::Organization, Some(o)) => Some(o),
        (RequesterKind::PractitionerRole, Some(role)) => role
            .get("organization")
            .and_then(|o| resolver.resolve(role, o)),
        _ => None,
    };
    let ods = org
        .and_then(|o| identifier_value(o, ODS_SYSTEM))
        .or_else(|| {
            req.get("identifier")
                .and_then(|i| identifier_value(&serde_json::json!({"identifier": i}), ODS_SYSTEM))
        })
        .or_else(|| {
            resolved
                .and_then(|r| r.get("organization"))
                .and_then(|o| o.get("identifier"))
                .and_then(|i| identifier_value(&serde_json::json!({"identifier": i}), ODS_SYSTEM))
        })
        .or_else(|| header_sender_ods(header, resolver));
    let types = org
        .and_then(|o| o.get("type"))
        .map(codings)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    (kind, ods, types)
}

/// The patient's registered GP practice: `Patient.generalPractitioner`'s
/// Organization (in the bundle, or by its ODS identifier on the reference).
/// A Practitioner entry there names no practice and is skipped.
fn gp_practice(patient: &Value, resolver: &Resolver) -> Option<String> {
    array_at(patient, "generalPractitioner")
        .iter()
        .find_map(|gp| {
            let resolved = resolver.resolve(patient, gp);
            let is_org = resolved
                .and_then(|r| str_at(r, "resourceType"))
                .or_else(|| str_at(gp, "type"))
                .or_else(|| str_at(gp, "reference").and_then(reference_type))
                .is_none_or(|t| t == "Organization");
            if !is_org {
                return None;
            }
            resolved
                .and_then(|o| identifier_value(o, ODS_SYSTEM))
                .or_else(|| {
                    gp.get("identifier").and_then(|i| {
                        identifier_value(&serde_json::json!({"identifier": i}), ODS_SYSTEM)
                    })
                })
                .map(|ods| ods.trim().to_ascii_uppercase())
                .filter(|ods| {
                    (3..=10).contains(&ods.len()) && ods.chars().all(|c| c.is_ascii_alphanumeric())
                })
        })
}

fn header_sender_ods(header: Option<&Value>, resolver: &Resolver) -> Option<String> {
    let sender = header?.get("sender")?;
    resolver
        .resolve(header?, sender)
        .and_then(|o| identifier_value(o, ODS_SYSTEM))
        .or_else(|| {
            identifier_value(
                &serde_json::json!({"identifier": sender.get("identifier")?}),
                ODS_SYSTEM,
            )
        })
}
