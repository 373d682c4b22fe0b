//! Cosmos DB adapter of [`RetentionStore`]: time-ordered scans of one tenant's notifications,
//! audit entries and inactive customers, and fenced removals (the fence first, then the
//! deletes; see [the module doc](super) for why).

use std::collections::{BTreeMap, BTreeSet};

use azure_data_cosmos::FeedScope;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::leases::Change;
use super::{parse_at, DELETE_CONCURRENCY, LOOKUP_CHUNK};
use crate::domain::audit::AuditEntry;
use crate::domain::tenant::TenantId;
use crate::jobs::erasure::RETENTION_REQUESTER;
use crate::store::cosmos::doc::{doc_id, kind};
use crate::store::cosmos::support::{param, pk, tenant_prefix_feed};
use crate::store::cosmos::{CosmosStore, Param};
use crate::store::jobs::{
    Cursor, CustomerRef, Fence, NotificationRef, NotificationScan, Removal, RetentionStore,
};
use crate::store::{ts, StoreResult};

/// Document types whose tenants retention visits (SQLite: the tables `tenants_with_data` reads).
const RETAINED_KINDS: [&str; 5] = [
    kind::NOTIFICATION,
    kind::AUDIT,
    kind::CUSTOMER,
    kind::ORDER,
    kind::IDEMPOTENCY,
];

/// A document found by a lookup: where to delete it.
#[derive(Debug, Deserialize)]
struct Located {
    id: String,
    scope: String,
}

/// A row of a time-ordered scan: the envelope's `at`, plus the projected fields.
#[derive(Debug, Deserialize)]
struct Timed<T> {
    at: String,
    #[serde(flatten)]
    fields: T,
}

/// A time-ordered retention scan of one tenant's documents of one type, before a time.
struct TimeScan<'a> {
    kind: &'a str,
    /// Extra conditions (`AND ...`, using `params`).
    filter: String,
    params: Vec<Param>,
    before: DateTime<Utc>,
}

impl TimeScan<'_> {
    /// The `WHERE` clause and its parameters, for `tenant`.
    fn condition(&self, tenant: &TenantId) -> (String, Vec<Param>) {
        let mut params = self.params.clone();
        params.push(param("@tenant", tenant.as_str()));
        params.push(param("@kind", self.kind));
        params.push(param("@before", ts(self.before)));
        (
            format!(
                "c.tenantId = @tenant AND c.type = @kind AND c.at < @before{}",
                self.filter
            ),
            params,
        )
    }
}

