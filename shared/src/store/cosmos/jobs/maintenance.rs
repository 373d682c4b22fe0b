//! Cosmos DB adapter of [`MaintenanceStore`]: scans for leftovers over every tenant (orphan
//! notifications, expired idempotency keys and processed events, orders without a customer),
//! settling stock reservations, and a sampled integrity check of the containers.

use std::collections::BTreeSet;

use azure_data_cosmos::FeedScope;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::leases::{LeaseDoc, RunDoc};
use super::{parse_at, record_id, shape_error, LOOKUP_CHUNK};
use crate::store::cosmos::doc::{doc_id, kind, scope_customer, CATALOG_SCOPE, TENANT_SCOPE};
use crate::store::cosmos::support::{param, scope_feed, tenant_prefix_feed};
use crate::store::cosmos::{
    data_indexing_policy, CosmosStore, Param, BACKEND, DATA_CONTAINER, JOBS_CONTAINER,
};
use crate::store::jobs::{Cursor, EngineMaintenance, MaintenanceStore};
use crate::store::{ts, StoreResult};

/// Tenants fetched at once by the maintenance scans.
const TENANT_WINDOW: u32 = 50;
/// Notifications read at once while looking for orphans.
const ORPHAN_CHUNK: u32 = 500;
/// Documents of each container the integrity check reads (the most recently written).
const INTEGRITY_SAMPLE: u32 = 200;
/// Problems the integrity check lists at most (as SQLite's `integrity_check(100)`).
const MAX_PROBLEMS: usize = 100;
/// Document types whose `at` the jobs filter and order by.
const TIMED_KINDS: [&str; 5] = [
    kind::NOTIFICATION,
    kind::AUDIT,
    kind::CUSTOMER,
    kind::IDEMPOTENCY,
    kind::PROCESSED_EVENT,
];

/// A maintenance scan of one type's documents, a tenant at a time, in id order.
struct IdScan<'a> {
    kind: &'a str,
    /// The selected fields, `c.id` among them.
    projection: &'a str,
    /// Extra conditions (`AND ...`, using `params`).
    filter: &'a str,
    params: Vec<Param>,
}

/// Notifications to customers (the orphan candidates), with their recipient.
const ORPHAN_CANDIDATES: IdScan<'static> = IdScan {
    kind: kind::NOTIFICATION,
    projection: "c.id, c.body.recipient.id AS recipient",
    filter: " AND c.body.recipient.kind = 'customer'",
    params: Vec::new(),
};

/// The tenants having documents of one type, in order, from a cursor's tenant on; fetched
/// [`TENANT_WINDOW`] at a time.
struct TenantWalk<'a> {
    kind: &'a str,
    after: Option<&'a Cursor>,
    /// Where the next window starts: `(tenant, inclusive)`.
    from: Option<(String, bool)>,
    window: std::collections::VecDeque<String>,
    exhausted: bool,
}

impl<'a> TenantWalk<'a> {
    fn new(kind: &'a str, after: Option<&'a Cursor>) -> Self {
        Self {
            kind,
            after,
            from: after.map(|cursor| (cursor.key.clone(), true)),
            window: Default::default(),
            exhausted: false,
        }
    }

    /// The next tenant, and the id to continue after in it (the cursor's, in the cursor's tenant).
    async fn next(&mut self, store: &CosmosStore) -> StoreResult<Option<(String, Option<String>)>> {
        if self.window.is_empty() && !self.exhausted {
            let tenants = store.tenant_window(self.kind, self.from.as_ref()).await?;
            self.exhausted = tenants.len() < TENANT_WINDOW as usize;
            self.from = tenants.last().map(|last| (last.clone(), false));
            self.window.extend(tenants);
        }
        Ok(self.window.pop_front().map(|tenant| {
            let after_id = self
                .after
                .filter(|cursor| cursor.key == tenant)
                .map(|cursor| cursor.id.clone());
            (tenant, after_id)
        }))
    }
}

