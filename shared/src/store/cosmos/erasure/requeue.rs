//! Re-announcing stalled erasure requests
//! ([`ErasureStore::requeue_stalled_erasures`](crate::store::ErasureStore::requeue_stalled_erasures)):
//! requests still `accepted` whose message was last queued before a cutoff (or never) get
//! their message written to the outbox again, with the SQLite adapter's effect.
//!
//! The scan is one cross-partition query over the whole container (`TOP {limit}`, ordered by
//! `(sortKey, id)`, i.e. oldest request first, as SQLite orders by `requested_at, id`): the
//! SDK merges a streaming `ORDER BY` across partitions. It filters on the envelope's `at`, the
//! request's last queueing time in fixed-width UTC (the body's `queuedAt` is RFC 3339 text of
//! varying width, which does not compare as text); a request never queued has no `at`.
//!
//! Each request is then re-announced in its own transactional batch in the customer's
//! partition: the request replaced with its new `queuedAt` (if-match on the `_etag` the scan
//! read), the outbox record of its message (the same `MessageId`, the request id) and the audit
//! entry. A request that changed or went away since the scan (an erasure started, say) refuses
//! the batch (412, 404) and is skipped: SQLite would have seen the change first.

use azure_data_cosmos::{FeedScope, TransactionalBatch};
use chrono::{DateTime, Utc};

use super::super::doc::kind;
use super::super::support::{audit_doc, batch_create, batch_replace, param, pk, refused};
use super::super::CosmosStore;
use super::request::RequestDoc;
use crate::domain::audit::AuditEntry;
use crate::domain::gdpr::{ErasureRecord, ErasureStatus};
use crate::outbox::OutboxMessage;
use crate::store::{ts, StoreResult};

/// The actor of re-announced erasure requests in the audit trail (SQLite's too).
const REQUEUE_ACTOR: &str = "system:DatabaseMaintenance";
/// The audit action of a re-announced request.
const REQUEUE_ACTION: &str = "gdpr.erasure.requeue";

/// Whether a scanned request is due: still accepted, and queued before `cutoff` or never.
fn stalled(record: &ErasureRecord, cutoff: DateTime<Utc>) -> bool {
    record.status == ErasureStatus::Accepted && record.queued_at.is_none_or(|at| at < cutoff)
}

