//! IPS documents: drafts gathered over sessions, published versions with
//! their review, and the comments that came back.
//!
//! Written straight through in the unit of work: a command touches one or
//! two of these rows, and their unique keys (`source_key`, `comment_key`)
//! must answer at once so a repeated command makes nothing twice.

use super::Result;
use crate::domain::documents::delivery::DeliveryState;
use crate::domain::documents::{DocumentKind, ReviewStatus};
use async_trait::async_trait;
use serde::Serialize;

/// Whether a published version is the one in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum DocumentStatus {
    Current,
    Superseded,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl TryFrom<String> for DocumentStatus {
    type Error = super::StoreError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
            .map_err(|_| super::StoreError::Corrupt(format!("unknown document status {s:?}")))
    }
}

/// A stored kind code as the domain's enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StoredKind(pub DocumentKind);

impl TryFrom<String> for StoredKind {
    type Error = super::StoreError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
            .map(StoredKind)
            .map_err(|_| super::StoreError::Corrupt(format!("unknown document kind {s:?}")))
    }
}

/// A stored review status as the domain's enum; `None` for notes (never reviewed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StoredReview(pub Option<ReviewStatus>);

impl TryFrom<Option<String>> for StoredReview {
    type Error = super::StoreError;
    fn try_from(s: Option<String>) -> Result<Self> {
        match s {
            None => Ok(StoredReview(None)),
            Some(s) => s
                .parse()
                .map(|r| StoredReview(Some(r)))
                .map_err(|_| super::StoreError::Corrupt(format!("unknown review status {s:?}"))),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct DocumentRow {
    pub id: String,
    pub case_id: String,
    #[sqlx(try_from = "String")]
    pub kind: StoredKind,
    pub version: i64,
    pub source_key: String,
    pub title: String,
    pub author: String,
    #[sqlx(try_from = "String")]
    pub status: DocumentStatus,
    pub replaces_id: Option<String>,
    pub content_sha1: String,
    pub size: i64,
    pub created_at: i64,
    #[sqlx(try_from = "Option<String>")]
    pub review_status: StoredReview,
    pub review_due_at: Option<i64>,
    pub chases: i64,
    pub reviewed_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct CommentRow {
    pub id: String,
    pub document_id: String,
    pub case_id: String,
    pub comment_key: String,
    pub source: String,
    pub author: Option<String>,
    pub text: String,
    pub commented_at: i64,
    pub received_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct DraftRow {
    pub case_id: String,
    #[sqlx(try_from = "String")]
    pub kind: StoredKind,
    /// `domain::documents::Draft` as JSON.
    pub draft: String,
    pub updated_at: i64,
}

/// A stored delivery state as the domain's enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StoredDelivery(pub DeliveryState);

impl TryFrom<String> for StoredDelivery {
    type Error = super::StoreError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
            .map(StoredDelivery)
            .map_err(|_| super::StoreError::Corrupt(format!("unknown delivery state {s:?}")))
    }
}

/// A document sent (or meant to be sent) over MESH, and what came back.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, PartialEq)]
pub struct DeliveryRow {
    /// `mex-LocalID`: the bridge's business id for the send.
    pub local_id: String,
    pub document_id: String,
    pub case_id: String,
    /// The ITK3 message id (the MessageHeader's id) acknowledgements quote.
    pub itk_message_id: String,
    /// The patient's GP practice (ODS code), when known.
    pub recipient_ods: Option<String>,
    pub mailbox: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: StoredDelivery,
    pub delivered_before: bool,
    /// `infrastructure`, `business` or `mesh-report`: what set the code.
    pub ack_level: Option<String>,
    pub ack_code: Option<String>,
    pub ack_text: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Document writes and reads inside a unit of work.
#[async_trait]
pub trait DocumentTx: Send {
    async fn draft_get(&mut self, case_id: &str, kind: DocumentKind) -> Result<Option<String>>;
    async fn draft_put(
        &mut self,
        case_id: &str,
        kind: DocumentKind,
        draft: &str,
        now: i64,
    ) -> Result<()>;

    async fn document_get(&mut self, id: &str) -> Result<Option<DocumentRow>>;
    async fn document_by_source_key(&mut self, key: &str) -> Result<Option<DocumentRow>>;
    /// The highest version of a case's document of this kind.
    async fn document_latest(
        &mut self,
        case_id: &str,
        kind: DocumentKind,
    ) -> Result<Option<DocumentRow>>;
    async fn document_insert(&mut self, d: &DocumentRow) -> Result<()>;
    /// Writes `status`, `review_status`, `chases`, `reviewed_at` and `updated_at`.
    async fn document_update(&mut self, d: &DocumentRow) -> Result<()>;

    /// Records a comment; `false` when its `comment_key` is known.
    async fn comment_insert(&mut self, c: &CommentRow) -> Result<bool>;

    /// The patient's GP practice (ODS code) as the latest referral named it.
    async fn practice_of(&mut self, case_id: &str) -> Result<Option<String>>;
    async fn practice_set(&mut self, case_id: &str, ods: &str, now: i64) -> Result<()>;

    /// Keeps a rendered document that went to no FHIR server.
    async fn content_insert(&mut self, document_id: &str, xhtml: &str, now: i64) -> Result<()>;

    async fn delivery_insert(&mut self, d: &DeliveryRow) -> Result<()>;
    async fn delivery_by_local_id(&mut self, local_id: &str) -> Result<Option<DeliveryRow>>;
    async fn delivery_by_itk_id(&mut self, itk_message_id: &str) -> Result<Option<DeliveryRow>>;
    /// Writes `state`, `delivered_before`, the ack fields and `updated_at`.
    async fn delivery_update(&mut self, d: &DeliveryRow) -> Result<()>;
}

/// Document reads for the API, outside any unit of work.
#[async_trait]
pub trait DocumentReads: Send + Sync {
    async fn documents_for_case(&self, case_id: &str) -> Result<Vec<DocumentRow>>;
    async fn drafts_for_case(&self, case_id: &str) -> Result<Vec<DraftRow>>;
    async fn comments_for_case(&self, case_id: &str) -> Result<Vec<CommentRow>>;
    /// Reviews still awaited whose due date is before `now`, for the gauge.
    async fn reviews_overdue(&self, now: i64) -> Result<i64>;
    async fn deliveries_for_case(&self, case_id: &str) -> Result<Vec<DeliveryRow>>;
    /// The rendered XHTML the bridge kept (documents sent over MESH alone).
    async fn document_content(&self, document_id: &str) -> Result<Option<String>>;
    /// Deliveries by state, for the gauges.
    async fn delivery_counts(&self) -> Result<Vec<(String, i64)>>;
}
