//! The record writes of an outreach episode: business identifiers and the
//! outbox messages that create its Flag and Task.

use crate::engine::outbox::{FhirCreate, OutboxMessage};
use crate::engine::{Context, from_ms, rfc3339};
use crate::store::EpisodeRow;
use time::OffsetDateTime;

pub(crate) use crate::render::outreach::{flag_identifier, task_identifier};

/// An outbox message with its dedupe key.
pub(crate) struct Queued {
    pub dedupe_key: String,
    pub message: OutboxMessage,
}

fn create(ctx: &Context, rt: &str, value: String, resource: serde_json::Value) -> Queued {
    Queued {
        dedupe_key: format!("fhir:{rt}:{value}"),
        message: OutboxMessage::FhirCreate(FhirCreate {
            identifier_system: ctx.identifier_system.clone(),
            identifier_value: value,
            resource: resource.into(),
        }),
    }
}

/// The Flag (shown wherever the record is read) and the specialist's Task.
pub(crate) fn on_open(
    ctx: &Context,
    ep: &EpisodeRow,
    nhs_number: &str,
    rule_name: &str,
    now: OffsetDateTime,
) -> Vec<Queued> {
    let spec = crate::render::outreach::EpisodeSpec {
        identifier_system: &ctx.identifier_system,
        episode_id: &ep.id,
        nhs_number,
        service_ods: &ctx.service_ods,
        rule_name,
        opened_at: &rfc3339(now),
        due_at: &rfc3339(from_ms(ep.due_at)),
        coding: &ctx.outreach.flag,
    };
    vec![
        create(ctx, "Flag", flag_identifier(&ep.id), spec.flag()),
        create(ctx, "Task", task_identifier(&ep.id), spec.task()),
    ]
}

/// The `Communication` recording an outreach attempt, about the episode's
/// Flag when one was active. The note goes in as plain text.
pub(crate) fn communication(
    ctx: &Context,
    row: &crate::store::AttemptRow,
    a: &crate::engine::command::OutreachAttemptInput,
    nhs_number: &str,
) -> Queued {
    use crate::render::{CodedText, OutreachCommunication};
    let coded = |c: Option<(&str, &str)>, text: &str| CodedText {
        coding: c.map(|(code, display)| (code.to_owned(), display.to_owned())),
        text: text.to_owned(),
    };
    let attempted_at = rfc3339(from_ms(row.attempted_at));
    let comm = OutreachCommunication {
        identifier_system: &ctx.identifier_system,
        attempt_id: &row.id,
        nhs_number: Some(nhs_number),
        attempted_at: &attempted_at,
        flag_episode_id: row.episode_id.as_deref(),
        specialist: &a.specialist,
        specialist_identifier: None,
        medium: coded(a.method.preferred_contact_method(), a.method.medium_text()),
        outcome: coded(a.outcome.snomed(a.method), a.outcome.label()),
        note: a.note.as_deref(),
    };
    create(
        ctx,
        "Communication",
        comm.identifier_value(),
        comm.to_resource(),
    )
}
