//! The storage conformance suite: every behaviour the domain relies on from a [`Store`], written
//! once against the trait and run against each adapter (today SQLite; the Cosmos DB adapter of
//! issue 5 joins by adding one `adapter!` line). Each test names the behaviour it proves.

use std::sync::Arc;

use chrono::{Duration, Utc};
use shared::domain::audit::AuditEntry;
use shared::domain::customer::{Customer, CustomerInput, CustomerStatus, NotificationPreferences};
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::notification::{Notification, Recipient};
use shared::domain::order::{OrderInput, OrderLineInput, OrderStatus, StatusInput};
use shared::domain::product::Product;
use shared::store::sqlite::Db;
use shared::store::{
    AuditFilter, ETag, IdempotencyKey, NewOrder, OrderCreated, OrderFilter, PageRequest, Rejection, Store, StoreError, TenantId,
};

/// An adapter under test, and what keeps its backing storage alive.
struct Subject {
    store: Arc<dyn Store>,
    _keep: tempfile::TempDir,
}

fn sqlite() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("app.db")).unwrap();
    Subject { store: Arc::new(db), _keep: dir }
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn audit(tenant: &TenantId, action: &str, target: &str) -> AuditEntry {
    AuditEntry::now(tenant.as_str(), "actor-1", action, "test", target, "corr-1")
}

fn customer(id: &str) -> Customer {
    let now = shared::domain::now();
    Customer {
        id: id.into(),
        tenant_id: String::new(),
        name: format!("Name {id}"),
        email: format!("{id}@example.org"),
        phone: None,
        address: None,
        preferences: NotificationPreferences::default(),
        status: CustomerStatus::Active,
        created_at: now,
        updated_at: now,
        last_activity_at: now,
        etag: String::new(),
    }
}

fn product(id: &str, stock: i64) -> Product {
    let now = shared::domain::now();
    Product {
        id: id.into(),
        tenant_id: String::new(),
        name: format!("Product {id}"),
        category: "kitchen".into(),
        description: None,
        price_cents: 250,
        currency: "EUR".into(),
        stock,
        active: true,
        created_at: now,
        updated_at: now,
        etag: String::new(),
    }
}

fn new_order(id: &str, customer: &str, lines: &[(&str, i64)], key: Option<(&str, &str)>) -> NewOrder {
    NewOrder {
        id: id.into(),
        customer_id: customer.into(),
        input: OrderInput {
            customer_id: Some(customer.into()),
            items: lines.iter().map(|(product, quantity)| OrderLineInput { product_id: (*product).into(), quantity: *quantity }).collect(),
            shipping_address: None,
        },
        actor_id: "actor-1".into(),
        idempotency: key.map(|(key, hash)| IdempotencyKey { key: key.into(), request_hash: hash.into() }),
    }
}

async fn seed(store: &dyn Store, tenant: &TenantId) {
    store.create_customer(tenant, customer("c-1"), audit(tenant, "customer.create", "c-1")).await.unwrap();
    store.create_product(tenant, product("p-1", 10), audit(tenant, "product.create", "p-1")).await.unwrap();
    store.create_product(tenant, product("p-2", 1), audit(tenant, "product.create", "p-2")).await.unwrap();
}

async fn created_and_read_back_equal(subject: Subject) {
    let t = tenant("t1");
    let stored = subject.store.create_customer(&t, customer("c-1"), audit(&t, "customer.create", "c-1")).await.unwrap();
    let read = subject.store.get_customer(&t, "c-1").await.unwrap();
    assert_eq!(read, stored);
    assert_eq!(read.tenant_id, "t1");
    assert!(!read.etag.is_empty());
}

async fn missing_and_other_tenants_documents_are_both_not_found(subject: Subject) {
    let (a, b) = (tenant("a"), tenant("b"));
    seed(subject.store.as_ref(), &a).await;
    assert!(matches!(subject.store.get_customer(&a, "nope").await, Err(StoreError::NotFound)));
    assert!(matches!(subject.store.get_customer(&b, "c-1").await, Err(StoreError::NotFound)));
    assert!(matches!(subject.store.get_product(&b, "p-1").await, Err(StoreError::NotFound)));
    assert!(subject.store.list_customers(&b, PageRequest::first(10)).await.unwrap().items.is_empty());
}

