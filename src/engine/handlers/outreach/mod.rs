//! Assertive outreach: after every appointment change, outreach contact,
//! timer or decision, assess the case against the discharge rules and open
//! or resolve its outreach episode (a Flag and a Task in the record, an
//! event for the team).
//!
//! One active episode per case (a partial unique index backs this). An
//! episode remembers what raised it (`trigger_key`: the rule and its latest
//! DNA, or its date), so a case whose flag was resolved by a successful
//! contact is not flagged again for the same DNAs; a later DNA run opens a
//! new episode. The bridge never closes a case because of DNAs.

pub mod attempt;
pub mod close;
pub mod closure;
mod records;

use super::{audit, queue, queue_event};
use crate::domain::outreach::{
    AppointmentFact, Attendance, CaseHistory, ClosureRisk, Fires, assess,
};
use crate::engine::command::TimerKind;
use crate::engine::events::EventType;
use crate::engine::outbox::{Amendment, FhirAmend, OutboxMessage};
use crate::engine::outcome::Signal;
use crate::engine::{Context, from_ms, ms, rfc3339};
use crate::store::{CaseRow, EpisodeRow, EpisodeStatus, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;

/// Why the case is being looked at again. Some causes resolve an active
/// episode whatever the rules say (the person was seen or reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "kebab-case")]
pub enum Cause {
    /// An appointment was recorded that was not attended (or not yet held).
    AppointmentChanged,
    /// An appointment of the case was attended.
    Attended,
    /// An outreach attempt reached the person.
    Contacted,
    /// A clinician or the specialist decided outreach is no longer needed.
    ClinicianDecision,
    /// The case was closed (with a reason, by a person).
    CaseClosed,
    /// A durable timer fell due (a date-based rule's warning starts).
    Timer,
}

impl Cause {
    /// Whether this cause resolves an active episode (its code is then the resolution).
    pub fn resolves(self) -> bool {
        matches!(
            self,
            Cause::Attended | Cause::Contacted | Cause::ClinicianDecision | Cause::CaseClosed
        )
    }
}

/// Reads the facts of a case as the domain sees them; a row that no longer
/// parses (written by a newer version) is skipped, not fatal.
pub(crate) async fn facts(
    tx: &mut dyn Tx,
    case_id: &str,
) -> Result<Vec<AppointmentFact>, StoreError> {
    Ok(tx
        .facts_for_case(case_id)
        .await?
        .iter()
        .filter_map(|f| serde_json::from_str(f).ok())
        .collect())
}

/// A case has just opened: nothing is known of it yet, so only a date rule
/// (`no_contact_for`) can apply; its warning is scheduled without reading
/// anything back (this runs for every new referral, on the ingest path).
pub(crate) async fn on_case_opened(
    tx: &mut dyn Tx,
    ctx: &Context,
    case: &CaseRow,
    now: OffsetDateTime,
) -> Result<Vec<Signal>, StoreError> {
    let history = CaseHistory {
        appointments: &[],
        last_contact: None,
        opened_at: from_ms(case.opened_at),
    };
    let assessment = assess(&history, &ctx.outreach.rules, now);
    if assessment.warning().is_some() {
        return reassess(tx, ctx, case, Cause::AppointmentChanged, now).await;
    }
    if let Some(at) = assessment.next_check {
        tx.timer_set(TimerKind::OutreachCheck.as_str(), &case.id, ms(at), "{}")
            .await?;
    }
    Ok(vec![])
}

/// Assesses `case` and opens or resolves its outreach episode.
pub(crate) async fn reassess(
    tx: &mut dyn Tx,
    ctx: &Context,
    case: &CaseRow,
    cause: Cause,
    now: OffsetDateTime,
) -> Result<Vec<Signal>, StoreError> {
    let mut signals = vec![];
    let active = tx.episode_active(&case.id).await?;
    if let Some(ep) = &active
        && cause.resolves()
    {
        resolve(tx, ctx, ep, cause.into(), now).await?;
        signals.push(Signal::OutreachResolved {
            resolution: cause.into(),
        });
    }
    if cause == Cause::CaseClosed {
        tx.timer_cancel(TimerKind::OutreachCheck.as_str(), &case.id)
            .await?;
        return Ok(signals);
    }
    let facts = facts(tx, &case.id).await?;
    let history = CaseHistory {
        appointments: &facts,
        last_contact: tx.last_contact(&case.id).await?.map(from_ms),
        opened_at: from_ms(case.opened_at),
    };
    let assessment = assess(&history, &ctx.outreach.rules, now);
    match assessment.next_check {
        Some(at) => {
            tx.timer_set(TimerKind::OutreachCheck.as_str(), &case.id, ms(at), "{}")
                .await?
        }
        None => {
            tx.timer_cancel(TimerKind::OutreachCheck.as_str(), &case.id)
                .await?
        }
    }
    let still_active = active.filter(|_| !cause.resolves());
    match (assessment.warning(), still_active) {
        (Some(risk), None) => {
            let trigger = trigger_key(risk, &facts);
            let latest = tx.episode_latest(&case.id).await?;
            if latest.is_some_and(|l| l.trigger_key == trigger) {
                // Resolved for these very DNAs already (contact, decision).
                return Ok(signals);
            }
            open(tx, ctx, case, risk, trigger, now).await?;
            signals.push(Signal::OutreachFlagged {
                rule: ctx.outreach.rule_label(&risk.rule_id),
            });
        }
        (None, Some(ep)) => {
            resolve(tx, ctx, &ep, "no-longer-at-risk", now).await?;
            signals.push(Signal::OutreachResolved {
                resolution: "no-longer-at-risk",
            });
        }
        _ => {}
    }
    Ok(signals)
}

/// What raised a warning: the rule and the latest DNA it counts (DNA rules),
/// or the date it fires (date rules). The same trigger never opens a second episode.
fn trigger_key(risk: &ClosureRisk, facts: &[AppointmentFact]) -> String {
    match risk.fires {
        Fires::On { at } => format!("{}:on:{}", risk.rule_id, ms(at)),
        _ => {
            let latest_dna = facts
                .iter()
                .filter(|f| f.attendance == Attendance::DidNotAttend)
                .max_by(|a, b| a.start.cmp(&b.start).then_with(|| a.key.cmp(&b.key)))
                .map(|f| f.key.as_str())
                .unwrap_or("none");
            format!("{}:dna:{}:{}", risk.rule_id, risk.dnas_counted, latest_dna)
        }
    }
}

/// When the specialist's Task is due: before the rule can fire, and no
/// later than the configured lead from now.
fn due_at(ctx: &Context, risk: &ClosureRisk, now: OffsetDateTime) -> OffsetDateTime {
    let lead = time::Duration::try_from(ctx.outreach.task_lead).unwrap_or(time::Duration::DAY);
    let by_lead = now + lead;
    let fires = match risk.fires {
        Fires::On { at } => Some(at),
        Fires::Met => Some(now),
        Fires::AtNextDna | Fires::AfterDnas { .. } => risk.next_appointment,
    };
    match fires {
        Some(f) if f < by_lead => f.max(now),
        _ => by_lead,
    }
}

async fn open(
    tx: &mut dyn Tx,
    ctx: &Context,
    case: &CaseRow,
    risk: &ClosureRisk,
    trigger_key: String,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let ep = EpisodeRow {
        id: crate::engine::new_id(now),
        case_id: case.id.clone(),
        rule_id: risk.rule_id.clone(),
        status: EpisodeStatus::Active,
        opened_at: ms(now),
        due_at: ms(due_at(ctx, risk, now)),
        risk: serde_json::to_string(risk).unwrap_or_default(),
        trigger_key,
        resolved_at: None,
        resolution: None,
        updated_at: ms(now),
    };
    tx.episode_insert(&ep).await?;
    let nhs = super::nhs_number_of(tx, case).await?;
    let rule_name = ctx.outreach.rule_name(&risk.rule_id);
    for msg in records::on_open(ctx, &ep, &nhs, &rule_name, now) {
        queue(tx, msg.dedupe_key, &case.id, &msg.message, now).await?;
    }
    queue_event(
        tx,
        EventType::OutreachFlagged,
        &ep.id,
        &case.id,
        json!({
            "case_id": case.id,
            "episode_id": ep.id,
            "rule_id": risk.rule_id,
            "fires": risk.fires,
            "dnas_counted": risk.dnas_counted,
            "due_at": rfc3339(from_ms(ep.due_at)),
        }),
        now,
    )
    .await?;
    audit(
        tx,
        ctx,
        EventType::OutreachFlagged.as_str(),
        "case",
        &case.id,
        Some(format!("episode={} rule={}", ep.id, risk.rule_id)),
        now,
    )
    .await
}

async fn resolve(
    tx: &mut dyn Tx,
    ctx: &Context,
    ep: &EpisodeRow,
    resolution: &'static str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.episode_resolve(&ep.id, ms(now), resolution).await?;
    let at = rfc3339(now);
    let amends = [
        (
            "Flag",
            records::flag_identifier(&ep.id),
            Amendment::FlagInactive {
                ended_at: at.clone(),
            },
        ),
        (
            "Task",
            records::task_identifier(&ep.id),
            Amendment::TaskCompleted { at: at.clone() },
        ),
    ];
    for (rt, value, change) in amends {
        let msg = OutboxMessage::FhirAmend(FhirAmend {
            resource_type: rt.into(),
            identifier_system: ctx.identifier_system.clone(),
            identifier_value: value.clone(),
            change,
        });
        queue(
            tx,
            format!("fhir-amend:{rt}:{value}"),
            &ep.case_id,
            &msg,
            now,
        )
        .await?;
    }
    queue_event(
        tx,
        EventType::OutreachResolved,
        &ep.id,
        &ep.case_id,
        json!({
            "case_id": ep.case_id,
            "episode_id": ep.id,
            "rule_id": ep.rule_id,
            "resolution": resolution,
        }),
        now,
    )
    .await?;
    audit(
        tx,
        ctx,
        EventType::OutreachResolved.as_str(),
        "case",
        &ep.case_id,
        Some(format!("episode={} resolution={resolution}", ep.id)),
        now,
    )
    .await
}