impl CosmosStore {
    /// The next tenants having documents of `kind`, in order, from `from` (`(tenant, inclusive)`).
    async fn tenant_window(
        &self,
        kind: &str,
        from: Option<&(String, bool)>,
    ) -> StoreResult<Vec<String>> {
        let mut params = vec![param("@kind", kind)];
        let position = match from {
            Some((tenant, inclusive)) => {
                params.push(param("@from", tenant));
                if *inclusive {
                    " AND c.tenantId >= @from"
                } else {
                    " AND c.tenantId > @from"
                }
            }
            None => "",
        };
        let sql = format!("SELECT DISTINCT TOP {TENANT_WINDOW} VALUE c.tenantId FROM c WHERE c.type = @kind{position} ORDER BY c.tenantId");
        self.query_docs(self.data(), FeedScope::full_container(), &sql, params)
            .await
    }

    /// One tenant's documents of `scan.kind` in id order after the document `after_doc_id`.
    async fn id_page<T: DeserializeOwned + Send + 'static>(
        &self,
        tenant: &str,
        scan: &IdScan<'_>,
        after_doc_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<T>> {
        let mut params = scan.params.clone();
        params.push(param("@tenant", tenant));
        params.push(param("@kind", scan.kind));
        let position = match after_doc_id {
            Some(id) => {
                params.push(param("@afterId", id));
                " AND c.id > @afterId"
            }
            None => "",
        };
        let sql = format!("SELECT TOP {limit} {} FROM c WHERE c.tenantId = @tenant AND c.type = @kind{}{position} ORDER BY c.id", scan.projection, scan.filter);
        self.query_docs(self.data(), tenant_prefix_feed(tenant), &sql, params)
            .await
    }

