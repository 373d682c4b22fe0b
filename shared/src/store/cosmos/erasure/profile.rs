//! The `profile` step, the last: the customer's personal fields masked by the rules, status
//! `erased`, and their notification preferences deleted.

use azure_data_cosmos::TransactionalBatch;

use super::super::support::{batch_delete, batch_replace};
use super::super::CosmosStore;
use super::undecodable;
use crate::domain::etag::new_etag;
use crate::domain::masking::Masker;
use crate::domain::now;
use crate::store::erasure::BatchOutcome as StepOutcome;
use crate::store::{StoreError, StoreResult};

impl CosmosStore {
    /// The profile: personal fields masked by the rules, status `erased`.
    pub(super) async fn erasure_mask_profile(
        &self,
        tenant: &str,
        masker: &Masker,
        batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        let mut doc = self
            .customer_doc(tenant, masker.customer_id())
            .await?
            .ok_or(StoreError::NotFound)?;
        let customer = &mut doc.body;
        masker
            .mask_customer(customer)
            .map_err(|error| undecodable("masked customer address", &error))?;
        customer.updated_at = now();
        doc.version = new_etag();
        doc.body.etag = doc.version.clone();
        let batch = batch_replace(self, batch, &doc)?;
        let preferences = self.preferences_doc(tenant, masker.customer_id()).await?;
        let Some(preferences) = preferences else {
            return Ok((batch, StepOutcome::finished("customers", 1)));
        };
        let batch = batch_delete(batch, &preferences.id, preferences.cosmos_etag.as_deref());
        let mut outcome = StepOutcome::finished("customers", 1);
        outcome.counts.push(("notificationPreferences", 1));
        Ok((batch, outcome))
    }
}
