//! Reads for the API and reports: cases, referrals, the audit trail.

use super::{AuditRow, CaseRow, ReferralRow, Result};
use async_trait::async_trait;

#[async_trait]
pub trait Reads: Send + Sync {
    async fn case_get(&self, id: &str) -> Result<Option<CaseRow>>;
    async fn cases_list(&self, limit: i64, offset: i64) -> Result<Vec<CaseRow>>;
    async fn referrals_for_case(&self, case_id: &str) -> Result<Vec<ReferralRow>>;
    async fn referral_get(&self, id: &str) -> Result<Option<ReferralRow>>;
    async fn referral_by_key(&self, key: &str) -> Result<Option<ReferralRow>>;
    async fn referrals_in_state(&self, state: &str, limit: i64) -> Result<Vec<ReferralRow>>;
    async fn referral_state_counts(&self) -> Result<Vec<(String, i64)>>;
    /// When the longest-waiting referral in `state` was received (ms), if any.
    async fn referral_oldest_in_state(&self, state: &str) -> Result<Option<i64>>;
    async fn audit_for(&self, resource_id: &str) -> Result<Vec<AuditRow>>;
}
