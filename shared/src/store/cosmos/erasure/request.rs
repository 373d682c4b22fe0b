//! The erasure request's document (`erasure:{requestId}` in the customer's scope, an
//! [`ErasureDoc`]): finding it, starting or resuming it, closing a request that has nothing
//! left to do, and finishing it with its report and audit entry in one batch.

use azure_data_cosmos::TransactionalBatch;
use serde_json::Value;

use super::super::doc::{customer_scope, doc_id, kind, Doc, ErasureDoc};
use super::super::support::{
    attempt_of, audit_doc, batch_create, batch_replace, param, pk, scope_feed, tenant_feed, Attempt,
};
use super::super::CosmosStore;
use crate::domain::audit::AuditEntry;
use crate::domain::customer::CustomerStatus;
use crate::domain::etag::new_etag;
use crate::domain::gdpr::{ErasureRecord, ErasureStatus};
use crate::domain::now;
use crate::domain::tenant::TenantId;
use crate::store::{ts, ErasureProgress, ErasureStart, StoreError, StoreResult};

pub(super) type RequestDoc = Doc<ErasureDoc>;

impl CosmosStore {
    /// The request `request_id` in the tenant, wherever it is (the caller knows no customer).
    pub(super) async fn erasure_anywhere(
        &self,
        tenant: &TenantId,
        request_id: &str,
    ) -> StoreResult<Option<RequestDoc>> {
        let docs: Vec<RequestDoc> = self
            .query_docs(
                self.data(),
                tenant_feed(tenant),
                "SELECT * FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND c.id = @id",
                vec![
                    param("@tenant", tenant.as_str()),
                    param("@kind", kind::ERASURE),
                    param("@id", doc_id(kind::ERASURE, request_id)),
                ],
            )
            .await?;
        Ok(docs.into_iter().next())
    }

    /// The request `request_id` of `customer_id`; `Conflict` when the tenant's request with
    /// this id is another customer's.
    pub(super) async fn erasure_of(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        request_id: &str,
    ) -> StoreResult<Option<RequestDoc>> {
        let id = doc_id(kind::ERASURE, request_id);
        let found = match self
            .read_doc::<RequestDoc>(
                self.data(),
                pk(tenant.as_str(), &customer_scope(customer_id)),
                &id,
            )
            .await?
        {
            Some(doc) => Some(doc),
            None => self.erasure_anywhere(tenant, request_id).await?,
        };
        match found {
            Some(doc) if doc.body.record.customer_id != customer_id => Err(StoreError::Conflict(
                format!("erasure request {request_id} is for another customer"),
            )),
            found => Ok(found),
        }
    }

    /// The completed request (with a report) that erased `customer_id`, the latest if several.
    pub(super) async fn erasure_erased_by(
        &self,
        tenant: &str,
        customer_id: &str,
    ) -> StoreResult<Option<String>> {
        let docs: Vec<RequestDoc> = self
            .query_docs(
                self.data(),
                scope_feed(tenant, &customer_scope(customer_id)),
                "SELECT * FROM c WHERE c.type = @kind",
                vec![param("@kind", kind::ERASURE)],
            )
            .await?;
        Ok(docs
            .into_iter()
            .map(|doc| doc.body.record)
            .filter(|record| {
                record.customer_id == customer_id
                    && record.status == ErasureStatus::Completed
                    && record.report.is_some()
            })
            .max_by_key(|record| record.updated_at)
            .map(|record| record.id))
    }

    pub(super) async fn erasure_start_once(
        &self,
        tenant: &TenantId,
        request: &ErasureRecord,
    ) -> StoreResult<Attempt<ErasureStart>> {
        let existing = self
            .erasure_of(tenant, &request.customer_id, &request.id)
            .await?;
        if let Some(doc) = &existing {
            if doc.body.record.status == ErasureStatus::Completed {
                return Ok(Attempt::Done(ErasureStart::AlreadyCompleted(
                    doc.body.record.clone(),
                )));
            }
        }
        let mut customer = self
            .customer_doc(tenant.as_str(), &request.customer_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let started = existing
            .as_ref()
            .is_some_and(|doc| doc.body.record.status != ErasureStatus::Accepted);
        if customer.body.status == CustomerStatus::Erased && !started {
            return self
                .erasure_close_unneeded(tenant, existing, &request.customer_id)
                .await;
        }
        let scope = customer.scope.clone();
        let is_new = existing.is_none();
        let mut doc = existing.unwrap_or_else(|| {
            let record = ErasureDoc {
                record: request.clone(),
                progress: None,
            };
            Doc::new(
                kind::ERASURE,
                &request.id,
                tenant.as_str(),
                scope.clone(),
                ts(request.requested_at),
                record,
            )
        });
        let mut progress = doc
            .body
            .progress
            .take()
            .unwrap_or_else(|| ErasureProgress::new(now()));
        progress.attempts += 1;
        doc.body.record.status = ErasureStatus::InProgress;
        doc.body.record.updated_at = now();
        doc.body.progress = Some(progress.clone());
        let batch = TransactionalBatch::new(pk(tenant.as_str(), &scope));
        let mut batch = if is_new {
            batch_create(self, batch, &doc)?
        } else {
            batch_replace(self, batch, &doc)?
        };
        if customer.body.status == CustomerStatus::Active {
            customer.body.status = CustomerStatus::ErasureRequested;
            customer.version = new_etag();
            customer.body.etag = customer.version.clone();
            batch = batch_replace(self, batch, &customer)?;
        }
        let outcome = self.run_batch(self.data(), batch).await?;
        attempt_of(
            outcome,
            ErasureStart::Run {
                record: doc.body.record,
                progress,
            },
        )
    }

    /// A request for a customer another request erased: closed without a report (if stored).
    pub(super) async fn erasure_close_unneeded(
        &self,
        tenant: &TenantId,
        existing: Option<RequestDoc>,
        customer_id: &str,
    ) -> StoreResult<Attempt<ErasureStart>> {
        if let Some(mut doc) = existing {
            doc.body.record.status = ErasureStatus::Completed;
            doc.body.record.updated_at = now();
            let batch = batch_replace(
                self,
                TransactionalBatch::new(pk(tenant.as_str(), &doc.scope)),
                &doc,
            )?;
            if let Attempt::Again = attempt_of(self.run_batch(self.data(), batch).await?, ())? {
                return Ok(Attempt::Again);
            }
        }
        let erased_by = self.erasure_erased_by(tenant.as_str(), customer_id).await?;
        Ok(Attempt::Done(ErasureStart::CustomerAlreadyErased {
            erased_by,
        }))
    }

    pub(super) async fn erasure_finish_once(
        &self,
        tenant: &TenantId,
        request_id: &str,
        report: &Value,
        audit: &AuditEntry,
    ) -> StoreResult<Attempt<(ErasureRecord, bool)>> {
        let mut doc = self
            .erasure_anywhere(tenant, request_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if doc.body.record.status == ErasureStatus::Completed {
            return Ok(Attempt::Done((doc.body.record, false)));
        }
        doc.body.record.status = ErasureStatus::Completed;
        doc.body.record.updated_at = now();
        doc.body.record.report = Some(report.clone());
        let batch = TransactionalBatch::new(pk(tenant.as_str(), &doc.scope));
        let batch = batch_replace(self, batch, &doc)?;
        let batch = batch_create(self, batch, &audit_doc(audit, &doc.scope))?;
        attempt_of(
            self.run_batch(self.data(), batch).await?,
            (doc.body.record, true),
        )
    }
}
