//! Polls the FHIR server for ServiceRequests and Appointments.
//!
//! For each resource type, with a cursor of its own (a burst of
//! Appointments must not move the ServiceRequests' cursor past referrals not
//! yet read): reads `_lastUpdated=ge{cursor - overlap}` sorted by
//! `_lastUpdated`, following `next` links as given. Each page is applied in
//! one transaction together with the advanced cursor, so a crash re-reads at
//! most one page, and the overlap re-reads (for clock skew and late commits)
//! are absorbed by inbox dedupe on `{Type}/{id}/_history/{version}`. A
//! rest-hook notification (`POST /fhir/notify`) wakes the poller at once.

use super::{FhirClient, FhirError};
use crate::config::PolledResource;
use crate::engine::{Applied, Engine, Inbound, Source};
use crate::ingest::Reading;
use crate::ingest::classify::{
    classify_polled_appointment, classify_polled_document_input, classify_polled_referral,
};
use crate::ingest::fhir_view::{Resolver, reference_type, relative_reference, str_at};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The ServiceRequests' cursor (kept under its original name).
pub const CURSOR_KEY: &str = PolledResource::ServiceRequest.cursor_key();

/// What the poller does per resource type: what to fetch beside each
/// resource, and how to classify it.
trait Polled {
    fn related(self, res: &Value) -> Vec<String>;
    fn classify(
        self,
        res: Value,
        fetched: &Resolver,
        reading: &Reading,
    ) -> Result<crate::engine::Command, crate::engine::rejection::Rejection>;
}

impl Polled for PolledResource {
    /// References worth fetching so a polled resource is as complete as one
    /// arriving in a BaRS bundle: a referral's patient and requester; an
    /// appointment's patient (its NHS number), organisations and locations
    /// (what discharge rules match on).
    fn related(self, res: &Value) -> Vec<String> {
        let refs: Vec<&str> = match self {
            PolledResource::ServiceRequest => ["subject", "requester"]
                .iter()
                .filter_map(|k| res[*k]["reference"].as_str())
                .collect(),
            PolledResource::Appointment => res["participant"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["actor"]["reference"].as_str())
                .filter(|r| {
                    matches!(
                        reference_type(r),
                        Some("Patient" | "Organization" | "Location")
                    )
                })
                .collect(),
            // The subject's NHS number, when only a reference is given.
            PolledResource::QuestionnaireResponse => {
                res["subject"]["reference"].as_str().into_iter().collect()
            }
            PolledResource::Task | PolledResource::Communication => vec![],
        };
        refs.into_iter()
            .filter(|r| !r.starts_with('#'))
            .filter_map(relative_reference)
            .collect()
    }

