//! The delete steps (`idempotencyKeys`, `notifications`, `processedEvents`): the customer's
//! records of one type, deleted in batches.

use azure_data_cosmos::TransactionalBatch;
use serde::Deserialize;

use super::super::doc::kind;
use super::super::support::{batch_delete, param, scope_feed};
use super::super::CosmosStore;
use crate::domain::masking::Masker;
use crate::store::erasure::BatchOutcome as StepOutcome;
use crate::store::StoreResult;

/// Only the id of a document (queries of what to delete).
#[derive(Debug, Deserialize)]
pub(super) struct IdOnly {
    id: String,
}

/// The records of one delete step: their type and the filter naming the customer's ones.
pub(super) struct Deletion {
    kind: &'static str,
    filter: &'static str,
    table: &'static str,
}

pub(super) const IDEMPOTENCY_KEYS: Deletion = Deletion {
    kind: kind::IDEMPOTENCY,
    filter: "",
    table: "idempotencyKeys",
};

pub(super) const NOTIFICATIONS: Deletion = Deletion {
    kind: kind::NOTIFICATION,
    filter: " AND c.body.recipient.kind = 'customer' AND c.body.recipient.id = @customer",
    table: "notifications",
};

/// Markers of events that changed nothing name no customer (as in SQLite) and are kept.
pub(super) const PROCESSED_EVENTS: Deletion = Deletion {
    kind: kind::PROCESSED_EVENT,
    filter: " AND c.body.customerId = @customer",
    table: "processedEvents",
};

impl CosmosStore {
    /// Deletes up to `limit` of the customer's records of one type.
    pub(super) async fn erasure_delete_records(
        &self,
        tenant: &str,
        scope: &str,
        masker: &Masker,
        records: &Deletion,
        limit: usize,
        mut batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        let sql = format!(
            "SELECT TOP {limit} c.id FROM c WHERE c.type = @kind{}",
            records.filter
        );
        let mut params = vec![param("@kind", records.kind)];
        if records.filter.contains("@customer") {
            params.push(param("@customer", masker.customer_id()));
        }
        let found: Vec<IdOnly> = self
            .query_docs(self.data(), scope_feed(tenant, scope), &sql, params)
            .await?;
        for doc in &found {
            batch = batch_delete(batch, &doc.id, None);
        }
        Ok((
            batch,
            StepOutcome::deleted(records.table, found.len(), limit),
        ))
    }
}
