//! A versioned update met a newer version on the server (412), and the row
//! asked for the conflict to be handed back.
//!
//! Today's rule, for every kind of update: write the same change again on
//! top of the version the server holds now, a bounded number of times.
//! That is right for the updates the bridge makes (a status change such as
//! `superseded`, an `inactive` Flag): they set fields the bridge owns.
//! A flow whose updates need a real merge adds its own rule here, keyed on
//! the resource type.

use super::{Outcome, audit, queue};
use crate::engine::command::WriteConflict;
use crate::engine::outbox::{FhirUpdate, OutboxMessage};
use crate::engine::outcome::Applied;
use crate::engine::{Context, ms};
use crate::store::{Settlement, Tx};
use serde_json::Value;
use time::OffsetDateTime;

const KIND: &str = "write-conflict";
/// How many times one update is rebased before it is parked for a person.
const MAX_REBASES: u32 = 3;

pub async fn handle(
    tx: &mut dyn Tx,
    ctx: &Context,
    c: &WriteConflict,
    now: OffsetDateTime,
) -> Outcome {
    let rt = c.update.resource["resourceType"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    let id = c.update.resource["id"].as_str().unwrap_or("?").to_owned();
    let target = format!("{rt}/{id}");
    let rebases = c.update.rebases;
    let (Some(current), Some(version)) = (&c.current, &c.current_version) else {
        let error = format!("{target} is gone; the update was not written");
        return park(tx, ctx, c.outbox_id, error, (&rt, &id, "gone"), now).await;
    };
    if rebases >= MAX_REBASES {
        let error = format!("{target} kept changing under {MAX_REBASES} rebased updates");
        return park(
            tx,
            ctx,
            c.outbox_id,
            error,
            (&rt, &id, "too many rebases"),
            now,
        )
        .await;
    }
    let rebased = rebase(&c.update.resource, current);
    let next = OutboxMessage::FhirUpdate(FhirUpdate {
        resource: rebased,
        if_match: version.clone(),
        on_conflict: c.update.on_conflict,
        rebases: rebases + 1,
    });
    tx.outbox_settle_one(&Settlement::Done {
        id: c.outbox_id,
        at: ms(now),
        result: Some(format!("conflict: rebased onto version {version}")),
    })
    .await?;
    queue(
        tx,
        format!("fhir:update:{target}:v{version}:r{}", rebases + 1),
        &c.ordering_key,
        &next,
        now,
    )
    .await?;
    audit(
        tx,
        ctx,
        "write-conflict.rebased",
        &rt,
        &id,
        Some(format!("onto version {version}")),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![],
    })
}

/// Parks the row for a person, with the reason, and audits it.
async fn park(
    tx: &mut dyn Tx,
    ctx: &Context,
    outbox_id: i64,
    error: String,
    (rt, id, why): (&str, &str, &str),
    now: OffsetDateTime,
) -> Outcome {
    tx.outbox_settle_one(&Settlement::Failed {
        id: outbox_id,
        error,
    })
    .await?;
    audit(
        tx,
        ctx,
        "write-conflict.parked",
        rt,
        id,
        Some(why.into()),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![],
    })
}

/// The intended resource's top-level elements written over the current one:
/// the bridge's change wins for what it sets, the rest stays as it is now.
/// `meta` is the server's.
fn rebase(intended: &Value, current: &Value) -> Value {
    let mut out = current.clone();
    if let (Some(o), Some(i)) = (out.as_object_mut(), intended.as_object()) {
        for (k, v) in i {
            if k != "meta" {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    out
}
