//! The `consents` step: consent records in the customer's partition keep their proof (purpose,
//! decision, notice version, channel, time); the customer's id and their own subject as
//! recorder become the keyed pseudonym, in the step's batch.

use azure_data_cosmos::TransactionalBatch;
use serde_json::Value;

use super::super::doc::{kind, Doc};
use super::super::support::{batch_replace, param, scope_feed};
use super::super::CosmosStore;
use crate::domain::masking::{record_action, Entity, Masker, RecordAction};
use crate::store::erasure::BatchOutcome as StepOutcome;
use crate::store::StoreResult;

impl CosmosStore {
    /// Up to `limit` of the customer's consent records still naming them, masked in `batch`.
    pub(super) async fn erasure_mask_consents(
        &self,
        tenant: &str,
        scope: &str,
        masker: &Masker,
        limit: usize,
        mut batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        debug_assert_eq!(record_action(Entity::Consent), RecordAction::Mask);
        let sql = format!(
            "SELECT TOP {limit} * FROM c WHERE c.type = @kind AND c.body.customerId = @customer"
        );
        let records: Vec<Doc<Value>> = self
            .query_docs(
                self.data(),
                scope_feed(tenant, scope),
                &sql,
                vec![
                    param("@kind", kind::CONSENT),
                    param("@customer", masker.customer_id()),
                ],
            )
            .await?;
        let selected = records.len();
        for mut record in records {
            masker.mask_document(Entity::Consent, &mut record.body);
            batch = batch_replace(self, batch, &record)?;
        }
        Ok((
            batch,
            StepOutcome {
                counts: vec![("consents", selected as u64)],
                cursor: None,
                done: selected < limit,
            },
        ))
    }
}