    fn classify(
        self,
        res: Value,
        fetched: &Resolver,
        reading: &Reading,
    ) -> Result<crate::engine::Command, crate::engine::rejection::Rejection> {
        match self {
            PolledResource::ServiceRequest => {
                classify_polled_referral(res, fetched, &reading.rules)
            }
            PolledResource::Appointment => classify_polled_appointment(res, fetched),
            PolledResource::QuestionnaireResponse
            | PolledResource::Task
            | PolledResource::Communication => {
                classify_polled_document_input(res, fetched, &reading.rules)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("{0}")]
    Fhir(#[from] FhirError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("FHIR server returned something that is not a searchset Bundle")]
    NotABundle,
}

pub struct Poller {
    pub engine: Engine,
    pub reading: Arc<Reading>,
    pub fhir: Arc<FhirClient>,
    pub interval: Duration,
    pub overlap: Duration,
    pub page_size: u32,
    /// What to poll, in this order, each with its own cursor.
    pub resources: Vec<PolledResource>,
    pub wake: Arc<Notify>,
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReport {
    pub pages: usize,
    pub resources: usize,
    /// Resources not seen before (re-reads of the overlap are not counted).
    pub new: usize,
}

impl Poller {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.poll_once().await {
                Ok(r) if r.new > 0 => {
                    tracing::info!(pages = r.pages, new = r.new, "polled the FHIR server")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "poll failed; will try again"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Polls each configured resource type; the report sums them.
    pub async fn poll_once(&self) -> Result<PollReport, PollError> {
        let mut total = PollReport::default();
        for &res in &self.resources {
            let r = self.poll_resource(res).await?;
            total.pages += r.pages;
            total.resources += r.resources;
            total.new += r.new;
        }
        Ok(total)
    }

    /// Reads every page of one type from its cursor on; each page commits
    /// with its cursor.
    pub async fn poll_resource(&self, kind: PolledResource) -> Result<PollReport, PollError> {
        let cursor_key = kind.cursor_key();
        let rt = kind.as_str();
        let cursor = self.engine.store.cursor(cursor_key).await?;
        let since = cursor
            .as_deref()
            .and_then(|c| OffsetDateTime::parse(c, &Rfc3339).ok())
            .map(|t| t - self.overlap)
            .and_then(|t| t.format(&Rfc3339).ok());
        let mut query = format!("{rt}?_sort=_lastUpdated&_count={}", self.page_size);
        if let Some(s) = since {
            // `+` in an offset must be escaped or servers read it as a space.
            query.push_str(&format!("&_lastUpdated=ge{}", s.replace('+', "%2B")));
        }
        let mut next = Some(query);
        let mut report = PollReport::default();
        let mut max_seen = cursor;
        while let Some(url) = next.take() {
            let bundle = self.fhir.get(&url).await?;
            if str_at(&bundle, "resourceType") != Some("Bundle") {
                return Err(PollError::NotABundle);
            }
            let mut inbounds = Vec::new();
            let mut cache: HashMap<String, Option<Value>> = HashMap::new();
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                let sr = &entry["resource"];
                if str_at(sr, "resourceType") != Some(rt) {
                    continue; // included resources, OperationOutcomes
                }
                let id = str_at(sr, "id").unwrap_or_default();
                let version = sr["meta"]["versionId"].as_str().unwrap_or("0");
                if let Some(lu) = sr["meta"]["lastUpdated"].as_str()
                    && later(lu, max_seen.as_deref())
                {
                    max_seen = Some(lu.to_owned());
                }
                let related = self.fetch_related(kind.related(sr), &mut cache).await?;
                let mut resolver = Resolver::default();
                for r in &related {
                    if let Some(Some(res)) = cache.get(r) {
                        resolver.add(None, res);
                    }
                }
                inbounds.push(Inbound {
                    source: Source::FhirPoll,
                    message_id: format!("{rt}/{id}/_history/{version}"),
                    received_at: self.engine.now(),
                    command: kind.classify(sr.clone(), &resolver, &self.reading),
                });
            }
            report.pages += 1;
            report.resources += inbounds.len();
            let results = self
                .engine
                .execute(&inbounds, max_seen.as_deref().map(|c| (cursor_key, c)))
                .await?;
            report.new += results
                .iter()
                .filter(|r| !matches!(r, Applied::Duplicate))
                .count();
            for (m, r) in inbounds.iter().zip(&results) {
                if let Applied::Rejected(rej) = r {
                    // Polled resources have no dead-letter queue: the reason is logged and counted.
                    tracing::warn!(message_id = %m.message_id, code = rej.code.as_str(), reason = %rej.reason, "polled resource rejected");
                }
            }
            next = bundle["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| str_at(l, "relation") == Some("next"))
                .and_then(|l| str_at(l, "url"))
                .map(str::to_owned);
        }
        Ok(report)
    }

    /// Fetches (into `cache`) the resources `wanted` names, and the
    /// Organization of a PractitionerRole among them. Returns the references
    /// fetched.
    async fn fetch_related(
        &self,
        mut wanted: Vec<String>,
        cache: &mut HashMap<String, Option<Value>>,
    ) -> Result<Vec<String>, FhirError> {
        let mut related = Vec::new();
        while let Some(reference) = wanted.pop() {
            if !cache.contains_key(&reference) {
                let fetched = self.fhir.read(&reference).await?.map(|v| v.body);
                cache.insert(reference.clone(), fetched);
            }
            if let Some(Some(res)) = cache.get(&reference)
                && str_at(res, "resourceType") == Some("PractitionerRole")
                && let Some(org) = res["organization"]["reference"]
                    .as_str()
                    .and_then(relative_reference)
            {
                wanted.push(org);
            }
            related.push(reference);
        }
        Ok(related)
    }
}

fn later(candidate: &str, current: Option<&str>) -> bool {
    let parse = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
    match (parse(candidate), current.and_then(parse)) {
        (Some(c), Some(cur)) => c > cur,
        (Some(_), None) => true,
        _ => false,
    }
}
