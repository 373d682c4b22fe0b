//! Cosmos DB adapter of the outbox ([`OutboxStore`]).
//!
//! An outbox record is a [`Doc`] of type `outbox` ([`crate::outbox::DOC_TYPE`]), id
//! `outbox:{uuid}`, whose body is the [`OutboxMessage`]; `sortKey` and `at` are the message's
//! creation time (fixed-width UTC), `ttl` the store's outbox TTL
//! ([`super::CosmosOptions::outbox_ttl`]). It is created in the transactional batch of the
//! change it announces ([`CosmosStore::batch_outbox`]), so it shares that change's logical
//! partition, and it is never updated (an update would restart its TTL and send it through
//! the change feed again). The change feed delivers it as a [`FeedDocument`] (the envelope's
//! `id`, `tenantId`, `scope`, `type`, `ttl` and `body`; the other fields are ignored).
//!
//! Reads: [`OutboxStore::pending_outbox`] is a query over the tenant's partitions (a prefix of
//! the hierarchical key) ordered by `(sortKey, id)`: each partition's records in the order of
//! their creation times, which is their commit order except for two batches of one partition
//! racing within the time between taking their `now()` and committing (the change feed itself
//! always delivers in commit order). [`OutboxStore::oldest_unrelayed`] is a cross-partition
//! `TOP 1 ... ORDER BY c.sortKey` over the whole container (a streaming `ORDER BY`, which the
//! SDK merges across partitions; no aggregate, which it refuses across partitions).

use azure_data_cosmos::{FeedScope, TransactionalBatch};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::doc::{kind, record_id_of, Doc};
use super::support::{batch_create, param, pk, tenant_feed};
use super::CosmosStore;
use crate::domain::tenant::TenantId;
use crate::domain::validation::new_id;
use crate::outbox::{FeedDocument, OutboxMessage, OutboxStore, RecordKey};
use crate::store::{ts, StoreResult};

/// Deletes in flight at once while acknowledging records.
const ACKNOWLEDGE_CONCURRENCY: usize = 16;

impl CosmosStore {
    /// The outbox record of `message` in the partition `tenant`/`scope` (a new id).
    pub(super) fn outbox_doc(
        &self,
        tenant: &str,
        scope: &str,
        message: &OutboxMessage,
    ) -> Doc<OutboxMessage> {
        Doc::new(
            kind::OUTBOX,
            &new_id(),
            tenant,
            scope,
            ts(message.created_at),
            message.clone(),
        )
        .with_at(message.created_at)
        .with_ttl(Some(self.outbox_ttl_seconds()))
    }

    /// Adds the creation of `message`'s outbox record to a batch of the partition
    /// `tenant`/`scope` (the batch's own partition: one operation more).
    pub(super) fn batch_outbox(
        &self,
        batch: TransactionalBatch,
        tenant: &str,
        scope: &str,
        message: &OutboxMessage,
    ) -> StoreResult<TransactionalBatch> {
        batch_create(self, batch, &self.outbox_doc(tenant, scope, message))
    }
}

#[async_trait::async_trait]
impl OutboxStore for CosmosStore {
    async fn pending_outbox(&self, tenant: &TenantId) -> StoreResult<Vec<FeedDocument>> {
        self.query_docs(
            self.data(),
            tenant_feed(tenant),
            "SELECT * FROM c WHERE c.tenantId = @tenant AND c.type = @kind ORDER BY c.sortKey, c.id",
            vec![param("@tenant", tenant.as_str()), param("@kind", kind::OUTBOX)],
        )
        .await
    }

