//! The `orders` step: orders keep their bookkeeping facts; shipping addresses and status
//! histories are masked, in batches under the service's 2 MB batch limit.

use azure_data_cosmos::TransactionalBatch;
use serde_json::Value;

use super::super::doc::{doc_id, kind, Doc};
use super::super::support::{batch_replace, param, scope_feed};
use super::super::CosmosStore;
use crate::domain::etag::new_etag;
use crate::domain::masking::{record_action, Entity, Masker, RecordAction};
use crate::store::erasure::BatchOutcome as StepOutcome;
use crate::store::StoreResult;

/// Bytes of documents one erasure batch writes at most (the service allows 2 MB per batch; the
/// rest is room for the progress marker and the request's framing).
pub(super) const BATCH_BYTES: usize = 1_500_000;

/// Masks an order's shipping address and status history in its JSON body (the serde form of
/// the order with `history` embedded): whether the address changed, how many history entries.
pub(super) fn mask_order(masker: &Masker, body: &mut Value) -> (bool, u64) {
    let address_changed = masker.mask_document(Entity::Order, body) > 0;
    let history_changed = body
        .get_mut("history")
        .and_then(Value::as_array_mut)
        .map_or(0, |changes| {
            changes
                .iter_mut()
                .map(|change| masker.mask_document(Entity::OrderStatusChange, change))
                .filter(|fields| *fields > 0)
                .count()
        });
    (address_changed, history_changed as u64)
}

impl CosmosStore {
    /// Orders keep their bookkeeping facts; the shipping address and the status history are
    /// masked. Walks the customer's orders by id from `after` (an order id).
    pub(super) async fn erasure_mask_orders(
        &self,
        tenant: &str,
        scope: &str,
        masker: &Masker,
        limit: usize,
        after: &str,
        mut batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        debug_assert_eq!(record_action(Entity::Order), RecordAction::Mask);
        let sql = format!(
            "SELECT TOP {limit} * FROM c WHERE c.type = @kind AND c.id > @after ORDER BY c.id"
        );
        let params = vec![
            param("@kind", kind::ORDER),
            param("@after", doc_id(kind::ORDER, after)),
        ];
        let orders: Vec<Doc<Value>> = self
            .query_docs(self.data(), scope_feed(tenant, scope), &sql, params)
            .await?;
        let fetched = orders.len();
        let prefix = doc_id(kind::ORDER, "");
        let mut walked = 0;
        let mut last = None;
        let mut history_changed = 0;
        let mut batch_bytes = 0;
        for mut order in orders {
            let (address_changed, history) = mask_order(masker, &mut order.body);
            if address_changed {
                // The address is part of the order clients see (its ETag changes); the
                // history is not (as in SQLite, where it is a table of its own).
                order.version = new_etag();
            }
            if address_changed || history > 0 {
                // A batch may carry at most 2 MB: large orders (100 lines) end it early.
                let size = serde_json::to_vec(&order).map_or(0, |bytes| bytes.len());
                if walked > 0 && batch_bytes + size > BATCH_BYTES {
                    break;
                }
                batch_bytes += size;
                batch = batch_replace(self, batch, &order)?;
            }
            history_changed += history;
            walked += 1;
            last = Some(
                order
                    .id
                    .strip_prefix(&prefix)
                    .unwrap_or(&order.id)
                    .to_owned(),
            );
        }
        let outcome = StepOutcome {
            counts: vec![
                ("orders", walked as u64),
                ("orderStatusHistory", history_changed),
            ],
            cursor: last.or_else(|| Some(after.to_owned())),
            done: fetched < limit && walked == fetched,
        };
        Ok((batch, outcome))
    }
}
