//! Employment outcomes and case assignment: stored, audited, and for a job
//! start or end published as an event (ids and codes only: the employer's
//! name stays in the store).

use super::{HandlerError, Outcome, audit, content_key, open_case, queue_event};
use crate::engine::command::{
    AssignInput, EmploymentStatusInput, InvalidInput, JobEndInput, JobStartInput,
};
use crate::engine::events::EventType;
use crate::engine::outcome::Applied;
use crate::engine::rejection::{RejectCode, Rejection};
use crate::engine::{Context, ms};
use crate::store::{AssignmentRow, JobRow, StatusRow, Tx};
use serde_json::json;
use time::OffsetDateTime;

fn invalid(what: &str, e: InvalidInput) -> HandlerError {
    HandlerError::Reject(Rejection::new(
        RejectCode::InvalidEmploymentRecord,
        format!("{what}: {}", e.summary()),
    ))
}

fn job_key(case_id: &str, job_id: &str) -> String {
    format!("{case_id}:id:{job_id}")
}

pub async fn job_start(
    tx: &mut dyn Tx,
    ctx: &Context,
    j: &JobStartInput,
    now: OffsetDateTime,
) -> Outcome {
    const KIND: &str = "job-start";
    j.validate(now.date())
        .map_err(|e| invalid("job start", e))?;
    let case = open_case(tx, &j.case_id).await?;
    let start = j.start_date.to_string();
    let hours = j.hours_per_week.map(|h| h.to_string()).unwrap_or_default();
    let key = match &j.job_id {
        Some(id) => job_key(&case.id, id),
        None => content_key(
            &case.id,
            &[
                &j.employer,
                &start,
                j.hours_band.code(),
                &hours,
                &j.paid.to_string(),
            ],
        ),
    };
    let row = JobRow {
        id: crate::engine::new_id(now),
        job_key: key,
        case_id: case.id.clone(),
        employer: j.employer.trim().to_owned(),
        started_on: start,
        hours_band: j.hours_band.code().to_owned(),
        hours_per_week: j.hours_per_week,
        paid: i64::from(j.paid),
        recorded_by: j.recorded_by.clone(),
        ended_on: None,
        end_reason: None,
        created_at: ms(now),
        updated_at: ms(now),
    };
    if !tx.job_insert(&row).await? {
        return Ok(Applied::Unchanged { kind: KIND });
    }
    audit(
        tx,
        ctx,
        "job.started",
        "case",
        &case.id,
        Some(format!("job={}", row.id)),
        now,
    )
    .await?;
    let body = json!({
        "case_id": case.id,
        "job_id": row.id,
        "start_date": row.started_on,
        "hours_band": row.hours_band,
        "paid": j.paid,
    });
    queue_event(tx, EventType::JobStarted, &row.id, &case.id, body, now).await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![],
    })
}

pub async fn job_end(
    tx: &mut dyn Tx,
    ctx: &Context,
    j: &JobEndInput,
    now: OffsetDateTime,
) -> Outcome {
    const KIND: &str = "job-end";
    j.validate(now.date()).map_err(|e| invalid("job end", e))?;
    let case = open_case(tx, &j.case_id).await?;
    // The job id is the sender's id, or the bridge's own (as the API shows it).
    let job = tx
        .job_find(&case.id, &job_key(&case.id, &j.job_id), &j.job_id)
        .await?;
    let Some(mut job) = job else {
        return Err(HandlerError::Reject(Rejection::new(
            RejectCode::UnknownJob,
            "no job with this job_id on this case",
        )));
    };
    let end = j.end_date.to_string();
    if job.ended_on.as_deref() == Some(end.as_str()) {
        return Ok(Applied::Unchanged { kind: KIND });
    }
    if end < job.started_on {
        return Err(HandlerError::Reject(Rejection::new(
            RejectCode::InvalidEmploymentRecord,
            "job end: end_date is before the job's start date",
        )));
    }
    job.ended_on = Some(end.clone());
    job.end_reason = j.reason.clone();
    job.updated_at = ms(now);
    tx.job_update_end(&job).await?;
    audit(
        tx,
        ctx,
        "job.ended",
        "case",
        &case.id,
        Some(format!("job={}", job.id)),
        now,
    )
    .await?;
    let body = json!({"case_id": case.id, "job_id": job.id, "end_date": end});
    queue_event(tx, EventType::JobEnded, &job.id, &case.id, body, now).await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![],
    })
}

pub async fn employment_status(
    tx: &mut dyn Tx,
    ctx: &Context,
    s: &EmploymentStatusInput,
    now: OffsetDateTime,
) -> Outcome {
    const KIND: &str = "employment-status";
    s.validate(now.date())
        .map_err(|e| invalid("employment status", e))?;
    let case = open_case(tx, &s.case_id).await?;
    let recorded = s.recorded_on.to_string();
    let started = s.start_date.map(|d| d.to_string());
    let band = s.hours_band.map(|b| b.code().to_owned());
    let row = StatusRow {
        id: crate::engine::new_id(now),
        status_key: content_key(
            &case.id,
            &[
                s.status.code(),
                &recorded,
                started.as_deref().unwrap_or(""),
                band.as_deref().unwrap_or(""),
            ],
        ),
        case_id: case.id.clone(),
        status: s.status.code().to_owned(),
        recorded_on: recorded,
        started_on: started,
        hours_band: band,
        recorded_by: s.recorded_by.clone(),
        created_at: ms(now),
    };
    if !tx.status_insert(&row).await? {
        return Ok(Applied::Unchanged { kind: KIND });
    }
    audit(
        tx,
        ctx,
        "employment-status.recorded",
        "case",
        &case.id,
        Some(format!("status={}", row.status)),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![],
    })
}

pub async fn assign(
    tx: &mut dyn Tx,
    ctx: &Context,
    a: &AssignInput,
    now: OffsetDateTime,
) -> Outcome {
    const KIND: &str = "case-assign";
    a.validate().map_err(|e| {
        HandlerError::Reject(Rejection::new(RejectCode::InvalidAssignment, e.summary()))
    })?;
    let case = open_case(tx, &a.case_id).await?;
    let before = tx
        .assignment_set(&AssignmentRow {
            case_id: case.id.clone(),
            specialist: a.specialist.clone(),
            assigned_by: a.assigned_by.clone(),
            assigned_at: ms(now),
        })
        .await?;
    if before.as_deref() == Some(a.specialist.as_str()) {
        return Ok(Applied::Unchanged { kind: KIND });
    }
    audit(
        tx,
        ctx,
        "case.assigned",
        "case",
        &case.id,
        Some(format!("specialist={}", a.specialist)),
        now,
    )
    .await?;
    Ok(Applied::Processed {
        kind: KIND,
        signals: vec![],
    })
}