impl CosmosStore {
    /// Deletes the documents of `kind` with these record ids in the tenant (wherever their
    /// scope); returns how many existed.
    async fn delete_records(&self, tenant: &str, kind: &str, ids: &[String]) -> StoreResult<u64> {
        let mut removed = 0;
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let found = self.locate(tenant, kind, chunk).await?;
            removed += self.delete_located(tenant, found).await?;
        }
        Ok(removed)
    }

    /// Where the documents of `kind` with these record ids are (none for those gone).
    async fn locate(&self, tenant: &str, kind: &str, ids: &[String]) -> StoreResult<Vec<Located>> {
        let doc_ids: Vec<String> = ids.iter().map(|id| doc_id(kind, id)).collect();
        let sql = "SELECT c.id, c.scope FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND ARRAY_CONTAINS(@ids, c.id)";
        self.query_docs(
            self.data(),
            tenant_prefix_feed(tenant),
            sql,
            vec![
                param("@tenant", tenant),
                param("@kind", kind),
                param("@ids", doc_ids),
            ],
        )
        .await
    }

    async fn delete_located(&self, tenant: &str, found: Vec<Located>) -> StoreResult<u64> {
        futures::stream::iter(found)
            .map(|doc| async move {
                self.delete_doc(self.data(), pk(tenant, &doc.scope), &doc.id, None)
                    .await
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_fold(0u64, |removed, existed| async move {
                Ok(removed + u64::from(existed))
            })
            .await
    }

    async fn remove(&self, removal: Removal) -> StoreResult<u64> {
        match removal {
            Removal::Notifications { tenant, ids } => {
                self.delete_records(tenant.as_str(), kind::NOTIFICATION, &ids)
                    .await
            }
            Removal::AuditEntries { tenant, ids } => {
                self.delete_records(tenant.as_str(), kind::AUDIT, &ids)
                    .await
            }
            // Items are embedded in their order: there are no separate item documents.
            Removal::OrderItems(_) => Ok(0),
            Removal::NotificationsByKey(keys) => {
                self.delete_per_tenant(kind::NOTIFICATION, keys).await
            }
            Removal::IdempotencyKeys(keys) => self.delete_per_tenant(kind::IDEMPOTENCY, keys).await,
            Removal::ProcessedEvents(keys) => {
                let keys = keys
                    .into_iter()
                    .map(|(tenant, consumer, event)| (tenant, format!("{consumer}:{event}")))
                    .collect();
                self.delete_per_tenant(kind::PROCESSED_EVENT, keys).await
            }
        }
    }

    /// Deletes `(tenant, record id)` documents of `kind`, tenant by tenant.
    async fn delete_per_tenant(&self, kind: &str, keys: Vec<(String, String)>) -> StoreResult<u64> {
        let mut per_tenant: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (tenant, id) in keys {
            per_tenant.entry(tenant).or_default().push(id);
        }
        let mut removed = 0;
        for (tenant, ids) in per_tenant {
            removed += self.delete_records(&tenant, kind, &ids).await?;
        }
        Ok(removed)
    }

    /// The next `limit` rows of a time-ordered scan after `after` (`(at, record id)`).
    async fn time_scan<T: DeserializeOwned + Send + 'static>(
        &self,
        tenant: &TenantId,
        scan: &TimeScan<'_>,
        projection: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<Timed<T>>> {
        let (condition, mut params) = scan.condition(tenant);
        let position = match after {
            Some(cursor) => {
                params.push(param("@afterAt", &cursor.key));
                params.push(param("@afterId", doc_id(scan.kind, &cursor.id)));
                " AND (c.at > @afterAt OR (c.at = @afterAt AND c.id > @afterId))"
            }
            None => "",
        };
        let sql = format!("SELECT TOP {limit} c.at{projection} FROM c WHERE {condition}{position} ORDER BY c.at, c.id");
        self.query_docs(
            self.data(),
            tenant_prefix_feed(tenant.as_str()),
            &sql,
            params,
        )
        .await
    }

    /// How many documents a time-ordered scan would find. The SDK runs no `COUNT` across the
    /// tenant's partitions: this reads one byte per document instead.
    async fn time_count(&self, tenant: &TenantId, scan: &TimeScan<'_>) -> StoreResult<u64> {
        let (condition, params) = scan.condition(tenant);
        let ones: Vec<u8> = self
            .query_docs(
                self.data(),
                tenant_prefix_feed(tenant.as_str()),
                &format!("SELECT VALUE 1 FROM c WHERE {condition}"),
                params,
            )
            .await?;
        Ok(ones.len() as u64)
    }

    /// Customers with a retention erasure that started and did not complete (an interrupted one).
    async fn pending_retention_erasures(&self, tenant: &TenantId) -> StoreResult<Vec<String>> {
        let sql = "SELECT VALUE c.body.customerId FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND c.body.requestedBy = @requester AND c.body.status != 'completed'";
        let params = vec![
            param("@tenant", tenant.as_str()),
            param("@kind", kind::ERASURE),
            param("@requester", RETENTION_REQUESTER),
        ];
        let customers: BTreeSet<String> = self
            .query_docs::<String>(
                self.data(),
                tenant_prefix_feed(tenant.as_str()),
                sql,
                params,
            )
            .await?
            .into_iter()
            .collect();
        Ok(customers
            .into_iter()
            .map(|customer| doc_id(kind::CUSTOMER, &customer))
            .collect())
    }

    /// The retention scan of inactive customers (see [`RetentionStore::scan_inactive_customers`]).
    async fn inactive_scan(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
    ) -> StoreResult<TimeScan<'static>> {
        let pending = self.pending_retention_erasures(tenant).await?;
        Ok(TimeScan {
            kind: kind::CUSTOMER,
            filter: " AND (c.body.status = 'active' OR (c.body.status IN ('erasureRequested', 'erased') AND ARRAY_CONTAINS(@pending, c.id)))".into(),
            params: vec![param("@pending", pending)],
            before,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationFields {
    record_id: String,
    #[serde(default)]
    category: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AuditFields {
    body: AuditEntry,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerFields {
    record_id: String,
}

fn notification_scan(before: DateTime<Utc>, read_only: bool) -> TimeScan<'static> {
    let filter = if read_only {
        " AND IS_DEFINED(c.body.readAt) AND NOT IS_NULL(c.body.readAt)"
    } else {
        ""
    };
    TimeScan {
        kind: kind::NOTIFICATION,
        filter: filter.into(),
        params: Vec::new(),
        before,
    }
}

fn audit_scan(before: DateTime<Utc>) -> TimeScan<'static> {
    TimeScan {
        kind: kind::AUDIT,
        filter: String::new(),
        params: Vec::new(),
        before,
    }
}

#[async_trait::async_trait]
impl RetentionStore for CosmosStore {
    async fn tenants_with_data(&self) -> StoreResult<Vec<TenantId>> {
        let sql = "SELECT DISTINCT VALUE c.tenantId FROM c WHERE ARRAY_CONTAINS(@kinds, c.type) ORDER BY c.tenantId";
        let names: Vec<String> = self
            .query_docs(
                self.data(),
                FeedScope::full_container(),
                sql,
                vec![param("@kinds", RETAINED_KINDS)],
            )
            .await?;
        let mut tenants: Vec<TenantId> = names
            .into_iter()
            .filter_map(|name| TenantId::new(name).ok())
            .collect();
        tenants.sort();
        tenants.dedup();
        Ok(tenants)
    }

    async fn scan_notifications(
        &self,
        tenant: &TenantId,
        scan: NotificationScan,
    ) -> StoreResult<Vec<NotificationRef>> {
        let query = notification_scan(scan.before, scan.read_only);
        let rows: Vec<Timed<NotificationFields>> = self
            .time_scan(
                tenant,
                &query,
                ", c.body.id AS recordId, c.body.category AS category",
                scan.after.as_ref(),
                scan.limit,
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                // Retention needs no category; the read cleanup summarises by it (as SQLite).
                let category = if scan.read_only {
                    row.fields.category.unwrap_or_default()
                } else {
                    String::new()
                };
                Ok(NotificationRef {
                    created_at: parse_at(&row.at)?,
                    category,
                    cursor: Cursor::new(row.at, row.fields.record_id.clone()),
                    id: row.fields.record_id,
                })
            })
            .collect()
    }

    async fn count_notifications(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        read_only: bool,
    ) -> StoreResult<u64> {
        self.time_count(tenant, &notification_scan(before, read_only))
            .await
    }

    async fn scan_audit(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, Cursor)>> {
        let rows: Vec<Timed<AuditFields>> = self
            .time_scan(
                tenant,
                &audit_scan(before),
                ", c.body",
                after.as_ref(),
                limit,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let cursor = Cursor::new(row.at, row.fields.body.id.clone());
                (row.fields.body, cursor)
            })
            .collect())
    }

    async fn count_audit(&self, tenant: &TenantId, before: DateTime<Utc>) -> StoreResult<u64> {
        self.time_count(tenant, &audit_scan(before)).await
    }

    async fn scan_inactive_customers(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerRef>> {
        let scan = self.inactive_scan(tenant, before).await?;
        let rows: Vec<Timed<CustomerFields>> = self
            .time_scan(
                tenant,
                &scan,
                ", c.body.id AS recordId",
                after.as_ref(),
                limit,
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(CustomerRef {
                    last_activity_at: parse_at(&row.at)?,
                    cursor: Cursor::new(row.at, row.fields.record_id.clone()),
                    id: row.fields.record_id,
                })
            })
            .collect()
    }

    async fn count_inactive_customers(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let scan = self.inactive_scan(tenant, before).await?;
        self.time_count(tenant, &scan).await
    }

    /// Fence first, then the deletes (see the module doc for why this order).
    async fn remove_rows(&self, removal: Removal, fence: Fence) -> StoreResult<u64> {
        self.change_held_lease(&fence.job, &fence.holder, Change::Fence(&fence))
            .await?;
        self.remove(removal).await
    }
}

#[cfg(all(test, feature = "cosmos-emulator"))]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[tokio::test]
    async fn retention_scans_in_time_order_and_removes_behind_the_fence() {
        let store = store().await;
        let (long_ago, less_long_ago) = (days_ago(120), days_ago(100));
        for (id, created, read) in [
            ("n3", less_long_ago, true),
            ("n2", long_ago, true),
            ("n1", long_ago, false),
            ("n4", days_ago(5), true),
        ] {
            put_notification(&store, "t1", id, Some("c1"), created, read).await;
        }
        put_notification(&store, "t1", "n5", None, days_ago(95), false).await;
        put_notification(&store, "t2", "n6", Some("c9"), days_ago(200), false).await;
        let t1 = tenant("t1");
        let before = days_ago(90);
        assert_eq!(
            store.count_notifications(&t1, before, false).await.unwrap(),
            4
        );
        assert_eq!(
            store.count_notifications(&t1, before, true).await.unwrap(),
            2
        );

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .scan_notifications(
                    &t1,
                    NotificationScan {
                        before,
                        read_only: false,
                        after: after.clone(),
                        limit: 3,
                    },
                )
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.cursor.clone());
            seen.extend(page.into_iter().map(|row| (row.id, row.category)));
        }
        let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["n1", "n2", "n3", "n5"], "oldest first, ties by id");
        assert!(seen.iter().all(|(_, category)| category.is_empty()));
        let read = store
            .scan_notifications(
                &t1,
                NotificationScan {
                    before,
                    read_only: true,
                    after: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            read.iter()
                .map(|row| (row.id.as_str(), row.category.as_str()))
                .collect::<Vec<_>>(),
            [("n2", "order.shipped"), ("n3", "order.shipped")]
        );

        store.acquire_lease(JOB, "a", TTL, None).await.unwrap();
        let removal = Removal::Notifications {
            tenant: t1.clone(),
            ids: vec!["n1".into(), "n5".into(), "gone".into()],
        };
        let checkpoint = json!({"cursor": read[0].cursor});
        assert_eq!(
            store
                .remove_rows(removal.clone(), fence("a", Some(checkpoint.clone())))
                .await
                .unwrap(),
            2
        );
        assert!(!exists(&store, "t1", &customer_scope("c1"), "notification:n1").await);
        assert!(!exists(&store, "t1", TENANT_SCOPE, "notification:n5").await);
        assert!(exists(&store, "t1", &customer_scope("c1"), "notification:n2").await);
        assert_eq!(store.load_checkpoint(JOB).await.unwrap(), Some(checkpoint));
        assert_eq!(
            store.remove_rows(removal, fence("a", None)).await.unwrap(),
            0,
            "already gone: nothing counted"
        );

        let lost = Removal::Notifications {
            tenant: t1.clone(),
            ids: vec!["n2".into()],
        };
        assert!(is_lease_lost(
            &store.remove_rows(lost, fence("b", None)).await.unwrap_err()
        ));
        assert!(
            exists(&store, "t1", &customer_scope("c1"), "notification:n2").await,
            "a refused fence deletes nothing"
        );
        assert_eq!(
            store.tenants_with_data().await.unwrap(),
            [tenant("t1"), tenant("t2")]
        );
    }

    #[tokio::test]
    async fn audit_and_inactive_customer_scans() {
        let store = store().await;
        let t1 = tenant("t1");
        let long_ago = days_ago(4000);
        for (id, at) in [("a2", long_ago), ("a1", long_ago), ("a3", days_ago(10))] {
            let mut entry =
                AuditEntry::now("t1", "u1", "customer.update", "customer", "c1", "corr");
            entry.id = id.into();
            entry.at = at;
            let doc = audit_doc(&entry, &customer_scope("c1"));
            store
                .create_doc(store.data(), pk("t1", &customer_scope("c1")), &doc.id, &doc)
                .await
                .unwrap();
        }
        let old = store
            .scan_audit(&t1, days_ago(3650), None, 1)
            .await
            .unwrap();
        assert_eq!(
            old.iter()
                .map(|(entry, _)| entry.id.as_str())
                .collect::<Vec<_>>(),
            ["a1"]
        );
        let rest = store
            .scan_audit(&t1, days_ago(3650), Some(old[0].1.clone()), 10)
            .await
            .unwrap();
        assert_eq!(
            rest.iter()
                .map(|(entry, _)| entry.id.as_str())
                .collect::<Vec<_>>(),
            ["a2"]
        );
        assert_eq!(store.count_audit(&t1, days_ago(3650)).await.unwrap(), 2);

        let long_ago = days_ago(3000);
        put_customer(&store, "t1", "active-old", "active", long_ago).await;
        put_customer(&store, "t1", "active-new", "active", days_ago(1)).await;
        put_customer(
            &store,
            "t1",
            "erasing-by-retention",
            "erasureRequested",
            long_ago,
        )
        .await;
        put_customer(
            &store,
            "t1",
            "erasing-by-request",
            "erasureRequested",
            long_ago,
        )
        .await;
        put_customer(&store, "t1", "erased-done", "erased", long_ago).await;
        for (customer, requester, status) in [
            ("erasing-by-retention", RETENTION_REQUESTER, "inProgress"),
            ("erasing-by-request", "u1", "accepted"),
            ("erased-done", RETENTION_REQUESTER, "completed"),
        ] {
            let body = json!({"id": format!("r-{customer}"), "customerId": customer, "requestedBy": requester, "status": status});
            put(
                &store,
                kind::ERASURE,
                &format!("r-{customer}"),
                "t1",
                &customer_scope(customer),
                long_ago,
                body,
            )
            .await;
        }
        let before = days_ago(2555);
        let found = store
            .scan_inactive_customers(&t1, before, None, 10)
            .await
            .unwrap();
        let mut ids: Vec<&str> = found.iter().map(|customer| customer.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["active-old", "erasing-by-retention"]);
        assert_eq!(
            store.count_inactive_customers(&t1, before).await.unwrap(),
            2
        );
        let next = store
            .scan_inactive_customers(&t1, before, Some(found[0].cursor.clone()), 10)
            .await
            .unwrap();
        assert_eq!(next.len(), 1, "the cursor continues after the first");
    }
}