impl CosmosStore {
    /// Up to `limit` accepted requests across every tenant queued before `cutoff` (or never),
    /// oldest request first.
    async fn stalled_erasures(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<RequestDoc>> {
        let sql = format!(
            "SELECT TOP {limit} * FROM c WHERE c.type = @kind AND c.body.status = @accepted AND (NOT IS_DEFINED(c.at) OR IS_NULL(c.at) OR c.at < @cutoff) ORDER BY c.sortKey, c.id"
        );
        let params = vec![
            param("@kind", kind::ERASURE),
            param("@accepted", ErasureStatus::Accepted.as_str()),
            param("@cutoff", ts(cutoff)),
        ];
        self.query_docs(self.data(), FeedScope::full_container(), &sql, params)
            .await
    }

    /// Re-announces the requests stalled since `cutoff` (at most `limit`), queued again at
    /// `at`; the ones re-announced, with their new `queued_at`.
    pub(super) async fn requeue_stalled(
        &self,
        cutoff: DateTime<Utc>,
        at: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<ErasureRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut requeued = Vec::new();
        for doc in self.stalled_erasures(cutoff, limit).await? {
            if !stalled(&doc.body.record, cutoff) {
                continue;
            }
            if let Some(record) = self.requeue_one(doc, at).await? {
                requeued.push(record);
            }
        }
        Ok(requeued)
    }

    /// One request's batch: the record with its new `queuedAt`, the outbox record of its
    /// message, the audit entry. `None` when the request changed or went away since it was read.
    pub(super) async fn requeue_one(
        &self,
        mut doc: RequestDoc,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<ErasureRecord>> {
        doc.body.record.queued_at = Some(at);
        doc.at = Some(ts(at));
        let record = doc.body.record.clone();
        let message = OutboxMessage::erasure_request(&record, None, at);
        let audit = AuditEntry::now(
            &doc.tenant_id,
            REQUEUE_ACTOR,
            REQUEUE_ACTION,
            "erasureRequest",
            &record.id,
            "",
        )
        .about_customer(&record.customer_id);
        let (tenant, scope) = (doc.tenant_id.as_str(), doc.scope.as_str());
        let batch = TransactionalBatch::new(pk(tenant, scope));
        let batch = batch_replace(self, batch, &doc)?;
        let batch = self.batch_outbox(batch, tenant, scope, &message)?;
        let batch = batch_create(self, batch, &audit_doc(&audit, scope))?;
        match self.run_batch(self.data(), batch).await? {
            Ok(_) => Ok(Some(record)),
            // Our own batch, applied but its answer lost and retried by the SDK, also meets a
            // changed `_etag`: then the stored request carries our queueing time.
            Err(refusal) if refusal.status == 412 => {
                let stored: Option<RequestDoc> = self
                    .read_doc(self.data(), pk(tenant, scope), &doc.id)
                    .await?;
                let ours = stored.is_some_and(|stored| stored.body.record.queued_at == Some(at));
                if !ours {
                    tracing::info!(tenant, request_id = %record.id, "erasure request changed since the requeue scan; skipped");
                }
                Ok(ours.then_some(record))
            }
            Err(refusal) if refusal.status == 404 => Ok(None),
            Err(refusal) => Err(refused(refusal)),
        }
    }
}

#[cfg(all(test, feature = "cosmos-emulator"))]
mod tests {
    use super::*;
    use crate::outbox::OutboxStore;
    use crate::store::cosmos::doc::{customer_doc, customer_scope, doc_id, Doc, ErasureDoc};
    use crate::store::cosmos::fixtures::{customer, erasure_request, put, tenant, TENANT};
    use crate::store::cosmos::support::scope_feed;
    use crate::store::cosmos::{in_memory, CosmosOptions};
    use crate::store::{CustomerStore, ErasureStore};

    async fn store_with(customers: &[&str]) -> CosmosStore {
        let store = in_memory(CosmosOptions::for_emulator(), Vec::new())
            .await
            .unwrap()
            .store;
        for id in customers {
            put(&store, &customer_doc(&customer(id))).await;
        }
        store
    }

    fn audit(customer_id: &str) -> AuditEntry {
        AuditEntry::now(
            TENANT,
            "op",
            "gdpr.erasure.request",
            "customer",
            customer_id,
            "corr",
        )
    }

    async fn request_doc(store: &CosmosStore, customer_id: &str, id: &str) -> RequestDoc {
        store
            .read_doc(
                store.data(),
                pk(TENANT, &customer_scope(customer_id)),
                &doc_id(kind::ERASURE, id),
            )
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn a_request_that_changed_since_the_scan_is_skipped_and_announces_nothing() {
        let store = store_with(&["c-1"]).await;
        store
            .request_erasure(&tenant(), erasure_request("r-1", "c-1"), audit("c-1"))
            .await
            .unwrap();
        assert_eq!(store.pending_outbox(&tenant()).await.unwrap().len(), 1);
        let scanned = request_doc(&store, "c-1", "r-1").await;
        assert_eq!(
            scanned.at,
            scanned.body.record.queued_at.map(ts),
            "the scan's key"
        );
        // An erasure starts meanwhile.
        store
            .start_erasure(&tenant(), erasure_request("r-1", "c-1"))
            .await
            .unwrap();
        let later = crate::domain::now() + chrono::Duration::hours(1);
        assert!(store.requeue_one(scanned, later).await.unwrap().is_none());
        assert_eq!(store.pending_outbox(&tenant()).await.unwrap().len(), 1);
        assert!(
            store
                .requeue_stalled(later, later, 10)
                .await
                .unwrap()
                .is_empty(),
            "in progress: not stalled"
        );
    }

    #[tokio::test]
    async fn requests_never_queued_are_stalled_oldest_first_across_tenants_up_to_the_limit() {
        let store = store_with(&[]).await;
        let now = crate::domain::now();
        let requests = [
            ("r-1", "t2", "c-1", 3),
            ("r-2", "t1", "c-2", 2),
            ("r-3", "t1", "c-3", 1),
        ];
        for (id, tenant, customer_id, minutes_ago) in requests {
            let at = now - chrono::Duration::minutes(minutes_ago);
            let record = ErasureRecord {
                tenant_id: tenant.into(),
                requested_at: at,
                updated_at: at,
                ..erasure_request(id, customer_id)
            };
            let body = ErasureDoc {
                record,
                progress: None,
            };
            let scope = customer_scope(customer_id);
            put(
                &store,
                &Doc::new(kind::ERASURE, id, tenant, scope, ts(at), body),
            )
            .await;
        }
        let ids = |records: &[ErasureRecord]| -> Vec<String> {
            records.iter().map(|record| record.id.clone()).collect()
        };
        let first = store.requeue_stalled(now, now, 2).await.unwrap();
        assert_eq!(
            ids(&first),
            ["r-1", "r-2"],
            "oldest first, at most the limit"
        );
        assert!(first.iter().all(|record| record.queued_at == Some(now)));
        let rest = store.requeue_stalled(now, now, 2).await.unwrap();
        assert_eq!(ids(&rest), ["r-3"]);
        assert!(store.requeue_stalled(now, now, 2).await.unwrap().is_empty());
        let t2 = crate::domain::tenant::TenantId::new("t2").unwrap();
        let sent = store.pending_outbox(&t2).await.unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].scope, customer_scope("c-1"));
        assert_eq!(sent[0].message().unwrap().message_id, "r-1");
        assert_eq!(store.pending_outbox(&tenant()).await.unwrap().len(), 2);
        let audit: Vec<Doc<AuditEntry>> = store
            .query_docs(
                store.data(),
                scope_feed("t2", &customer_scope("c-1")),
                "SELECT * FROM c WHERE c.type = @kind",
                vec![param("@kind", kind::AUDIT)],
            )
            .await
            .unwrap();
        let entry = &audit[0].body;
        assert_eq!(
            (
                entry.actor_id.as_str(),
                entry.action.as_str(),
                entry.target_id.as_str()
            ),
            (REQUEUE_ACTOR, REQUEUE_ACTION, "r-1")
        );
        assert_eq!(entry.customer_id.as_deref(), Some("c-1"));
    }
}