    /// Documents of `scan.kind` over every tenant in `(tenant, id)` order after `after`
    /// (`after_doc_id` turns the cursor's id into a document id), as `(tenant, document id,
    /// projected fields)`. A document id found in two scopes of a tenant comes once (its
    /// removal deletes both).
    async fn scan_after(
        &self,
        scan: &IdScan<'_>,
        after: Option<Cursor>,
        after_doc_id: impl Fn(&str) -> String,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, Value)>> {
        let mut found: Vec<(String, String, Value)> = Vec::new();
        let mut walk = TenantWalk::new(scan.kind, after.as_ref());
        while let Some((tenant, after_id)) = walk.next(self).await? {
            let mut after_doc = after_id.as_deref().map(&after_doc_id);
            loop {
                let remaining = limit.saturating_sub(found.len() as u32);
                let page: Vec<Value> = self
                    .id_page(&tenant, scan, after_doc.as_deref(), remaining)
                    .await?;
                let more = page.len() >= remaining as usize;
                for doc in page {
                    let id = doc
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| shape_error(format!("a {} document without id", scan.kind)))?
                        .to_owned();
                    after_doc = Some(id.clone());
                    if !found
                        .last()
                        .is_some_and(|(t, last, _)| *t == tenant && *last == id)
                    {
                        found.push((tenant.clone(), id, doc));
                    }
                }
                if found.len() >= limit as usize || !more {
                    break;
                }
            }
            if found.len() >= limit as usize {
                break;
            }
        }
        Ok(found)
    }

    /// Documents of `kind` written before `before` (see [`Self::scan_after`]).
    async fn expired_after(
        &self,
        kind: &str,
        projection: &str,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        after_doc_id: impl Fn(&str) -> String,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, Value)>> {
        let scan = IdScan {
            kind,
            projection,
            filter: " AND c.at < @before",
            params: vec![param("@before", ts(before))],
        };
        self.scan_after(&scan, after, after_doc_id, limit).await
    }

    /// Which of the tenant's customers exist and are not erased.
    async fn live_customers(
        &self,
        tenant: &str,
        customer_ids: &BTreeSet<String>,
    ) -> StoreResult<BTreeSet<String>> {
        let mut live = BTreeSet::new();
        let ids: Vec<String> = customer_ids
            .iter()
            .map(|id| doc_id(kind::CUSTOMER, id))
            .collect();
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let sql = "SELECT VALUE c.body.id FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND ARRAY_CONTAINS(@ids, c.id) AND c.body.status != 'erased'";
            let params = vec![
                param("@tenant", tenant),
                param("@kind", kind::CUSTOMER),
                param("@ids", chunk),
            ];
            live.extend(
                self.query_docs::<String>(self.data(), tenant_prefix_feed(tenant), sql, params)
                    .await?,
            );
        }
        Ok(live)
    }

    /// One tenant's notifications to customers that do not exist or are erased, after
    /// `after_id` (a record id), until `found` holds `limit`.
    async fn orphan_notifications_of(
        &self,
        tenant: &str,
        after_id: Option<String>,
        found: &mut Vec<(String, String)>,
        limit: usize,
    ) -> StoreResult<()> {
        let mut after_doc = after_id.map(|id| doc_id(kind::NOTIFICATION, &id));
        loop {
            let page: Vec<Value> = self
                .id_page(
                    tenant,
                    &ORPHAN_CANDIDATES,
                    after_doc.as_deref(),
                    ORPHAN_CHUNK,
                )
                .await?;
            let recipients: BTreeSet<String> = page
                .iter()
                .filter_map(|doc| doc["recipient"].as_str().map(str::to_owned))
                .collect();
            let live = self.live_customers(tenant, &recipients).await?;
            for doc in &page {
                let id = doc["id"]
                    .as_str()
                    .ok_or_else(|| shape_error("a notification without id"))?;
                let recipient = doc["recipient"].as_str().unwrap_or_default();
                if !live.contains(recipient) {
                    found.push((
                        tenant.to_owned(),
                        record_id(kind::NOTIFICATION, id)?.to_owned(),
                    ));
                    if found.len() >= limit {
                        return Ok(());
                    }
                }
                after_doc = Some(id.to_owned());
            }
            if page.len() < ORPHAN_CHUNK as usize {
                return Ok(());
            }
        }
    }

    /// Orders of one tenant whose customer document does not exist.
    async fn orders_without_customer_of(&self, tenant: &str) -> StoreResult<u64> {
        let sql = "SELECT DISTINCT VALUE c.scope FROM c WHERE c.tenantId = @tenant AND c.type = @kind ORDER BY c.scope";
        let scopes: Vec<String> = self
            .query_docs(
                self.data(),
                tenant_prefix_feed(tenant),
                sql,
                vec![param("@tenant", tenant), param("@kind", kind::ORDER)],
            )
            .await?;
        let mut orphans = 0;
        for chunk in scopes.chunks(LOOKUP_CHUNK) {
            let sql = "SELECT VALUE c.scope FROM c WHERE c.tenantId = @tenant AND c.type = @kind AND ARRAY_CONTAINS(@scopes, c.scope)";
            let params = vec![
                param("@tenant", tenant),
                param("@kind", kind::CUSTOMER),
                param("@scopes", chunk),
            ];
            let with_customer: BTreeSet<String> = self
                .query_docs::<String>(self.data(), tenant_prefix_feed(tenant), sql, params)
                .await?
                .into_iter()
                .collect();
            for scope in chunk.iter().filter(|scope| !with_customer.contains(*scope)) {
                orphans += self.count_in_scope(tenant, scope, kind::ORDER).await?;
            }
        }
        Ok(orphans)
    }

    /// Documents of `kind` in one logical partition (a `COUNT` within one partition).
    async fn count_in_scope(&self, tenant: &str, scope: &str, kind: &str) -> StoreResult<u64> {
        let counts: Vec<u64> = self
            .query_docs(
                self.data(),
                scope_feed(tenant, scope),
                "SELECT VALUE COUNT(1) FROM c WHERE c.type = @kind",
                vec![param("@kind", kind)],
            )
            .await?;
        Ok(counts.into_iter().sum())
    }

    /// Checks a container's settings against what the store relies on.
    async fn check_container(
        &self,
        container: &azure_data_cosmos::clients::ContainerClient,
        name: &str,
        key_paths: &[&str],
        problems: &mut Vec<String>,
    ) -> StoreResult<()> {
        let properties = self
            .bounded("read container", container.read(None))
            .await?
            .into_model()
            .map_err(|error| shape_error(format!("container {name}: {error}")))?;
        let paths: Vec<&str> = properties
            .partition_key
            .paths()
            .iter()
            .map(|path| path.as_ref())
            .collect();
        if paths != key_paths {
            problems.push(format!(
                "container {name}: partition key {paths:?}, expected {key_paths:?}"
            ));
        }
        if name == DATA_CONTAINER {
            if properties.default_ttl == azure_data_cosmos::models::TimeToLive::Forever {
                problems.push(format!("container {name}: time to live is off, so notifications, idempotency keys and processed events never expire"));
            }
            missing_composite_indexes(name, properties.indexing_policy.as_ref(), problems);
        }
        Ok(())
    }

    /// Reads the most recently written documents of `tenantdata` and `jobs` and lists those whose
    /// envelope is broken.
    async fn check_sample(&self, problems: &mut Vec<String>) -> StoreResult<()> {
        let sql = format!("SELECT TOP {INTEGRITY_SAMPLE} * FROM c ORDER BY c._ts DESC");
        let data: Vec<Value> = self
            .query_docs(self.data(), FeedScope::full_container(), &sql, Vec::new())
            .await?;
        problems.extend(data.iter().filter_map(data_doc_problem));
        let jobs: Vec<Value> = self
            .query_docs(self.jobs(), FeedScope::full_container(), &sql, Vec::new())
            .await?;
        problems.extend(jobs.iter().filter_map(job_doc_problem));
        Ok(())
    }
}

