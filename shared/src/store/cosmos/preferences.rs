//! Cosmos DB adapter of [`PreferenceStore`]: one document per customer
//! (`notificationPreferences:{customerId}`) in the customer's partition, written in one
//! transactional batch with its audit entry and the customer's document rewritten unchanged
//! (if-match on its `_etag`, so an erasure requested meanwhile refuses the write).

use azure_data_cosmos::TransactionalBatch;

use super::doc::{customer_scope, doc_id, kind, Doc};
use super::support::{audit_doc, batch_create, batch_replace, busy, pk, CONCURRENCY_ATTEMPTS};
use super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::customer::CustomerStatus;
use crate::domain::etag::new_etag;
use crate::domain::now;
use crate::domain::preferences::{Preferences, DEFAULT_ETAG};
use crate::domain::rejection::Rejection;
use crate::domain::tenant::TenantId;
use crate::store::{check_if_match, ts, IfMatch, PreferenceStore, StoreError, StoreResult};

fn preferences_doc(tenant: &str, preferences: &Preferences) -> Doc<Preferences> {
    let at = preferences.updated_at.unwrap_or_else(now);
    Doc::new(
        kind::PREFERENCES,
        &preferences.customer_id,
        tenant,
        customer_scope(&preferences.customer_id),
        ts(at),
        preferences.clone(),
    )
    .with_version(preferences.etag.clone())
    .with_at(at)
}

impl CosmosStore {
    /// The customer's preferences document (its API ETag filled in), if they set any.
    pub(super) async fn preferences_doc(
        &self,
        tenant: &str,
        customer_id: &str,
    ) -> StoreResult<Option<Doc<Preferences>>> {
        let doc: Option<Doc<Preferences>> = self
            .read_doc(
                self.data(),
                pk(tenant, &customer_scope(customer_id)),
                &doc_id(kind::PREFERENCES, customer_id),
            )
            .await?;
        Ok(doc.map(|mut doc| {
            doc.body.etag = doc.version.clone();
            doc.body = doc.body.completed();
            doc
        }))
    }

    /// The preferences dispatch goes by: the stored ones, or the defaults.
    pub(super) async fn preferences_or_defaults(
        &self,
        tenant: &str,
        customer_id: &str,
    ) -> StoreResult<Preferences> {
        Ok(self
            .preferences_doc(tenant, customer_id)
            .await?
            .map_or_else(|| Preferences::defaults(customer_id), |doc| doc.body))
    }
}

#[async_trait::async_trait]
impl PreferenceStore for CosmosStore {
    async fn get_preferences(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> StoreResult<Option<Preferences>> {
        Ok(self
            .preferences_doc(tenant.as_str(), customer_id)
            .await?
            .map(|doc| doc.body))
    }

    async fn put_preferences(
        &self,
        tenant: &TenantId,
        mut preferences: Preferences,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<Preferences> {
        let tenant = tenant.as_str();
        for _ in 0..CONCURRENCY_ATTEMPTS {
            let customer = self
                .customer_doc(tenant, &preferences.customer_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            if customer.body.status != CustomerStatus::Active {
                return Err(Rejection::CustomerNotActive(customer.body.status.as_str()).into());
            }
            let stored = self
                .preferences_doc(tenant, &preferences.customer_id)
                .await?;
            let current = stored
                .as_ref()
                .map_or(DEFAULT_ETAG, |doc| doc.version.as_str());
            check_if_match(&if_match, current)?;
            preferences.etag = new_etag();
            preferences.updated_at = Some(now());
            let mut doc = preferences_doc(tenant, &preferences);
            let scope = customer.scope.clone();
            let batch = TransactionalBatch::new(pk(tenant, &scope));
            let batch = batch_replace(self, batch, &customer)?;
            let batch = match stored {
                Some(stored) => {
                    doc.cosmos_etag = stored.cosmos_etag;
                    batch_replace(self, batch, &doc)?
                }
                None => batch_create(self, batch, &doc)?,
            };
            let batch = batch_create(self, batch, &audit_doc(&audit, &scope))?;
            match self.run_batch(self.data(), batch).await? {
                Ok(_) => return Ok(preferences),
                // Changed (412) or created (409) meanwhile: read again and decide again.
                Err(refusal) if matches!(refusal.status, 409 | 412) => continue,
                Err(refusal) => return Err(super::support::refused(refusal)),
            }
        }
        Err(busy("preferences"))
    }
}
