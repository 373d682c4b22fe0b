//! Helpers the Cosmos DB adapter modules share: partition keys, feed scopes, audit documents,
//! batch building and keyset queries.

use azure_data_cosmos::{FeedScope, PartitionKey, TransactionalBatch};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::doc::{kind, Doc};
use super::{BatchOutcome, BatchRefused, CosmosStore, Param};
use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::store::{ts, Page, PageRequest, StoreError, StoreResult};

/// The full partition key of a document.
pub(crate) fn pk(tenant: &str, scope: &str) -> PartitionKey {
    PartitionKey::from((tenant.to_owned(), scope.to_owned()))
}

/// Every partition of one tenant (a prefix of the hierarchical key).
pub(crate) fn tenant_feed(tenant: &TenantId) -> FeedScope {
    tenant_prefix_feed(tenant.as_str())
}

/// [`tenant_feed`] of a tenant id read from a document.
pub(crate) fn tenant_prefix_feed(tenant: &str) -> FeedScope {
    FeedScope::partition(PartitionKey::from(tenant.to_owned()))
}

/// One logical partition.
pub(crate) fn scope_feed(tenant: &str, scope: &str) -> FeedScope {
    FeedScope::partition(pk(tenant, scope))
}

/// The stored form of an audit entry, in the partition of the write it records (so both go
/// in one batch).
pub(crate) fn audit_doc(entry: &AuditEntry, scope: &str) -> Doc<AuditEntry> {
    Doc::new(
        kind::AUDIT,
        &entry.id,
        &entry.tenant_id,
        scope,
        ts(entry.at),
        entry.clone(),
    )
    .with_at(entry.at)
}

/// Adds a document creation to a batch.
pub(crate) fn batch_create<T: Serialize>(
    store: &CosmosStore,
    batch: TransactionalBatch,
    doc: &Doc<T>,
) -> StoreResult<TransactionalBatch> {
    batch
        .create_item(doc)
        .map_err(|error| store.batch_error(error))
}

/// Adds a replacement (if-match on `_etag` when the document has one) to a batch.
pub(crate) fn batch_replace<T: Serialize>(
    store: &CosmosStore,
    batch: TransactionalBatch,
    doc: &Doc<T>,
) -> StoreResult<TransactionalBatch> {
    let options = doc.cosmos_etag.as_ref().map(|etag| {
        azure_data_cosmos::options::BatchReplaceOptions::default().with_precondition(
            azure_data_cosmos::options::Precondition::if_match(etag.clone()),
        )
    });
    batch
        .replace_item(doc.id.clone(), doc, options)
        .map_err(|error| store.batch_error(error))
}

/// Adds a deletion to a batch (if-match on `_etag` when given).
pub(crate) fn batch_delete(
    batch: TransactionalBatch,
    id: &str,
    cosmos_etag: Option<&str>,
) -> TransactionalBatch {
    let options = cosmos_etag.map(|etag| {
        azure_data_cosmos::options::BatchDeleteOptions::default().with_precondition(
            azure_data_cosmos::options::Precondition::if_match(etag.to_owned()),
        )
    });
    batch.delete_item(id.to_owned(), options)
}

/// A refused batch as a store error, when the caller has no better explanation: 409 is a
/// conflict, 412 a concurrent change (the caller may retry), 404 a missing document.
pub fn refused(refusal: BatchRefused) -> StoreError {
    match refusal.status {
        404 => StoreError::NotFound,
        409 => StoreError::Conflict(format!(
            "operation {} of the batch: a document with this id exists",
            refusal.index
        )),
        412 => StoreError::PreconditionFailed {
            current: crate::domain::etag::ETag::new(""),
        },
        status => StoreError::Unavailable {
            backend: super::BACKEND,
            reason: format!(
                "batch operation {} failed with status {status}",
                refusal.index
            ),
        },
    }
}

/// Operations one transactional batch may hold.
pub(crate) const MAX_BATCH_OPERATIONS: usize = 100;

/// How often a write re-reads and retries after a concurrent change of the same document.
pub(crate) const CONCURRENCY_ATTEMPTS: usize = 5;

/// A document that kept changing under a write: the caller may retry.
pub(crate) fn busy(what: &str) -> StoreError {
    StoreError::Conflict(format!(
        "the {what} kept changing while it was being written; retry"
    ))
}

