//! Cosmos DB adapter of the outbox ([`OutboxStore`]). NOT YET BUILT: writes no records.

use chrono::{DateTime, Utc};

use super::CosmosStore;
use crate::domain::tenant::TenantId;
use crate::outbox::{FeedDocument, OutboxStore, RecordKey};
use crate::store::StoreResult;

#[async_trait::async_trait]
impl OutboxStore for CosmosStore {
    async fn pending_outbox(&self, _tenant: &TenantId) -> StoreResult<Vec<FeedDocument>> {
        Ok(Vec::new())
    }

    async fn acknowledge_relayed(&self, _records: &[RecordKey]) -> StoreResult<()> {
        Ok(())
    }

    async fn oldest_unrelayed(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(None)
    }

    async fn purge_expired_outbox(
        &self,
        _now: DateTime<Utc>,
        _dry_run: bool,
    ) -> StoreResult<Vec<(String, u64)>> {
        Ok(Vec::new())
    }
}
