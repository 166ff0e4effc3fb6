//! The record writes of an outreach episode: business identifiers and the
//! outbox messages that create its Flag and Task.

use crate::engine::outbox::{FhirCreate, OutboxMessage};
use crate::engine::{Context, from_ms, rfc3339};
use crate::store::EpisodeRow;
use time::OffsetDateTime;

pub(crate) fn flag_identifier(episode_id: &str) -> String {
    format!("outreach-flag-{episode_id}")
}

pub(crate) fn task_identifier(episode_id: &str) -> String {
    format!("outreach-task-{episode_id}")
}

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
            resource,
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
    let flag_id = flag_identifier(&ep.id);
    let spec = crate::render::outreach::EpisodeSpec {
        identifier_system: &ctx.identifier_system,
        flag_identifier: &flag_id,
        task_identifier: &task_identifier(&ep.id),
        nhs_number,
        service_ods: &ctx.service_ods,
        rule_name,
        opened_at: &rfc3339(now),
        due_at: &rfc3339(from_ms(ep.due_at)),
        coding: &ctx.outreach.flag,
    };
    vec![
        create(ctx, "Flag", flag_id.clone(), spec.flag()),
        create(ctx, "Task", task_identifier(&ep.id), spec.task()),
    ]
}