    /// Deletes each record in its partition; one already gone is fine. A key that names no
    /// outbox record is skipped (only outbox records can be acknowledged, as in SQLite).
    async fn outbox_feed(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Vec<(String, FeedDocument)>> {
        let (key, id) = after
            .as_deref()
            .and_then(|position| position.split_once('\n'))
            .map_or((String::new(), String::new()), |(key, id)| {
                (key.to_owned(), id.to_owned())
            });
        let rows: Vec<serde_json::Value> = self
            .query_docs(
                self.data(),
                FeedScope::full_container(),
                &format!(
                    "SELECT TOP {limit} * FROM c WHERE c.type = @kind AND (c.sortKey > @key OR (c.sortKey = @key AND c.id > @id)) ORDER BY c.sortKey, c.id"
                ),
                vec![
                    param("@kind", kind::OUTBOX),
                    param("@key", key.as_str()),
                    param("@id", id.as_str()),
                ],
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let position = format!("{}\n{}", row["sortKey"].as_str()?, row["id"].as_str()?);
                serde_json::from_value::<FeedDocument>(row)
                    .ok()
                    .map(|document| (position, document))
            })
            .collect())
    }

    async fn acknowledge_relayed(&self, records: &[RecordKey]) -> StoreResult<()> {
        let outbox: Vec<RecordKey> = records
            .iter()
            .filter(|key| record_id_of(kind::OUTBOX, &key.id).is_some())
            .cloned()
            .collect();
        futures::stream::iter(outbox)
            .map(|key| async move {
                self.delete_doc(self.data(), pk(&key.tenant_id, &key.scope), &key.id, None)
                    .await
            })
            .buffer_unordered(ACKNOWLEDGE_CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    async fn oldest_unrelayed(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let oldest: Vec<DateTime<Utc>> = self
            .query_docs(
                self.data(),
                FeedScope::full_container(),
                "SELECT TOP 1 VALUE c.body.createdAt FROM c WHERE c.type = @kind ORDER BY c.sortKey",
                vec![param("@kind", kind::OUTBOX)],
            )
            .await?;
        Ok(oldest.into_iter().min())
    }

    /// Nothing to do: Cosmos DB removes an outbox record itself once its `ttl` ran out (the
    /// container's default TTL is on, with no default), so there is never anything to purge
    /// or count here.
    async fn purge_expired_outbox(
        &self,
        _now: DateTime<Utc>,
        _dry_run: bool,
    ) -> StoreResult<Vec<(String, u64)>> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::GDPR_REQUESTS_QUEUE;

    fn message(at: DateTime<Utc>) -> OutboxMessage {
        OutboxMessage {
            message_id: "r-1".into(),
            destination: GDPR_REQUESTS_QUEUE.into(),
            body: r#"{"requestId":"r-1"}"#.into(),
            content_type: "application/json".into(),
            correlation_id: Some("corr".into()),
            properties: [("tenantId".to_owned(), "t1".to_owned())].into(),
            created_at: at,
        }
    }

    fn doc(at: DateTime<Utc>) -> Doc<OutboxMessage> {
        Doc::new(
            kind::OUTBOX,
            "u-1",
            "t1",
            "customer:c-1",
            ts(at),
            message(at),
        )
        .with_at(at)
        .with_ttl(Some(604_800))
    }

    #[test]
    fn an_outbox_document_is_what_the_relay_reads_from_the_change_feed() {
        let at = crate::domain::now();
        let stored = serde_json::to_value(doc(at)).unwrap();
        let read: FeedDocument = serde_json::from_value(stored.clone()).unwrap();
        assert!(read.is_outbox());
        assert_eq!(
            read.key(),
            RecordKey {
                id: "outbox:u-1".into(),
                tenant_id: "t1".into(),
                scope: "customer:c-1".into()
            }
        );
        assert_eq!(read.ttl, Some(604_800));
        assert_eq!(read.message().unwrap(), message(at));
        let expected =
            FeedDocument::outbox("outbox:u-1", "t1", "customer:c-1", 604_800, &message(at));
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::to_value(expected).unwrap()
        );
        assert_eq!(stored["sortKey"], ts(at));
        assert_eq!(stored["at"], ts(at));
    }

    #[cfg(feature = "cosmos-emulator")]
    #[tokio::test]
    async fn the_lag_spans_tenants_and_only_outbox_records_are_acknowledged() {
        use crate::store::cosmos::doc::{CATALOG_SCOPE, TENANT_SCOPE};
        use crate::store::cosmos::fixtures::put;
        use crate::store::cosmos::{in_memory, CosmosOptions};
        let store = in_memory(CosmosOptions::for_emulator(), Vec::new())
            .await
            .unwrap()
            .store;
        let now = crate::domain::now();
        let older = now - chrono::Duration::minutes(5);
        let newer = store.outbox_doc("t1", TENANT_SCOPE, &message(now));
        let oldest = store.outbox_doc("t2", CATALOG_SCOPE, &message(older));
        assert_eq!(newer.ttl, Some(crate::outbox::DEFAULT_TTL.as_secs() as i64));
        put(&store, &newer).await;
        put(&store, &oldest).await;
        assert_eq!(store.oldest_unrelayed().await.unwrap(), Some(older));
        let other = Doc::new(
            kind::AUDIT,
            "a-1",
            "t2",
            CATALOG_SCOPE,
            ts(now),
            message(now),
        );
        put(&store, &other).await;
        let key = |doc: &Doc<OutboxMessage>| RecordKey {
            id: doc.id.clone(),
            tenant_id: doc.tenant_id.clone(),
            scope: doc.scope.clone(),
        };
        store
            .acknowledge_relayed(&[key(&oldest), key(&other)])
            .await
            .unwrap();
        assert_eq!(store.oldest_unrelayed().await.unwrap(), Some(now));
        let left: Option<Doc<OutboxMessage>> = store
            .read_doc(store.data(), pk("t2", CATALOG_SCOPE), &other.id)
            .await
            .unwrap();
        assert!(left.is_some(), "not an outbox record: kept");
        assert!(store
            .purge_expired_outbox(now + chrono::Duration::days(30), false)
            .await
            .unwrap()
            .is_empty());
    }
}