/// One try of a read-modify-write: done, or refused by a concurrent change (read and try again).
pub(crate) enum Attempt<T> {
    Done(T),
    Again,
}

/// The attempt for a batch outcome: a refusal caused by someone changing (412), creating (409)
/// or removing (404) a document the plan relied on is worth planning again.
pub(crate) fn attempt_of<T>(outcome: BatchOutcome, value: T) -> StoreResult<Attempt<T>> {
    match outcome {
        Ok(_) => Ok(Attempt::Done(value)),
        Err(refusal) if matches!(refusal.status, 404 | 409 | 412) => Ok(Attempt::Again),
        Err(refusal) => Err(refused(refusal)),
    }
}

/// Direction of a keyset listing over `(sortKey, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Newest first.
    Descending,
    /// Oldest first.
    Ascending,
}

/// A keyset page over documents of one type: `filter` is extra SQL (`AND ...`, using `params`),
/// `query_name` names the listing and its filters for the continuation token.
pub(crate) struct KeysetQuery<'a> {
    pub kind: &'a str,
    pub filter: String,
    pub params: Vec<Param>,
    pub order: Order,
    pub query_name: &'a str,
}

impl CosmosStore {
    /// Runs a read-modify-write batch on the data container: `true` when applied, `false` when
    /// a document changed since it was read (412: read again and retry); other refusals fail.
    pub(crate) async fn commit_unless_changed(
        &self,
        batch: TransactionalBatch,
    ) -> StoreResult<bool> {
        match self.run_batch(self.data(), batch).await? {
            Ok(_) => Ok(true),
            Err(refusal) if refusal.status == 412 => Ok(false),
            Err(refusal) => Err(refused(refusal)),
        }
    }

    /// Reads one page of a keyset listing of a tenant's records, in `(sortKey, id)` order.
    pub(crate) async fn keyset_page<T: DeserializeOwned + Send + 'static>(
        &self,
        tenant: &TenantId,
        query: KeysetQuery<'_>,
        page: &PageRequest,
    ) -> StoreResult<Page<T>> {
        let docs: Page<Doc<T>> = self.keyset_docs(tenant, query, page).await?;
        Ok(Page {
            items: docs.items.into_iter().map(|doc| doc.body).collect(),
            continuation: docs.continuation,
        })
    }

    /// [`Self::keyset_page`], keeping the envelopes (for their versions).
    pub(crate) async fn keyset_docs<T: DeserializeOwned + Send + 'static>(
        &self,
        tenant: &TenantId,
        query: KeysetQuery<'_>,
        page: &PageRequest,
    ) -> StoreResult<Page<Doc<T>>> {
        let (after_key, after_id) = crate::store::paging::after(page, query.query_name)?;
        let (comparison, direction) = match query.order {
            Order::Descending => ("<", "DESC"),
            Order::Ascending => (">", "ASC"),
        };
        let limit = page.limit + 1;
        let mut params = query.params;
        params.push(("@tenant", json!(tenant.as_str())));
        params.push(("@kind", json!(query.kind)));
        let position = match (after_key, after_id) {
            (Some(key), Some(id)) => {
                params.push(("@afterKey", json!(key)));
                params.push(("@afterId", json!(id)));
                format!(" AND (c.sortKey {comparison} @afterKey OR (c.sortKey = @afterKey AND c.id {comparison} @afterId))")
            }
            _ => String::new(),
        };
        let sql = format!(
            "SELECT TOP {limit} * FROM c WHERE c.tenantId = @tenant AND c.type = @kind{filter}{position} ORDER BY c.sortKey {direction}, c.id {direction}",
            filter = query.filter
        );
        let docs: Vec<Doc<T>> = self
            .query_docs(self.data(), tenant_feed(tenant), &sql, params)
            .await?;
        Ok(crate::store::paging::into_page(
            docs,
            page,
            query.query_name,
            |doc| (doc.sort_key.clone(), doc.id.clone()),
        ))
    }
}

/// A JSON value for a query parameter.
pub fn param(name: &'static str, value: impl Serialize) -> Param {
    (name, serde_json::to_value(value).unwrap_or(Value::Null))
}