/// Adds a problem for each composite index of [`data_indexing_policy`] the container lacks
/// (the listings' and scans' `ORDER BY` fail without them on a real account).
fn missing_composite_indexes(
    name: &str,
    policy: Option<&azure_data_cosmos::models::IndexingPolicy>,
    problems: &mut Vec<String>,
) {
    let Some(policy) = policy else {
        return;
    };
    let have = serde_json::to_value(&policy.composite_indexes).unwrap_or(Value::Null);
    let have = have.as_array().cloned().unwrap_or_default();
    let expected = data_indexing_policy();
    for index in expected["compositeIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let wanted: Vec<(String, String)> = composite_paths(index);
        if !have
            .iter()
            .any(|present| composite_paths(present) == wanted)
        {
            problems.push(format!(
                "container {name}: composite index {wanted:?} is missing"
            ));
        }
    }
}

/// A composite index as `(path, order)` pairs (the properties array, or an object holding it).
fn composite_paths(index: &Value) -> Vec<(String, String)> {
    let properties = index.get("properties").unwrap_or(index);
    properties
        .as_array()
        .into_iter()
        .flatten()
        .map(|property| {
            let text = |field: &str| {
                property[field]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
            };
            (text("path"), text("order"))
        })
        .collect()
}

/// What is wrong with a `tenantdata` document's envelope, if anything.
fn data_doc_problem(doc: &Value) -> Option<String> {
    let text = |field: &str| doc.get(field).and_then(Value::as_str).unwrap_or_default();
    let (id, tenant, scope, doc_kind) = (text("id"), text("tenantId"), text("scope"), text("type"));
    let problem = if id.is_empty() || tenant.is_empty() || doc_kind.is_empty() {
        Some("lacks id, tenantId or type".to_owned())
    } else if record_id(doc_kind, id).is_err() {
        Some(format!("id does not start with its type {doc_kind:?}"))
    } else if !(scope == CATALOG_SCOPE
        || scope == TENANT_SCOPE
        || scope_customer(scope).is_some_and(|c| !c.is_empty()))
    {
        Some(format!(
            "scope {scope:?} is not catalog, tenant or customer:{{id}}"
        ))
    } else if doc.get("body").is_none_or(|body| !body.is_object()) {
        Some("has no body".to_owned())
    } else if TIMED_KINDS.contains(&doc_kind)
        && doc
            .get("at")
            .and_then(Value::as_str)
            .is_none_or(|at| parse_at(at).is_err())
    {
        Some("has no valid `at`, so the jobs never select it".to_owned())
    } else {
        None
    };
    problem.map(|problem| format!("tenantdata document {id:?} of tenant {tenant:?}: {problem}"))
}

