//! Opening, migrating and beginning units of work; cursors; retention.

use super::{Result, Tx};
use async_trait::async_trait;

#[async_trait]
pub trait StoreAdmin: Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> Result<()>;
    async fn begin(&self) -> Result<Box<dyn Tx>>;
    async fn ping(&self) -> Result<()>;
    async fn close(&self);

    async fn cursor(&self, source: &str) -> Result<Option<String>>;
    async fn inbox_count(&self, source: &str) -> Result<i64>;

    /// Deletes inbox rows processed before `inbox_before` and delivered outbox
    /// rows finished before `outbox_before`; returns `(inbox, outbox)` counts.
    async fn purge(&self, inbox_before: i64, outbox_before: i64) -> Result<(u64, u64)>;
}