async fn updates_check_the_etag(subject: Subject) {
    let t = tenant("t1");
    let first = subject.store.create_customer(&t, customer("c-1"), audit(&t, "customer.create", "c-1")).await.unwrap();
    let input = CustomerInput { name: "New Name".into(), email: "new@example.org".into(), phone: None, address: None, preferences: None };
    let second = subject.store.update_customer(&t, "c-1", input.clone(), Some(ETag::new(first.etag.clone())), audit(&t, "customer.update", "c-1")).await.unwrap();
    assert_ne!(second.etag, first.etag);
    assert_eq!(second.name, "New Name");
    let stale = subject.store.update_customer(&t, "c-1", input.clone(), Some(ETag::new(first.etag)), audit(&t, "customer.update", "c-1")).await;
    match stale {
        Err(StoreError::PreconditionFailed { current }) => assert_eq!(current.as_str(), second.etag),
        other => panic!("expected 412, got {other:?}"),
    }
    subject.store.update_customer(&t, "c-1", input, None, audit(&t, "customer.update", "c-1")).await.unwrap();
}

async fn paging_returns_every_item_once_and_is_stable_under_inserts(subject: Subject) {
    let t = tenant("t1");
    for index in 0..7 {
        subject.store.create_customer(&t, customer(&format!("c-{index}")), audit(&t, "customer.create", "c")).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut continuation = None;
    let mut pages = 0;
    loop {
        let page = subject.store.list_customers(&t, PageRequest::new(3, continuation)).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|c| c.id.clone()));
        if pages == 1 {
            // An insert between page reads neither repeats nor skips what was already listed.
            subject.store.create_customer(&t, customer("c-late"), audit(&t, "customer.create", "c-late")).await.unwrap();
        }
        match page.continuation {
            Some(token) => continuation = Some(token),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no duplicates: {seen:?}");
    assert_eq!(seen.len(), 8, "every customer, the late one included: {seen:?}");
    assert_eq!(pages, 3);
}

async fn continuation_tokens_are_checked(subject: Subject) {
    let t = tenant("t1");
    for index in 0..3 {
        subject.store.create_product(&t, product(&format!("p-{index}"), 1), audit(&t, "product.create", "p")).await.unwrap();
    }
    let page = subject.store.list_products(&t, Default::default(), PageRequest::first(1)).await.unwrap();
    let token = page.continuation.unwrap();
    assert!(matches!(subject.store.list_customers(&t, PageRequest::new(1, Some(token))).await, Err(StoreError::InvalidContinuation(_))));
    assert!(matches!(subject.store.list_customers(&t, PageRequest::new(1, Some("garbage".into()))).await, Err(StoreError::InvalidContinuation(_))));
}

async fn order_creation_reserves_stock_atomically(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    let created = subject.store.create_order(&t, new_order("o-1", "c-1", &[("p-1", 3)], None), audit(&t, "order.create", "o-1")).await.unwrap();
    let OrderCreated::New(order) = created else { panic!("expected a new order") };
    assert_eq!(order.total_cents, 750);
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(subject.store.get_product(&t, "p-1").await.unwrap().stock, 7);
    // A line that cannot be served refuses the whole order: no stock moves.
    let refused = subject.store.create_order(&t, new_order("o-2", "c-1", &[("p-1", 1), ("p-2", 2)], None), audit(&t, "order.create", "o-2")).await;
    assert!(matches!(refused, Err(StoreError::Rejected(Rejection::InsufficientStock { available: 1, requested: 2, .. }))), "{refused:?}");
    assert_eq!(subject.store.get_product(&t, "p-1").await.unwrap().stock, 7);
    assert!(matches!(subject.store.get_order(&t, "o-2").await, Err(StoreError::NotFound)));
    let unknown = subject.store.create_order(&t, new_order("o-3", "c-1", &[("p-9", 1)], None), audit(&t, "order.create", "o-3")).await;
    assert!(matches!(unknown, Err(StoreError::Rejected(Rejection::UnknownProducts(_)))));
    let no_customer = subject.store.create_order(&t, new_order("o-4", "c-9", &[("p-1", 1)], None), audit(&t, "order.create", "o-4")).await;
    assert!(matches!(no_customer, Err(StoreError::NotFound)));
}

async fn idempotency_keys_replay_the_first_result(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    let first = subject.store.create_order(&t, new_order("o-1", "c-1", &[("p-1", 2)], Some(("k-1", "h-1"))), audit(&t, "order.create", "o-1")).await.unwrap();
    let again = subject.store.create_order(&t, new_order("o-2", "c-1", &[("p-1", 2)], Some(("k-1", "h-1"))), audit(&t, "order.create", "o-2")).await.unwrap();
    let (OrderCreated::New(first), OrderCreated::Replayed(again)) = (first, again) else { panic!("expected new then replayed") };
    assert_eq!(again.id, first.id);
    assert_eq!(subject.store.get_product(&t, "p-1").await.unwrap().stock, 8, "reserved once");
    let other_body = subject.store.create_order(&t, new_order("o-3", "c-1", &[("p-1", 1)], Some(("k-1", "h-2"))), audit(&t, "order.create", "o-3")).await;
    assert!(matches!(other_body, Err(StoreError::Rejected(Rejection::IdempotencyKeyReused))));
    // Keys are per tenant.
    let other = tenant("t2");
    seed(subject.store.as_ref(), &other).await;
    let elsewhere = subject.store.create_order(&other, new_order("o-9", "c-1", &[("p-1", 1)], Some(("k-1", "h-9"))), audit(&other, "order.create", "o-9")).await.unwrap();
    assert!(matches!(elsewhere, OrderCreated::New(_)));
}

async fn order_status_follows_the_state_machine_and_cancel_releases_stock(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    subject.store.create_order(&t, new_order("o-1", "c-1", &[("p-1", 4)], None), audit(&t, "order.create", "o-1")).await.unwrap();
    let change = |status| StatusInput { status, reason: None };
    subject.store.change_order_status(&t, "o-1", change(OrderStatus::Confirmed), "actor-1", None, audit(&t, "order.status", "o-1")).await.unwrap();
    let illegal = subject.store.change_order_status(&t, "o-1", change(OrderStatus::Delivered), "actor-1", None, audit(&t, "order.status", "o-1")).await;
    assert!(matches!(illegal, Err(StoreError::Rejected(Rejection::IllegalTransition(_)))));
    subject.store.change_order_status(&t, "o-1", change(OrderStatus::Cancelled), "actor-1", None, audit(&t, "order.status", "o-1")).await.unwrap();
    assert_eq!(subject.store.get_product(&t, "p-1").await.unwrap().stock, 10);
    let history: Vec<OrderStatus> = subject.store.order_history(&t, "o-1").await.unwrap().into_iter().map(|c| c.status).collect();
    assert_eq!(history, [OrderStatus::Pending, OrderStatus::Confirmed, OrderStatus::Cancelled]);
}

async fn order_listing_filters(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    subject.store.create_customer(&t, customer("c-2"), audit(&t, "customer.create", "c-2")).await.unwrap();
    let before = Utc::now() - Duration::seconds(1);
    subject.store.create_order(&t, new_order("o-1", "c-1", &[("p-1", 1)], None), audit(&t, "order.create", "o-1")).await.unwrap();
    subject.store.create_order(&t, new_order("o-2", "c-2", &[("p-1", 1)], None), audit(&t, "order.create", "o-2")).await.unwrap();
    subject.store.change_order_status(&t, "o-2", StatusInput { status: OrderStatus::Confirmed, reason: None }, "a", None, audit(&t, "s", "o-2")).await.unwrap();
    let ids = |page: shared::store::Page<shared::domain::order::Order>| page.items.into_iter().map(|o| o.id).collect::<Vec<_>>();
    let by_customer = subject.store.list_orders(&t, OrderFilter { customer_id: Some("c-1".into()), ..Default::default() }, PageRequest::first(10)).await.unwrap();
    assert_eq!(ids(by_customer), ["o-1"]);
    let confirmed = subject.store.list_orders(&t, OrderFilter { status: Some(OrderStatus::Confirmed), ..Default::default() }, PageRequest::first(10)).await.unwrap();
    assert_eq!(ids(confirmed), ["o-2"]);
    let all = subject.store.list_orders(&t, OrderFilter { created_from: Some(before), ..Default::default() }, PageRequest::first(10)).await.unwrap();
    assert_eq!(ids(all), ["o-2", "o-1"], "newest first");
    let none = subject.store.list_orders(&t, OrderFilter { created_to: Some(before), ..Default::default() }, PageRequest::first(10)).await.unwrap();
    assert!(none.items.is_empty());
}

async fn notifications_list_unread_first_and_are_read_only_by_their_recipient(subject: Subject) {
    let t = tenant("t1");
    let note = |id: &str, minutes_ago: i64| Notification {
        id: id.into(),
        tenant_id: String::new(),
        recipient: Recipient::Customer("c-1".into()),
        category: "message".into(),
        title: "t".into(),
        message: "m".into(),
        order_id: None,
        read_at: None,
        created_at: shared::domain::now() - Duration::minutes(minutes_ago),
    };
    for (id, age) in [("n-old", 30), ("n-mid", 20), ("n-new", 10)] {
        subject.store.create_notification(&t, note(id, age), audit(&t, "notification.send", id)).await.unwrap();
    }
    let own = [Recipient::Customer("c-1".into())];
    subject.store.mark_notification_read(&t, "n-new", &own, audit(&t, "notification.read", "n-new")).await.unwrap();
    let stranger = [Recipient::Customer("c-2".into())];
    assert!(matches!(subject.store.mark_notification_read(&t, "n-old", &stranger, audit(&t, "r", "n-old")).await, Err(StoreError::NotFound)));
    let mut order = Vec::new();
    let mut continuation = None;
    loop {
        let page = subject.store.list_notifications(&t, &own, PageRequest::new(2, continuation)).await.unwrap();
        order.extend(page.items.into_iter().map(|n| n.id));
        match page.continuation {
            Some(token) => continuation = Some(token),
            None => break,
        }
    }
    assert_eq!(order, ["n-mid", "n-old", "n-new"], "unread newest first, then read");
    assert!(subject.store.list_notifications(&t, &stranger, PageRequest::first(10)).await.unwrap().items.is_empty());
}

async fn every_write_is_audited_in_the_same_tenant(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    subject.store.create_order(&t, new_order("o-1", "c-1", &[("p-1", 1)], None), audit(&t, "order.create", "o-1").about_customer("c-1")).await.unwrap();
    let all = subject.store.list_audit(&t, AuditFilter::default(), PageRequest::first(100)).await.unwrap();
    let actions: Vec<&str> = all.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["order.create", "product.create", "product.create", "customer.create"], "newest first");
    let about = subject.store.list_audit(&t, AuditFilter { customer_id: Some("c-1".into()), ..Default::default() }, PageRequest::first(100)).await.unwrap();
    assert_eq!(about.items.len(), 1);
    assert!(subject.store.list_audit(&tenant("t2"), AuditFilter::default(), PageRequest::first(10)).await.unwrap().items.is_empty());
}