/// What is wrong with a `jobs` document, if anything.
fn job_doc_problem(doc: &Value) -> Option<String> {
    let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
    let parsed = match doc.get("type").and_then(Value::as_str) {
        Some(kind::LEASE) => serde_json::from_value::<LeaseDoc>(doc.clone()).map(|_| ()),
        Some(kind::JOB_RUN) => serde_json::from_value::<RunDoc>(doc.clone()).map(|_| ()),
        other => return Some(format!("jobs document {id:?}: unknown type {other:?}")),
    };
    parsed
        .err()
        .map(|error| format!("jobs document {id:?}: {error}"))
}

#[async_trait::async_trait]
impl MaintenanceStore for CosmosStore {
    /// Orders embed their items: none can be orphaned.
    async fn scan_orphan_order_items(
        &self,
        _after: Option<Cursor>,
        _limit: u32,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        Ok(Vec::new())
    }

    async fn scan_orphan_notifications(
        &self,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut found = Vec::new();
        let mut walk = TenantWalk::new(kind::NOTIFICATION, after.as_ref());
        while let Some((tenant, after_id)) = walk.next(self).await? {
            self.orphan_notifications_of(&tenant, after_id, &mut found, limit as usize)
                .await?;
            if found.len() >= limit as usize {
                break;
            }
        }
        Ok(found)
    }

    async fn scan_expired_idempotency_keys(
        &self,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String)>> {
        let docs = self
            .expired_after(
                kind::IDEMPOTENCY,
                "c.id",
                before,
                after,
                |key| doc_id(kind::IDEMPOTENCY, key),
                limit,
            )
            .await?;
        docs.into_iter()
            .map(|(tenant, id, _)| Ok((tenant, record_id(kind::IDEMPOTENCY, &id)?.to_owned())))
            .collect()
    }

    async fn scan_expired_processed_events(
        &self,
        before: DateTime<Utc>,
        after: Option<Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, String)>> {
        // The cursor's id is `{consumer}\n{event id}` (see the maintenance job).
        let after_doc_id = |id: &str| doc_id(kind::PROCESSED_EVENT, &id.replacen('\n', ":", 1));
        let docs = self
            .expired_after(
                kind::PROCESSED_EVENT,
                "c.id, c.body.consumer, c.body.eventId",
                before,
                after,
                after_doc_id,
                limit,
            )
            .await?;
        docs.into_iter()
            .map(|(tenant, id, doc)| {
                let field = |name: &str| {
                    doc[name].as_str().map(str::to_owned).ok_or_else(|| {
                        shape_error(format!("processed event {id:?} without {name}"))
                    })
                };
                Ok((tenant, field("consumer")?, field("eventId")?))
            })
            .collect()
    }

    async fn settle_stock_reservations(
        &self,
        before: DateTime<Utc>,
        dry_run: bool,
    ) -> StoreResult<Vec<(String, u64)>> {
        self.settle_reservations(before, dry_run).await
    }

