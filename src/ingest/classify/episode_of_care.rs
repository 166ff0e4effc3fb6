//! An `EpisodeOfCare`: a clinical team's episode with the patient. Only its
//! end matters here: a team that finishes the episode right after missed
//! appointments has closed the person's care by a DNA rule.

use super::elements::{nhs_field, parse_instant};
use super::*;
use crate::engine::command::EpisodeFinishedInput;

pub(super) fn episode_of_care(ep: Value, resolver: &Resolver) -> Result<Command, Rejection> {
    let status = str_at(&ep, "status").ok_or_else(|| {
        Rejection::new(
            RejectCode::MissingRequiredElement,
            "EpisodeOfCare.status is required",
        )
    })?;
    if status != "finished" {
        return Ok(Command::Ignore(format!(
            "EpisodeOfCare with status {status} is not acted on"
        )));
    }
    let key = identifiers(&ep)
        .into_iter()
        .next()
        .map(|(s, v)| format!("{s}|{v}"))
        .or_else(|| str_at(&ep, "id").map(|id| format!("EpisodeOfCare/{id}")))
        .ok_or_else(|| {
            Rejection::new(
                RejectCode::MissingRequiredElement,
                "EpisodeOfCare has neither identifier nor id",
            )
        })?;
    let patient_ref = ep.get("patient");
    let patient = patient_ref.and_then(|r| resolver.resolve(&ep, r));
    Ok(Command::EpisodeFinished(Box::new(EpisodeFinishedInput {
        key,
        nhs: nhs_field(patient, patient_ref),
        ended_at: parse_instant(ep.get("period").and_then(|p| str_at(p, "end"))),
    })))
}
