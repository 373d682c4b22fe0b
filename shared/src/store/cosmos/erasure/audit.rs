//! The `auditEntries` step: audit entries naming the customer are pseudonymised, in the
//! customer's partition and (one batch behind, through the step's cursor) elsewhere.

use azure_data_cosmos::TransactionalBatch;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::doc::{kind, Doc};
use super::super::support::{
    batch_replace, busy, param, pk, scope_feed, tenant_feed, CONCURRENCY_ATTEMPTS,
};
use super::super::{CosmosStore, Param};
use super::undecodable;
use crate::domain::masking::{record_action, Entity, Masker, RecordAction};
use crate::domain::tenant::TenantId;
use crate::store::erasure::BatchOutcome as StepOutcome;
use crate::store::{StoreError, StoreResult};

/// An audit entry outside the customer's partition, selected and counted by one batch and
/// masked by the next (kept in the step's cursor).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AuditRef {
    scope: String,
    id: String,
}

/// Audit entries naming one of `@ids` as the customer, the target or the actor.
pub(super) const AUDIT_NAMES_CUSTOMER: &str = " AND (ARRAY_CONTAINS(@ids, c.body.customerId) OR ARRAY_CONTAINS(@ids, c.body.targetId) OR ARRAY_CONTAINS(@ids, c.body.actorId))";

impl CosmosStore {
    /// Audit entries naming the customer (as the customer, the target or the actor) get the
    /// keyed pseudonym; once rewritten they no longer match, so each batch takes the next
    /// ones. Entries in the customer's partition are masked in the batch; entries elsewhere
    /// in the tenant are selected and counted here and masked by the next batch (`cursor`).
    pub(super) async fn erasure_mask_audit(
        &self,
        tenant: &TenantId,
        scope: &str,
        masker: &Masker,
        limit: usize,
        cursor: Option<&str>,
        mut batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        debug_assert_eq!(record_action(Entity::AuditEntry), RecordAction::Mask);
        if let Some(pending) = cursor {
            let pending: Vec<AuditRef> = serde_json::from_str(pending)
                .map_err(|error| undecodable("erasure progress of the audit step", &error))?;
            for entry in &pending {
                self.erasure_mask_audit_elsewhere(tenant.as_str(), masker, entry)
                    .await?;
            }
        }
        let ids = || param("@ids", masker.identifiers());
        let local_sql =
            format!("SELECT TOP {limit} * FROM c WHERE c.type = @kind{AUDIT_NAMES_CUSTOMER}");
        let local: Vec<Doc<Value>> = self
            .query_docs(
                self.data(),
                scope_feed(tenant.as_str(), scope),
                &local_sql,
                vec![param("@kind", kind::AUDIT), ids()],
            )
            .await?;
        let elsewhere = match limit.saturating_sub(local.len()) {
            0 => Vec::new(),
            room => {
                self.erasure_audit_elsewhere(tenant, scope, room, ids())
                    .await?
            }
        };
        let selected = local.len() + elsewhere.len();
        let mut changed = 0u64;
        for mut entry in local {
            if masker.mask_document(Entity::AuditEntry, &mut entry.body) > 0 {
                batch = batch_replace(self, batch, &entry)?;
                changed += 1;
            }
        }
        let mut pending = Vec::new();
        for mut entry in elsewhere {
            if masker.mask_document(Entity::AuditEntry, &mut entry.body) > 0 {
                pending.push(AuditRef {
                    scope: entry.scope,
                    id: entry.id,
                });
                changed += 1;
            }
        }
        // A selected entry the rules did not change would be selected again: stop rather than
        // loop. Pending entries are masked by the next batch, so the step is not done yet.
        let done = pending.is_empty() && (selected < limit || changed < selected as u64);
        let cursor = if pending.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&pending)
                    .map_err(|error| undecodable("audit step cursor", &error))?,
            )
        };
        Ok((
            batch,
            StepOutcome {
                counts: vec![("auditEntries", changed)],
                cursor,
                done,
            },
        ))
    }

    /// Up to `limit` audit entries naming the customer outside their partition.
    pub(super) async fn erasure_audit_elsewhere(
        &self,
        tenant: &TenantId,
        scope: &str,
        limit: usize,
        ids: Param,
    ) -> StoreResult<Vec<Doc<Value>>> {
        let sql = format!("SELECT TOP {limit} * FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND c.scope != @scope{AUDIT_NAMES_CUSTOMER}");
        let params = vec![
            param("@tenant", tenant.as_str()),
            param("@kind", kind::AUDIT),
            param("@scope", scope),
            ids,
        ];
        self.query_docs(self.data(), tenant_feed(tenant), &sql, params)
            .await
    }

    /// Masks one audit entry outside the customer's partition (nothing if it is gone or
    /// masked already), re-reading it if it changes meanwhile.
    pub(super) async fn erasure_mask_audit_elsewhere(
        &self,
        tenant: &str,
        masker: &Masker,
        entry: &AuditRef,
    ) -> StoreResult<()> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            let Some(mut doc) = self
                .read_doc::<Doc<Value>>(self.data(), pk(tenant, &entry.scope), &entry.id)
                .await?
            else {
                return Ok(());
            };
            if masker.mask_document(Entity::AuditEntry, &mut doc.body) == 0 {
                return Ok(());
            }
            match self
                .replace_doc(
                    self.data(),
                    pk(tenant, &entry.scope),
                    &doc.id,
                    &doc,
                    doc.cosmos_etag.as_deref(),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::PreconditionFailed { .. } | StoreError::NotFound) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(busy("audit entry"))
    }
}