    async fn count_orders_without_customer(&self) -> StoreResult<Vec<(String, u64)>> {
        let mut counts = Vec::new();
        let mut walk = TenantWalk::new(kind::ORDER, None);
        while let Some((tenant, _)) = walk.next(self).await? {
            let orphans = self.orders_without_customer_of(&tenant).await?;
            if orphans > 0 {
                counts.push((tenant, orphans));
            }
        }
        Ok(counts)
    }

    /// Cosmos DB needs no vacuuming or statistics: nothing is changed, dry run or not. The
    /// integrity check reads both containers' settings (partition keys, time to live, the
    /// composite indexes the queries need) and the most recently written documents of each
    /// (their envelope: id, tenant, scope, type, body, and the `at` the jobs select by).
    async fn maintain_engine(&self, _dry_run: bool) -> StoreResult<EngineMaintenance> {
        let mut problems = Vec::new();
        self.check_container(
            self.data(),
            DATA_CONTAINER,
            &["/tenantId", "/scope"],
            &mut problems,
        )
        .await?;
        self.check_container(self.jobs(), JOBS_CONTAINER, &["/jobName"], &mut problems)
            .await?;
        self.check_sample(&mut problems).await?;
        problems.truncate(MAX_PROBLEMS);
        if problems.is_empty() {
            problems.push("ok".to_owned());
        }
        Ok(EngineMaintenance {
            backend: BACKEND.to_owned(),
            integrity: problems,
            free_pages_before: 0,
            free_pages_after: 0,
            optimized: false,
        })
    }
}