async fn a_repeated_erasure_request_returns_the_open_one(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    let record = |id: &str| ErasureRecord {
        id: id.into(),
        tenant_id: "t1".into(),
        customer_id: "c-1".into(),
        requested_by: "actor-1".into(),
        status: ErasureStatus::Accepted,
        requested_at: shared::domain::now(),
        updated_at: shared::domain::now(),
        report: None,
    };
    let (first, created) = subject.store.request_erasure(&t, record("r-1"), audit(&t, "gdpr", "c-1")).await.unwrap();
    assert!(created);
    let (again, created_again) = subject.store.request_erasure(&t, record("r-2"), audit(&t, "gdpr", "c-1")).await.unwrap();
    assert!(!created_again);
    assert_eq!(again.id, first.id);
    assert_eq!(subject.store.get_customer(&t, "c-1").await.unwrap().status, CustomerStatus::ErasureRequested);
    assert_eq!(subject.store.get_erasure(&t, "c-1", "r-1").await.unwrap().status, ErasureStatus::Accepted);
    assert!(matches!(subject.store.get_erasure(&tenant("t2"), "c-1", "r-1").await, Err(StoreError::NotFound)));
    let input = CustomerInput { name: "x".into(), email: "x@example.org".into(), phone: None, address: None, preferences: None };
    let blocked = subject.store.update_customer(&t, "c-1", input, None, audit(&t, "customer.update", "c-1")).await;
    assert!(matches!(blocked, Err(StoreError::Rejected(Rejection::CustomerNotActive(_)))));
}

async fn the_store_reports_healthy(subject: Subject) {
    subject.store.ping().await.unwrap();
}

/// Runs one behaviour against one adapter.
macro_rules! adapter {
    ($adapter:ident: $($behaviour:ident),* $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    super::$behaviour(super::$adapter()).await;
                }
            )*
        }
    };
}

adapter!(sqlite:
    created_and_read_back_equal,
    missing_and_other_tenants_documents_are_both_not_found,
    updates_check_the_etag,
    paging_returns_every_item_once_and_is_stable_under_inserts,
    continuation_tokens_are_checked,
    order_creation_reserves_stock_atomically,
    idempotency_keys_replay_the_first_result,
    order_status_follows_the_state_machine_and_cancel_releases_stock,
    order_listing_filters,
    notifications_list_unread_first_and_are_read_only_by_their_recipient,
    every_write_is_audited_in_the_same_tenant,
    a_repeated_erasure_request_returns_the_open_one,
    the_store_reports_healthy,
);