#[cfg(all(test, feature = "cosmos-emulator"))]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[tokio::test]
    async fn maintenance_finds_leftovers_over_every_tenant() {
        let store = store().await;
        put_customer(&store, "t1", "c1", "active", now()).await;
        put_customer(&store, "t2", "c3", "erased", now()).await;
        put_notification(&store, "t1", "n1", Some("c1"), now(), false).await;
        put_notification(&store, "t1", "n2", Some("c2"), now(), false).await;
        put_notification(&store, "t1", "n0", None, now(), false).await;
        put_notification(&store, "t2", "n3", Some("c3"), now(), false).await;
        put_notification(&store, "t2", "n4", Some("c4"), now(), false).await;
        let first = store.scan_orphan_notifications(None, 2).await.unwrap();
        assert_eq!(
            first,
            [("t1".into(), "n2".into()), ("t2".into(), "n3".into())]
        );
        let next = store
            .scan_orphan_notifications(Some(Cursor::new("t2", "n3")), 2)
            .await
            .unwrap();
        assert_eq!(next, [("t2".to_owned(), "n4".to_owned())]);
        assert!(store
            .scan_orphan_order_items(None, 10)
            .await
            .unwrap()
            .is_empty());

        for (tenant, key, customer, hours) in [
            ("t1", "k1", "c1", 30),
            ("t1", "k2", "c1", 1),
            ("t2", "k3", "c3", 48),
        ] {
            put(
                &store,
                kind::IDEMPOTENCY,
                key,
                tenant,
                &customer_scope(customer),
                now() - chrono::Duration::hours(hours),
                json!({"key": key}),
            )
            .await;
        }
        let keys = store
            .scan_expired_idempotency_keys(now() - chrono::Duration::hours(24), None, 10)
            .await
            .unwrap();
        assert_eq!(
            keys,
            [("t1".into(), "k1".into()), ("t2".into(), "k3".into())]
        );
        let after = store
            .scan_expired_idempotency_keys(
                now() - chrono::Duration::hours(24),
                Some(Cursor::new("t1", "k1")),
                10,
            )
            .await
            .unwrap();
        assert_eq!(after, [("t2".to_owned(), "k3".to_owned())]);

        let event = |consumer: &str, event: &str| json!({"consumer": consumer, "eventId": event});
        put(
            &store,
            kind::PROCESSED_EVENT,
            "dispatch:e1",
            "t1",
            &customer_scope("c1"),
            days_ago(8),
            event("dispatch", "e1"),
        )
        .await;
        put(
            &store,
            kind::PROCESSED_EVENT,
            "dispatch:e2",
            "t1",
            &customer_scope("c1"),
            days_ago(1),
            event("dispatch", "e2"),
        )
        .await;
        let events = store
            .scan_expired_processed_events(days_ago(7), None, 10)
            .await
            .unwrap();
        assert_eq!(
            events,
            [("t1".to_owned(), "dispatch".to_owned(), "e1".to_owned())]
        );
        assert!(store
            .scan_expired_processed_events(days_ago(7), Some(Cursor::new("t1", "dispatch\ne1")), 10)
            .await
            .unwrap()
            .is_empty());

        store
            .acquire_lease("DatabaseMaintenance", "m", TTL, None)
            .await
            .unwrap();
        let fence = Fence {
            job: "DatabaseMaintenance".into(),
            holder: "m".into(),
            ttl: TTL,
            checkpoint: None,
        };
        let removed = store
            .remove_rows(
                Removal::ProcessedEvents(vec![("t1".into(), "dispatch".into(), "e1".into())]),
                fence.clone(),
            )
            .await
            .unwrap();
        assert_eq!(removed, 1);
        assert_eq!(
            store
                .remove_rows(Removal::IdempotencyKeys(keys), fence.clone())
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .remove_rows(Removal::NotificationsByKey(first), fence.clone())
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .remove_rows(
                    Removal::OrderItems(vec![("t1".into(), "o1".into(), 1)]),
                    fence
                )
                .await
                .unwrap(),
            0
        );

        put(
            &store,
            kind::ORDER,
            "o1",
            "t1",
            &customer_scope("c1"),
            now(),
            json!({"id": "o1"}),
        )
        .await;
        put(
            &store,
            kind::ORDER,
            "o2",
            "t1",
            &customer_scope("gone"),
            now(),
            json!({"id": "o2"}),
        )
        .await;
        put(
            &store,
            kind::ORDER,
            "o3",
            "t1",
            &customer_scope("gone"),
            now(),
            json!({"id": "o3"}),
        )
        .await;
        put(
            &store,
            kind::ORDER,
            "o4",
            "t2",
            &customer_scope("c3"),
            now(),
            json!({"id": "o4"}),
        )
        .await;
        assert_eq!(
            store.count_orders_without_customer().await.unwrap(),
            [("t1".to_owned(), 2)]
        );
    }

    #[tokio::test]
    async fn the_engine_check_finds_broken_envelopes() {
        let store = store().await;
        put_customer(&store, "t1", "c1", "active", now()).await;
        store.acquire_lease(JOB, "a", TTL, None).await.unwrap();
        let report = store.maintain_engine(false).await.unwrap();
        assert_eq!(
            report,
            EngineMaintenance {
                backend: "cosmos".into(),
                integrity: vec!["ok".into()],
                free_pages_before: 0,
                free_pages_after: 0,
                optimized: false
            }
        );

        let broken = json!({"id": "notification:n1", "tenantId": "t1", "scope": "tenant", "type": "notification", "body": {"id": "n1"}});
        store
            .create_doc(
                store.data(),
                pk("t1", TENANT_SCOPE),
                "notification:n1",
                &broken,
            )
            .await
            .unwrap();
        let misfiled = json!({"id": "n2", "tenantId": "t1", "scope": "tenant", "type": "audit", "at": ts(now()), "body": {}});
        store
            .create_doc(store.data(), pk("t1", TENANT_SCOPE), "n2", &misfiled)
            .await
            .unwrap();
        let report = store.maintain_engine(true).await.unwrap();
        assert_eq!(report.integrity.len(), 2, "{:?}", report.integrity);
        assert!(report
            .integrity
            .iter()
            .any(|problem| problem.contains("notification:n1") && problem.contains("`at`")));
        assert!(report
            .integrity
            .iter()
            .any(|problem| problem.contains("\"n2\"") && problem.contains("type")));
    }
}
