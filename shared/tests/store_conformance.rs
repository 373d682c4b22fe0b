//! The storage conformance suite: every behaviour the domain relies on from a [`Store`], written
//! once against the trait (`Arc<dyn Store>`) and instantiated per adapter by one line at the
//! end of the file ([`every_behaviour!`]): `store_conformance::sqlite::<behaviour>` and
//! `store_conformance::cosmos::<behaviour>` (the Cosmos DB adapter on the SDK's in-memory
//! emulator). Each test names the behaviour it proves; `docs/store-conformance.md` is the
//! table of them per backend.
//!
//! Every test gets a fresh store. Times the tests compare are whole microseconds
//! ([`shared::domain::now`]), as both adapters store them.

#[path = "fixtures/records.rs"]
mod records;
use records::customer;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use shared::domain::audit::AuditEntry;
use shared::domain::consent::{ConsentChannel, ConsentRecord, Purpose};
use shared::domain::customer::{Address, Customer, CustomerInput, CustomerStatus};
use shared::domain::etag::ETag;
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::masking::{Masker, PseudonymKey, ERASED_TEXT};
use shared::domain::messages::{CustomerEvent, OrderEvent, OrderEventType};
use shared::domain::notification::{Notification, Recipient};
use shared::domain::order::{OrderInput, OrderLineInput, OrderStatus, StatusInput};
use shared::domain::product::{Product, ProductInput};
use shared::domain::rejection::Rejection;
use shared::domain::tenant::TenantId;
use shared::jobs::erasure::RETENTION_REQUESTER;
use shared::outbox::OutboxMessage;
use shared::store::cosmos::CosmosOptions;
use shared::store::jobs::{
    is_lease_lost, Cursor, Fence, JobRunRecord, LeaseGrant, NotificationScan, Removal,
};
use shared::store::sqlite::Db;
use shared::store::{
    AuditFilter, AuditRecorded, DispatchOutcome, ErasureProgress, ErasureStart, ErasureStep,
    ErpMasterData, Fanout, IdempotencyKey, IfMatch, MasterApplied, NewOrder, OrderCreated,
    OrderFilter, PageRequest, ProductFilter, SkipReason, Store, StoreError,
};

// ---------------------------------------------------------------------------------------------
// Subjects: one adapter each, on fresh storage.
// ---------------------------------------------------------------------------------------------

/// An adapter under test, and what keeps its backing storage alive.
struct Subject {
    store: Arc<dyn Store>,
    _keep: tempfile::TempDir,
}

async fn sqlite() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("app.db")).unwrap();
    Subject {
        store: Arc::new(db),
        _keep: dir,
    }
}

/// The Cosmos DB store on a fresh in-memory emulator.
async fn cosmos() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let cosmos = shared::store::cosmos::in_memory(CosmosOptions::for_emulator(), vec![])
        .await
        .unwrap();
    Subject {
        store: Arc::new(cosmos.store),
        _keep: dir,
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn now() -> DateTime<Utc> {
    shared::domain::now()
}

fn audit(tenant: &TenantId, action: &str, target: &str) -> AuditEntry {
    AuditEntry::now(tenant.as_str(), "actor-1", action, "test", target, "corr-1")
}

fn address() -> Address {
    Address {
        line1: "1 Main Street".into(),
        line2: Some("Flat 2".into()),
        city: "Berlin".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
    }
}

fn product(id: &str, stock: i64) -> Product {
    let now = now();
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
        sku: None,
        erp_on_hand: None,
        reserved: 0,
        created_at: now,
        updated_at: now,
        etag: String::new(),
    }
}

fn product_input(product: &Product, stock: i64) -> ProductInput {
    ProductInput {
        name: product.name.clone(),
        category: product.category.clone(),
        description: product.description.clone(),
        price_cents: product.price_cents,
        currency: product.currency.clone(),
        stock,
        active: product.active,
        sku: product.sku.clone(),
    }
}

fn new_order(
    id: &str,
    customer: &str,
    lines: &[(&str, i64)],
    key: Option<(&str, &str)>,
) -> NewOrder {
    NewOrder {
        id: id.into(),
        customer_id: customer.into(),
        input: OrderInput {
            customer_id: Some(customer.into()),
            items: lines
                .iter()
                .map(|(product, quantity)| OrderLineInput {
                    product_id: (*product).into(),
                    quantity: *quantity,
                })
                .collect(),
            shipping_address: None,
        },
        actor_id: "actor-1".into(),
        idempotency: key.map(|(key, hash)| IdempotencyKey {
            key: key.into(),
            request_hash: hash.into(),
        }),
    }
}

fn note(id: &str, recipient: Recipient, created_at: DateTime<Utc>) -> Notification {
    Notification {
        id: id.into(),
        tenant_id: String::new(),
        recipient,
        category: "message".into(),
        title: "t".into(),
        message: "m".into(),
        order_id: None,
        read_at: None,
        created_at,
    }
}

fn to_customer(id: &str) -> Recipient {
    Recipient::Customer(id.into())
}

fn erasure_record(id: &str, tenant: &str, customer: &str, requested_by: &str) -> ErasureRecord {
    ErasureRecord {
        id: id.into(),
        tenant_id: tenant.into(),
        customer_id: customer.into(),
        requested_by: requested_by.into(),
        status: ErasureStatus::Accepted,
        requested_at: now(),
        updated_at: now(),
        queued_at: None,
        report: None,
    }
}

fn masker(tenant: &TenantId, customer: &str) -> Masker {
    Masker::new(
        PseudonymKey::new("a-test-key-that-is-long-enough-0001").unwrap(),
        tenant.as_str(),
        customer,
        &[],
    )
}

fn event(id: &str, tenant: &TenantId, order: &str, customer: &str) -> CustomerEvent {
    CustomerEvent::Order(OrderEvent {
        event_id: id.into(),
        event_type: OrderEventType::Created,
        tenant_id: tenant.as_str().into(),
        order_id: order.into(),
        customer_id: customer.into(),
        occurred_at: now(),
    })
}

/// A fan-out like `NotificationDispatch`'s: one in-app notification to the customer, its audit
/// entry and one outbound email message.
fn plan(
    customer: &Customer,
    _: &shared::domain::preferences::Preferences,
    event: &CustomerEvent,
) -> Fanout {
    let notification = Notification {
        id: shared::domain::validation::new_id(),
        tenant_id: event.tenant_id().to_owned(),
        recipient: Recipient::Customer(customer.id.clone()),
        category: "order.created".into(),
        title: "Order received".into(),
        message: format!("We received your order {}.", event.order_id()),
        order_id: Some(event.order_id().to_owned()),
        read_at: None,
        created_at: now(),
    };
    let audit = AuditEntry::now(
        event.tenant_id(),
        "system:NotificationDispatch",
        "notification.dispatch",
        "notification",
        &notification.id,
        event.event_id(),
    )
    .about_customer(&customer.id);
    Fanout {
        notifications: vec![notification],
        outbound: vec![OutboxMessage::outbound_notification(
            &format!("{}:email", event.event_id()),
            &json!({ "deliveryId": format!("{}:email", event.event_id()), "channel": "email", "customerId": customer.id }),
            event.tenant_id(),
            "email",
            event.occurred_at(),
        )],
        audit: vec![audit],
    }
}

/// The lease every fenced job write in these tests is made under.
const JOB: &str = "DataRetentionCleanup";
const HOLDER: &str = "host:1:run-1";

fn fence(checkpoint: Option<Value>) -> Fence {
    Fence {
        job: JOB.into(),
        holder: HOLDER.into(),
        ttl: StdDuration::from_secs(60),
        checkpoint,
    }
}

async fn hold_lease(store: &dyn Store) {
    assert_eq!(
        store
            .acquire_lease(JOB, HOLDER, StdDuration::from_secs(60), None)
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
}

/// Customer c-1, products p-1 (stock 10) and p-2 (stock 1).
async fn seed(store: &dyn Store, tenant: &TenantId) {
    store
        .create_customer(
            tenant,
            customer("c-1"),
            audit(tenant, "customer.create", "c-1"),
        )
        .await
        .unwrap();
    store
        .create_product(
            tenant,
            product("p-1", 10),
            audit(tenant, "product.create", "p-1"),
        )
        .await
        .unwrap();
    store
        .create_product(
            tenant,
            product("p-2", 1),
            audit(tenant, "product.create", "p-2"),
        )
        .await
        .unwrap();
}

fn ids<T>(items: impl IntoIterator<Item = T>, id: impl Fn(T) -> String) -> Vec<String> {
    items.into_iter().map(id).collect()
}

/// Every notification of `recipients`, page by page.
async fn all_notifications(
    store: &dyn Store,
    tenant: &TenantId,
    recipients: &[Recipient],
) -> Vec<Notification> {
    let mut all = Vec::new();
    let mut continuation = None;
    loop {
        let page = store
            .list_notifications(tenant, recipients, PageRequest::new(3, continuation))
            .await
            .unwrap();
        all.extend(page.items);
        match page.continuation {
            Some(token) => continuation = Some(token),
            None => return all,
        }
    }
}

/// Every audit entry matching `filter`, page by page, newest first.
async fn all_audit(store: &dyn Store, tenant: &TenantId, filter: AuditFilter) -> Vec<AuditEntry> {
    let mut all = Vec::new();
    let mut continuation = None;
    loop {
        let page = store
            .list_audit(tenant, filter.clone(), PageRequest::new(4, continuation))
            .await
            .unwrap();
        all.extend(page.items);
        match page.continuation {
            Some(token) => continuation = Some(token),
            None => return all,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CRUD, 404s, tenant scoping, ETags
// ---------------------------------------------------------------------------------------------

async fn created_and_read_back_equal(subject: Subject) {
    let t = tenant("t1");
    let stored = subject
        .store
        .create_customer(&t, customer("c-1"), audit(&t, "customer.create", "c-1"))
        .await
        .unwrap();
    let read = subject.store.get_customer(&t, "c-1").await.unwrap();
    assert_eq!(read, stored);
    assert_eq!(read.tenant_id, "t1");
    assert!(!read.etag.is_empty());
    let product = subject
        .store
        .create_product(&t, product("p-1", 3), audit(&t, "product.create", "p-1"))
        .await
        .unwrap();
    assert_eq!(subject.store.get_product(&t, "p-1").await.unwrap(), product);
    let duplicate = subject
        .store
        .create_customer(&t, customer("c-1"), audit(&t, "customer.create", "c-1"))
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );
}

async fn missing_and_other_tenants_documents_are_both_not_found(subject: Subject) {
    let (a, b) = (tenant("a"), tenant("b"));
    seed(subject.store.as_ref(), &a).await;
    assert!(matches!(
        subject.store.get_customer(&a, "nope").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        subject.store.get_customer(&b, "c-1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        subject.store.get_product(&b, "p-1").await,
        Err(StoreError::NotFound)
    ));
    assert!(subject
        .store
        .list_customers(&b, PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn writes_naming_another_tenants_ids_are_not_found(subject: Subject) {
    let (a, b) = (tenant("a"), tenant("b"));
    let store = subject.store.as_ref();
    seed(store, &a).await;
    store
        .create_order(
            &a,
            new_order("o-1", "c-1", &[("p-1", 1)], None),
            audit(&a, "order.create", "o-1"),
        )
        .await
        .unwrap();
    store
        .create_notification(
            &a,
            note("n-1", to_customer("c-1"), now()),
            audit(&a, "notification.send", "n-1"),
        )
        .await
        .unwrap();
    let input = CustomerInput {
        name: "x".into(),
        email: "x@example.org".into(),
        phone: None,
        address: None,
        preferences: None,
    };
    assert!(matches!(
        store
            .update_customer(&b, "c-1", input, IfMatch::Any, audit(&b, "u", "c-1"))
            .await,
        Err(StoreError::NotFound)
    ));
    let p1 = store.get_product(&a, "p-1").await.unwrap();
    assert!(matches!(
        store
            .update_product(
                &b,
                "p-1",
                product_input(&p1, 99),
                IfMatch::Any,
                audit(&b, "u", "p-1")
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get_order(&b, "o-1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.order_history(&b, "o-1").await,
        Err(StoreError::NotFound)
    ));
    let confirm = StatusInput {
        status: OrderStatus::Confirmed,
        reason: None,
    };
    assert!(matches!(
        store
            .change_order_status(&b, "o-1", confirm, "a", IfMatch::Any, audit(&b, "s", "o-1"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .mark_notification_read(&b, "n-1", &[to_customer("c-1")], audit(&b, "r", "n-1"))
            .await,
        Err(StoreError::NotFound)
    ));
    // An order in tenant b cannot use tenant a's customer or products.
    let order = store
        .create_order(
            &b,
            new_order("o-2", "c-1", &[("p-1", 1)], None),
            audit(&b, "order.create", "o-2"),
        )
        .await;
    assert!(matches!(order, Err(StoreError::NotFound)), "{order:?}");
    assert!(store
        .list_orders(&b, OrderFilter::default(), PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_notifications(&b, &[to_customer("c-1")], PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    // Nothing in tenant a changed.
    assert_eq!(store.get_product(&a, "p-1").await.unwrap().stock, 9);
    assert_eq!(
        store.get_customer(&a, "c-1").await.unwrap().name,
        "Name c-1"
    );
    assert_eq!(
        store.get_order(&a, "o-1").await.unwrap().status,
        OrderStatus::Pending
    );
}

async fn updates_check_the_etag(subject: Subject) {
    let t = tenant("t1");
    let first = subject
        .store
        .create_customer(&t, customer("c-1"), audit(&t, "customer.create", "c-1"))
        .await
        .unwrap();
    let input = CustomerInput {
        name: "New Name".into(),
        email: "new@example.org".into(),
        phone: None,
        address: None,
        preferences: None,
    };
    let second = subject
        .store
        .update_customer(
            &t,
            "c-1",
            input.clone(),
            IfMatch::exactly(ETag::new(first.etag.clone())),
            audit(&t, "customer.update", "c-1"),
        )
        .await
        .unwrap();
    assert_ne!(second.etag, first.etag);
    assert_eq!(second.name, "New Name");
    let stale = subject
        .store
        .update_customer(
            &t,
            "c-1",
            input.clone(),
            IfMatch::exactly(ETag::new(first.etag)),
            audit(&t, "customer.update", "c-1"),
        )
        .await;
    match stale {
        Err(StoreError::PreconditionFailed { current }) => {
            assert_eq!(current.as_str(), second.etag)
        }
        other => panic!("expected 412, got {other:?}"),
    }
    subject
        .store
        .update_customer(
            &t,
            "c-1",
            input,
            IfMatch::Any,
            audit(&t, "customer.update", "c-1"),
        )
        .await
        .unwrap();
}

async fn product_and_order_updates_check_the_etag(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    let first = store.get_product(&t, "p-1").await.unwrap();
    let second = store
        .update_product(
            &t,
            "p-1",
            product_input(&first, 20),
            IfMatch::exactly(ETag::new(first.etag.clone())),
            audit(&t, "product.update", "p-1"),
        )
        .await
        .unwrap();
    assert_ne!(second.etag, first.etag);
    assert_eq!(store.get_product(&t, "p-1").await.unwrap(), second);
    match store
        .update_product(
            &t,
            "p-1",
            product_input(&first, 30),
            IfMatch::exactly(ETag::new(first.etag.clone())),
            audit(&t, "product.update", "p-1"),
        )
        .await
    {
        Err(StoreError::PreconditionFailed { current }) => {
            assert_eq!(current.as_str(), second.etag)
        }
        other => panic!("expected 412, got {other:?}"),
    }
    assert_eq!(
        store.get_product(&t, "p-1").await.unwrap().stock,
        20,
        "the stale update changed nothing"
    );

    let OrderCreated::New(order) = store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap()
    else {
        panic!("expected a new order")
    };
    assert_eq!(
        store.get_order(&t, "o-1").await.unwrap().etag,
        order.etag,
        "the ETag a create returns is the one stored"
    );
    let confirm = StatusInput {
        status: OrderStatus::Confirmed,
        reason: None,
    };
    let confirmed = store
        .change_order_status(
            &t,
            "o-1",
            confirm.clone(),
            "actor-1",
            IfMatch::exactly(ETag::new(order.etag.clone())),
            audit(&t, "order.status", "o-1"),
        )
        .await
        .unwrap();
    assert_ne!(confirmed.etag, order.etag);
    assert_eq!(
        store.get_order(&t, "o-1").await.unwrap().etag,
        confirmed.etag
    );
    let ship = StatusInput {
        status: OrderStatus::Shipped,
        reason: None,
    };
    match store
        .change_order_status(
            &t,
            "o-1",
            ship,
            "actor-1",
            IfMatch::exactly(ETag::new(order.etag)),
            audit(&t, "order.status", "o-1"),
        )
        .await
    {
        Err(StoreError::PreconditionFailed { current }) => {
            assert_eq!(current.as_str(), confirmed.etag)
        }
        other => panic!("expected 412, got {other:?}"),
    }
    assert_eq!(
        store.get_order(&t, "o-1").await.unwrap().status,
        OrderStatus::Confirmed
    );
}

async fn a_customers_etag_changes_only_when_the_profile_does(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    let before = store.get_customer(&t, "c-1").await.unwrap();
    store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    let after = store.get_customer(&t, "c-1").await.unwrap();
    assert!(
        after.last_activity_at > before.last_activity_at,
        "ordering is activity"
    );
    assert_eq!(
        after.etag, before.etag,
        "bookkeeping is not a change of the profile"
    );
    let input = CustomerInput {
        name: "Renamed".into(),
        email: "c-1@example.org".into(),
        phone: None,
        address: None,
        preferences: None,
    };
    let updated = store
        .update_customer(
            &t,
            "c-1",
            input,
            IfMatch::exactly(ETag::new(before.etag.clone())),
            audit(&t, "customer.update", "c-1"),
        )
        .await
        .unwrap();
    assert_eq!(
        updated.preferences, before.preferences,
        "preferences left out are kept"
    );
    let product = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!(product.stock, 9);
    store
        .create_order(
            &t,
            new_order("o-2", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-2"),
        )
        .await
        .unwrap();
    let reserved = store.get_product(&t, "p-1").await.unwrap();
    assert_ne!(
        reserved.etag, product.etag,
        "a product's stock is part of what clients see: a reservation changes its ETag"
    );
}

async fn product_listing_filters_by_name_and_category(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    for (id, name, category) in [
        ("p-1", "Blue Kettle", "kitchen"),
        ("p-2", "Red kettle 2L", "kitchen"),
        ("p-3", "Kettlebell", "sport"),
        ("p-4", "Toaster", "kitchen"),
    ] {
        let product = Product {
            name: name.into(),
            category: category.into(),
            ..product(id, 1)
        };
        store
            .create_product(&t, product, audit(&t, "product.create", id))
            .await
            .unwrap();
    }
    let listed = |name: Option<&str>, category: Option<&str>| {
        let filter = ProductFilter {
            name: name.map(str::to_owned),
            category: category.map(str::to_owned),
        };
        async move {
            ids(
                store
                    .list_products(&tenant("t1"), filter, PageRequest::first(10))
                    .await
                    .unwrap()
                    .items,
                |p| p.id,
            )
        }
    };
    assert_eq!(
        listed(Some("KETTLE"), None).await,
        ["p-1", "p-2", "p-3"],
        "case-insensitive substring"
    );
    assert_eq!(
        listed(Some("kettle"), Some("kitchen")).await,
        ["p-1", "p-2"]
    );
    assert_eq!(listed(None, Some("sport")).await, ["p-3"]);
    assert_eq!(
        listed(Some("100%"), None).await,
        Vec::<String>::new(),
        "no pattern characters"
    );
    assert_eq!(listed(Some("_"), None).await, Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Paging by continuation token
// ---------------------------------------------------------------------------------------------

async fn paging_returns_every_item_once_and_is_stable_under_inserts(subject: Subject) {
    let t = tenant("t1");
    for index in 0..7 {
        subject
            .store
            .create_customer(
                &t,
                customer(&format!("c-{index}")),
                audit(&t, "customer.create", "c"),
            )
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut continuation = None;
    let mut pages = 0;
    loop {
        let page = subject
            .store
            .list_customers(&t, PageRequest::new(3, continuation))
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|c| c.id.clone()));
        if pages == 1 {
            // An insert between page reads neither repeats nor skips what was already listed.
            subject
                .store
                .create_customer(
                    &t,
                    customer("c-late"),
                    audit(&t, "customer.create", "c-late"),
                )
                .await
                .unwrap();
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
    assert_eq!(
        seen.len(),
        8,
        "every customer, the late one included: {seen:?}"
    );
    assert_eq!(pages, 3);
}

async fn newest_first_paging_neither_repeats_nor_skips_under_inserts(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    for index in 0..5 {
        store
            .create_order(
                &t,
                new_order(&format!("o-{index}"), "c-1", &[("p-1", 1)], None),
                audit(&t, "order.create", "o"),
            )
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut continuation = None;
    loop {
        let page = store
            .list_orders(
                &t,
                OrderFilter::default(),
                PageRequest::new(2, continuation),
            )
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|order| order.id));
        // Newer orders sort before the position already read: they never shift the pages.
        store
            .create_order(
                &t,
                new_order(
                    &format!("o-late-{}", seen.len()),
                    "c-1",
                    &[("p-1", 1)],
                    None,
                ),
                audit(&t, "order.create", "o"),
            )
            .await
            .unwrap();
        match page.continuation {
            Some(token) => continuation = Some(token),
            None => break,
        }
    }
    assert_eq!(seen, ["o-4", "o-3", "o-2", "o-1", "o-0"]);
}

async fn paging_is_stable_under_concurrent_inserts(subject: Subject) {
    let t = tenant("t1");
    for index in 0..12 {
        subject
            .store
            .create_product(
                &t,
                product(&format!("p-{index:02}"), 1),
                audit(&t, "product.create", "p"),
            )
            .await
            .unwrap();
    }
    let writer = {
        let (store, t) = (subject.store.clone(), t.clone());
        tokio::spawn(async move {
            for index in 0..12 {
                store
                    .create_product(
                        &t,
                        product(&format!("q-{index:02}"), 1),
                        audit(&t, "product.create", "q"),
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let mut continuation = None;
    loop {
        let page = subject
            .store
            .list_products(
                &t,
                ProductFilter::default(),
                PageRequest::new(5, continuation),
            )
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|product| product.id));
        tokio::task::yield_now().await;
        match page.continuation {
            Some(token) => continuation = Some(token),
            None => break,
        }
    }
    writer.await.unwrap();
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "no product listed twice: {seen:?}"
    );
    for index in 0..12 {
        assert!(
            seen.contains(&format!("p-{index:02}")),
            "every product that existed before paging began is listed: {seen:?}"
        );
    }
}

async fn continuation_tokens_are_checked(subject: Subject) {
    let t = tenant("t1");
    for index in 0..3 {
        subject
            .store
            .create_product(
                &t,
                product(&format!("p-{index}"), 1),
                audit(&t, "product.create", "p"),
            )
            .await
            .unwrap();
    }
    let page = subject
        .store
        .list_products(&t, Default::default(), PageRequest::first(1))
        .await
        .unwrap();
    let token = page.continuation.unwrap();
    assert!(matches!(
        subject
            .store
            .list_customers(&t, PageRequest::new(1, Some(token.clone())))
            .await,
        Err(StoreError::InvalidContinuation(_))
    ));
    assert!(matches!(
        subject
            .store
            .list_customers(&t, PageRequest::new(1, Some("garbage".into())))
            .await,
        Err(StoreError::InvalidContinuation(_))
    ));
    // A token is bound to its filters too.
    let kitchen = ProductFilter {
        category: Some("kitchen".into()),
        ..Default::default()
    };
    assert!(matches!(
        subject
            .store
            .list_products(&t, kitchen, PageRequest::new(1, Some(token.clone())))
            .await,
        Err(StoreError::InvalidContinuation(_))
    ));
    let next = subject
        .store
        .list_products(&t, Default::default(), PageRequest::new(1, Some(token)))
        .await
        .unwrap();
    assert_eq!(ids(next.items, |p| p.id), ["p-1"]);
}

// ---------------------------------------------------------------------------------------------
// Orders: stock, atomicity, idempotency, state machine
// ---------------------------------------------------------------------------------------------

async fn order_creation_reserves_stock_atomically(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    let created = subject
        .store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 3)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    let OrderCreated::New(order) = created else {
        panic!("expected a new order")
    };
    assert_eq!(order.total_cents, 750);
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(subject.store.get_product(&t, "p-1").await.unwrap().stock, 7);
    // A line that cannot be served refuses the whole order: no stock moves.
    let refused = subject
        .store
        .create_order(
            &t,
            new_order("o-2", "c-1", &[("p-1", 1), ("p-2", 2)], None),
            audit(&t, "order.create", "o-2"),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Rejected(Rejection::InsufficientStock {
                available: 1,
                requested: 2,
                ..
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(subject.store.get_product(&t, "p-1").await.unwrap().stock, 7);
    assert_eq!(subject.store.get_product(&t, "p-2").await.unwrap().stock, 1);
    assert!(matches!(
        subject.store.get_order(&t, "o-2").await,
        Err(StoreError::NotFound)
    ));
    let unknown = subject
        .store
        .create_order(
            &t,
            new_order("o-3", "c-1", &[("p-9", 1)], None),
            audit(&t, "order.create", "o-3"),
        )
        .await;
    assert!(matches!(
        unknown,
        Err(StoreError::Rejected(Rejection::UnknownProducts(_)))
    ));
    let no_customer = subject
        .store
        .create_order(
            &t,
            new_order("o-4", "c-9", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-4"),
        )
        .await;
    assert!(matches!(no_customer, Err(StoreError::NotFound)));
    assert_eq!(
        subject.store.get_product(&t, "p-1").await.unwrap().stock,
        7,
        "refused orders reserved nothing"
    );
}

async fn an_order_and_its_items_are_written_and_read_together(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    let mut order = new_order("o-1", "c-1", &[("p-1", 2), ("p-2", 1)], None);
    order.input.shipping_address = Some(address());
    let OrderCreated::New(created) = store
        .create_order(&t, order, audit(&t, "order.create", "o-1"))
        .await
        .unwrap()
    else {
        panic!("expected a new order")
    };
    let items: Vec<(String, String, i64, i64)> = created
        .items
        .iter()
        .map(|i| {
            (
                i.product_id.clone(),
                i.product_name.clone(),
                i.quantity,
                i.unit_price_cents,
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            ("p-1".into(), "Product p-1".into(), 2, 250),
            ("p-2".into(), "Product p-2".into(), 1, 250)
        ]
    );
    assert_eq!(created.total_cents, 750);
    assert_eq!(created.currency, "EUR");
    let read = store.get_order(&t, "o-1").await.unwrap();
    assert_eq!(
        read, created,
        "the order reads back with its items, in line order"
    );
    let listed = store
        .list_orders(&t, OrderFilter::default(), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        listed.items,
        std::slice::from_ref(&created),
        "listings carry the items too"
    );
    let second = new_order("o-2", "c-1", &[("p-1", 1), ("p-1", 3)], None);
    let OrderCreated::New(second) = store
        .create_order(&t, second, audit(&t, "order.create", "o-2"))
        .await
        .unwrap()
    else {
        panic!("expected a new order")
    };
    let listed = store
        .list_orders(&t, OrderFilter::default(), PageRequest::first(10))
        .await
        .unwrap();
    let lines = |order: &shared::domain::order::Order| {
        order
            .items
            .iter()
            .map(|i| (i.product_id.clone(), i.quantity))
            .collect::<Vec<_>>()
    };
    let listed_lines: Vec<(String, Vec<(String, i64)>)> = listed
        .items
        .iter()
        .map(|o| (o.id.clone(), lines(o)))
        .collect();
    // Newest first; created in the same microsecond, the larger id comes first: o-2 either way.
    let expected = vec![
        (second.id.clone(), lines(&second)),
        (created.id.clone(), lines(&created)),
    ];
    assert_eq!(
        listed_lines, expected,
        "each listed order carries its own lines, in line order"
    );
    let history = store.order_history(&t, "o-1").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].status,
            history[0].actor_id.as_str(),
            history[0].at
        ),
        (OrderStatus::Pending, "actor-1", created.created_at)
    );
    assert!(
        store
            .get_customer(&t, "c-1")
            .await
            .unwrap()
            .last_activity_at
            >= created.created_at,
        "ordering is activity"
    );
}

async fn lines_of_one_product_are_reserved_together(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    let refused = store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 6), ("p-1", 5)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Rejected(Rejection::InsufficientStock {
                available: 10,
                requested: 11,
                ..
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(store.get_product(&t, "p-1").await.unwrap().stock, 10);
    store
        .create_order(
            &t,
            new_order("o-2", "c-1", &[("p-1", 6), ("p-1", 4)], None),
            audit(&t, "order.create", "o-2"),
        )
        .await
        .unwrap();
    assert_eq!(store.get_product(&t, "p-1").await.unwrap().stock, 0);
    assert_eq!(store.get_order(&t, "o-2").await.unwrap().items.len(), 2);
}

async fn a_refused_order_write_gives_the_stock_back(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 2)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    // The same order id again: the write is refused after pricing, and no stock stays taken.
    let again = store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 3)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.get_product(&t, "p-1").await.unwrap().stock, 8);
    assert_eq!(
        store.get_order(&t, "o-1").await.unwrap().items[0].quantity,
        2,
        "the first order is unchanged"
    );
}

async fn no_order_for_a_customer_whose_erasure_was_requested(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .request_erasure(
            &t,
            erasure_record("r-1", "t1", "c-1", "actor-1"),
            audit(&t, "gdpr", "c-1"),
        )
        .await
        .unwrap();
    let refused = store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Rejected(Rejection::CustomerNotActive(_)))
        ),
        "{refused:?}"
    );
    assert_eq!(store.get_product(&t, "p-1").await.unwrap().stock, 10);
    assert!(matches!(
        store.get_order(&t, "o-1").await,
        Err(StoreError::NotFound)
    ));
}

async fn concurrent_orders_never_oversell(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    subject
        .store
        .create_product(&t, product("p-5", 5), audit(&t, "product.create", "p-5"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|index| {
            let (store, t) = (subject.store.clone(), t.clone());
            tokio::spawn(async move {
                let id = format!("o-{index}");
                store
                    .create_order(
                        &t,
                        new_order(&id, "c-1", &[("p-5", 1)], None),
                        audit(&t, "order.create", &id),
                    )
                    .await
            })
        })
        .collect();
    let mut placed = 0;
    let mut refusals = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(OrderCreated::New(_)) => placed += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(error) => refusals.push(error),
        }
    }
    let stock = subject.store.get_product(&t, "p-5").await.unwrap().stock;
    assert_eq!(
        placed + stock,
        5,
        "every unit is either in stock or in exactly one order ({placed} placed, {stock} left)"
    );
    assert_eq!(
        placed, 5,
        "while stock lasts, orders are placed: {refusals:?}"
    );
    assert!(
        refusals.iter().all(|error| matches!(
            error,
            StoreError::Rejected(Rejection::InsufficientStock { .. })
        )),
        "orders beyond the stock are refused for stock: {refusals:?}"
    );
}

/// One customer placing many orders at once (a shop integration, say): with stock enough for
/// all, every one is placed. A backend that writes optimistically must retry its own races
/// rather than refuse the client.
async fn concurrent_orders_of_one_customer_are_all_placed_while_stock_lasts(subject: Subject) {
    const ORDERS: i64 = 64;
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    subject
        .store
        .create_product(
            &t,
            product("p-100", 100),
            audit(&t, "product.create", "p-100"),
        )
        .await
        .unwrap();
    let tasks: Vec<_> = (0..ORDERS)
        .map(|index| {
            let (store, t) = (subject.store.clone(), t.clone());
            tokio::spawn(async move {
                let id = format!("o-{index}");
                store
                    .create_order(
                        &t,
                        new_order(&id, "c-1", &[("p-100", 1)], None),
                        audit(&t, "order.create", &id),
                    )
                    .await
            })
        })
        .collect();
    let mut refusals = Vec::new();
    for task in tasks {
        if let Err(error) = task.await.unwrap() {
            refusals.push(error.to_string());
        }
    }
    let stock = subject.store.get_product(&t, "p-100").await.unwrap().stock;
    assert_eq!(
        stock + ORDERS - refusals.len() as i64,
        100,
        "no unit lost or doubled"
    );
    assert!(
        refusals.is_empty(),
        "{} of {ORDERS} orders refused although stock was ample: {refusals:?}",
        refusals.len()
    );
}

async fn idempotency_keys_replay_the_first_result(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    let first = subject
        .store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 2)], Some(("k-1", "h-1"))),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    let again = subject
        .store
        .create_order(
            &t,
            new_order("o-2", "c-1", &[("p-1", 2)], Some(("k-1", "h-1"))),
            audit(&t, "order.create", "o-2"),
        )
        .await
        .unwrap();
    let (OrderCreated::New(first), OrderCreated::Replayed(again)) = (first, again) else {
        panic!("expected new then replayed")
    };
    assert_eq!(again, first, "the replay is the first order as stored");
    assert_eq!(
        subject.store.get_product(&t, "p-1").await.unwrap().stock,
        8,
        "reserved once"
    );
    assert!(matches!(
        subject.store.get_order(&t, "o-2").await,
        Err(StoreError::NotFound)
    ));
    let other_body = subject
        .store
        .create_order(
            &t,
            new_order("o-3", "c-1", &[("p-1", 1)], Some(("k-1", "h-2"))),
            audit(&t, "order.create", "o-3"),
        )
        .await;
    assert!(matches!(
        other_body,
        Err(StoreError::Rejected(Rejection::IdempotencyKeyReused))
    ));
    assert_eq!(
        subject.store.get_product(&t, "p-1").await.unwrap().stock,
        8,
        "a reused key reserves nothing"
    );
    // Keys are per tenant.
    let other = tenant("t2");
    seed(subject.store.as_ref(), &other).await;
    let elsewhere = subject
        .store
        .create_order(
            &other,
            new_order("o-9", "c-1", &[("p-1", 1)], Some(("k-1", "h-9"))),
            audit(&other, "order.create", "o-9"),
        )
        .await
        .unwrap();
    assert!(matches!(elsewhere, OrderCreated::New(_)));
}

/// The API scopes a client's `Idempotency-Key` (1 to 128 visible ASCII characters) to the
/// ordering customer as `{customerId}/{key}` (`functions/src/functions/orders_api.rs`): the
/// store must take any such key.
async fn idempotency_keys_as_the_api_builds_them_are_accepted(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    let keys = ["c-1/k-1", "c-1/order 42?retry=1#x", "c-1/back\\slash%2F"];
    for (index, key) in keys.iter().enumerate() {
        let id = format!("o-{index}");
        let first = store
            .create_order(
                &t,
                new_order(&id, "c-1", &[("p-1", 1)], Some((key, "h-1"))),
                audit(&t, "order.create", &id),
            )
            .await;
        assert!(
            matches!(first, Ok(OrderCreated::New(_))),
            "key {key:?}: {first:?}"
        );
        let again = store
            .create_order(
                &t,
                new_order("o-again", "c-1", &[("p-1", 1)], Some((key, "h-1"))),
                audit(&t, "order.create", "o-again"),
            )
            .await;
        assert!(
            matches!(again, Ok(OrderCreated::Replayed(ref order)) if order.id == id),
            "key {key:?}: {again:?}"
        );
    }
    assert_eq!(
        store.get_product(&t, "p-1").await.unwrap().stock,
        10 - keys.len() as i64
    );
}

async fn concurrent_requests_with_one_idempotency_key_create_one_order(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    let tasks: Vec<_> = (0..4)
        .map(|index| {
            let (store, t) = (subject.store.clone(), t.clone());
            tokio::spawn(async move {
                let id = format!("o-{index}");
                store
                    .create_order(
                        &t,
                        new_order(&id, "c-1", &[("p-1", 3)], Some(("c-1.k-1", "h-1"))),
                        audit(&t, "order.create", &id),
                    )
                    .await
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut replayed = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(OrderCreated::New(order)) => created.push(order.id),
            Ok(OrderCreated::Replayed(order)) => replayed.push(order.id),
            Err(error) => panic!("a retry with the same key must not fail: {error:?}"),
        }
    }
    assert_eq!(created.len(), 1, "one order: {created:?}");
    assert!(
        replayed.iter().all(|id| *id == created[0]),
        "the others replay it: {replayed:?}"
    );
    assert_eq!(
        subject.store.get_product(&t, "p-1").await.unwrap().stock,
        7,
        "stock reserved once"
    );
    assert_eq!(
        subject
            .store
            .list_orders(&t, OrderFilter::default(), PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

async fn an_order_may_have_as_many_lines_as_the_api_allows(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    store
        .create_customer(&t, customer("c-1"), audit(&t, "customer.create", "c-1"))
        .await
        .unwrap();
    let lines = shared::domain::order::MAX_ORDER_LINES;
    let products: Vec<String> = (0..lines).map(|index| format!("p-{index:03}")).collect();
    for id in &products {
        store
            .create_product(&t, product(id, 2), audit(&t, "product.create", id))
            .await
            .unwrap();
    }
    let order_lines: Vec<(&str, i64)> = products.iter().map(|id| (id.as_str(), 1)).collect();
    let created = store
        .create_order(
            &t,
            new_order("o-1", "c-1", &order_lines, None),
            audit(&t, "order.create", "o-1"),
        )
        .await;
    assert!(
        matches!(created, Ok(OrderCreated::New(ref order)) if order.items.len() == lines),
        "{created:?}"
    );
    assert_eq!(store.get_order(&t, "o-1").await.unwrap().items.len(), lines);
    for id in [&products[0], &products[lines - 1]] {
        assert_eq!(store.get_product(&t, id).await.unwrap().stock, 1);
    }
    store
        .change_order_status(
            &t,
            "o-1",
            StatusInput {
                status: OrderStatus::Cancelled,
                reason: None,
            },
            "actor-1",
            IfMatch::Any,
            audit(&t, "order.status", "o-1"),
        )
        .await
        .unwrap();
    let page = store
        .list_products(&t, ProductFilter::default(), PageRequest::first(100))
        .await
        .unwrap();
    assert!(
        page.items.iter().all(|product| product.stock == 2),
        "every line's stock is back"
    );
}

async fn order_status_follows_the_state_machine_and_cancel_releases_stock(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    subject
        .store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 4)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    let change = |status| StatusInput {
        status,
        reason: None,
    };
    subject
        .store
        .change_order_status(
            &t,
            "o-1",
            change(OrderStatus::Confirmed),
            "actor-1",
            IfMatch::Any,
            audit(&t, "order.status", "o-1"),
        )
        .await
        .unwrap();
    let illegal = subject
        .store
        .change_order_status(
            &t,
            "o-1",
            change(OrderStatus::Delivered),
            "actor-1",
            IfMatch::Any,
            audit(&t, "order.status", "o-1"),
        )
        .await;
    assert!(matches!(
        illegal,
        Err(StoreError::Rejected(Rejection::IllegalTransition(_)))
    ));
    let cancel = StatusInput {
        status: OrderStatus::Cancelled,
        reason: Some("changed my mind".into()),
    };
    subject
        .store
        .change_order_status(
            &t,
            "o-1",
            cancel,
            "actor-2",
            IfMatch::Any,
            audit(&t, "order.status", "o-1"),
        )
        .await
        .unwrap();
    assert_eq!(
        subject.store.get_product(&t, "p-1").await.unwrap().stock,
        10
    );
    let history = subject.store.order_history(&t, "o-1").await.unwrap();
    let statuses: Vec<OrderStatus> = history.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Cancelled
        ]
    );
    assert_eq!(
        (history[2].actor_id.as_str(), history[2].reason.as_deref()),
        ("actor-2", Some("changed my mind"))
    );
    // Cancelled is final: no second release.
    let again = subject
        .store
        .change_order_status(
            &t,
            "o-1",
            change(OrderStatus::Cancelled),
            "actor-1",
            IfMatch::Any,
            audit(&t, "order.status", "o-1"),
        )
        .await;
    assert!(
        matches!(
            again,
            Err(StoreError::Rejected(Rejection::IllegalTransition(_)))
        ),
        "{again:?}"
    );
    assert_eq!(
        subject.store.get_product(&t, "p-1").await.unwrap().stock,
        10
    );
}

async fn order_listing_filters(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    subject
        .store
        .create_customer(&t, customer("c-2"), audit(&t, "customer.create", "c-2"))
        .await
        .unwrap();
    let before = Utc::now() - Duration::seconds(1);
    subject
        .store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    subject
        .store
        .create_order(
            &t,
            new_order("o-2", "c-2", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-2"),
        )
        .await
        .unwrap();
    subject
        .store
        .change_order_status(
            &t,
            "o-2",
            StatusInput {
                status: OrderStatus::Confirmed,
                reason: None,
            },
            "a",
            IfMatch::Any,
            audit(&t, "s", "o-2"),
        )
        .await
        .unwrap();
    let ids = |page: shared::store::Page<shared::domain::order::Order>| {
        page.items.into_iter().map(|o| o.id).collect::<Vec<_>>()
    };
    let by_customer = subject
        .store
        .list_orders(
            &t,
            OrderFilter {
                customer_id: Some("c-1".into()),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(ids(by_customer), ["o-1"]);
    let confirmed = subject
        .store
        .list_orders(
            &t,
            OrderFilter {
                status: Some(OrderStatus::Confirmed),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(ids(confirmed), ["o-2"]);
    let all = subject
        .store
        .list_orders(
            &t,
            OrderFilter {
                created_from: Some(before),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(ids(all), ["o-2", "o-1"], "newest first");
    let none = subject
        .store
        .list_orders(
            &t,
            OrderFilter {
                created_to: Some(before),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Notifications and audit
// ---------------------------------------------------------------------------------------------

async fn notifications_list_unread_first_and_are_read_only_by_their_recipient(subject: Subject) {
    let t = tenant("t1");
    for (id, age) in [("n-old", 30), ("n-mid", 20), ("n-new", 10)] {
        subject
            .store
            .create_notification(
                &t,
                note(id, to_customer("c-1"), now() - Duration::minutes(age)),
                audit(&t, "notification.send", id),
            )
            .await
            .unwrap();
    }
    let own = [to_customer("c-1")];
    subject
        .store
        .mark_notification_read(&t, "n-new", &own, audit(&t, "notification.read", "n-new"))
        .await
        .unwrap();
    let stranger = [to_customer("c-2")];
    assert!(matches!(
        subject
            .store
            .mark_notification_read(&t, "n-old", &stranger, audit(&t, "r", "n-old"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        subject
            .store
            .mark_notification_read(&t, "n-none", &own, audit(&t, "r", "n-none"))
            .await,
        Err(StoreError::NotFound)
    ));
    let mut order = Vec::new();
    let mut continuation = None;
    loop {
        let page = subject
            .store
            .list_notifications(&t, &own, PageRequest::new(2, continuation))
            .await
            .unwrap();
        order.extend(page.items.into_iter().map(|n| n.id));
        match page.continuation {
            Some(token) => continuation = Some(token),
            None => break,
        }
    }
    assert_eq!(
        order,
        ["n-mid", "n-old", "n-new"],
        "unread newest first, then read"
    );
    assert!(subject
        .store
        .list_notifications(&t, &stranger, PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn marking_read_is_recorded_once_and_role_notifications_reach_the_role(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    let role = Recipient::Role("order-manager".into());
    store
        .create_notification(
            &t,
            note("n-role", role.clone(), now()),
            audit(&t, "notification.send", "n-role"),
        )
        .await
        .unwrap();
    store
        .create_notification(
            &t,
            note("n-c1", to_customer("c-1"), now()),
            audit(&t, "notification.send", "n-c1"),
        )
        .await
        .unwrap();
    // A staff member sees their role's notifications; a customer does not.
    let staff = [role.clone(), to_customer("nobody")];
    assert_eq!(
        ids(all_notifications(store, &t, &staff).await, |n| n.id),
        ["n-role"]
    );
    assert!(matches!(
        store
            .mark_notification_read(
                &t,
                "n-role",
                &[to_customer("c-1")],
                audit(&t, "r", "n-role")
            )
            .await,
        Err(StoreError::NotFound)
    ));
    let both = [role.clone(), to_customer("c-1")];
    assert_eq!(all_notifications(store, &t, &both).await.len(), 2);
    let read = store
        .mark_notification_read(
            &t,
            "n-role",
            &staff,
            audit(&t, "notification.read", "n-role"),
        )
        .await
        .unwrap();
    let read_at = read.read_at.expect("read");
    let again = store
        .mark_notification_read(
            &t,
            "n-role",
            &staff,
            audit(&t, "notification.read", "n-role"),
        )
        .await
        .unwrap();
    assert_eq!(
        again.read_at,
        Some(read_at),
        "a second read keeps the first time"
    );
    let reads = all_audit(
        store,
        &t,
        AuditFilter {
            action: Some("notification.read".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(reads.len(), 1, "only the first read is audited");
    let listed = all_notifications(store, &t, &both).await;
    assert_eq!(
        ids(listed.iter().cloned(), |n| n.id),
        ["n-c1", "n-role"],
        "unread first"
    );
    assert_eq!(listed[1].read_at, Some(read_at));
}

async fn every_write_is_audited_in_the_same_tenant(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    subject
        .store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-1").about_customer("c-1"),
        )
        .await
        .unwrap();
    let all = subject
        .store
        .list_audit(&t, AuditFilter::default(), PageRequest::first(100))
        .await
        .unwrap();
    let actions: Vec<&str> = all.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "order.create",
            "product.create",
            "product.create",
            "customer.create"
        ],
        "newest first"
    );
    let about = subject
        .store
        .list_audit(
            &t,
            AuditFilter {
                customer_id: Some("c-1".into()),
                ..Default::default()
            },
            PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(about.items.len(), 1);
    assert!(subject
        .store
        .list_audit(
            &tenant("t2"),
            AuditFilter::default(),
            PageRequest::first(10)
        )
        .await
        .unwrap()
        .items
        .is_empty());
}

async fn audit_listing_filters_and_pages_newest_first(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    let base = now() - Duration::hours(10);
    let entry =
        |id: &str, actor: &str, action: &str, target: &str, customer: Option<&str>, hours: i64| {
            let mut entry = AuditEntry::now(t.as_str(), actor, action, "order", target, "corr");
            entry.id = id.into();
            entry.at = base + Duration::hours(hours);
            entry.customer_id = customer.map(str::to_owned);
            entry
        };
    let entries = [
        entry("a-1", "staff-1", "order.create", "o-1", Some("c-1"), 1),
        entry("a-2", "staff-2", "order.create", "o-2", Some("c-2"), 2),
        entry("a-3", "staff-1", "order.status", "o-1", Some("c-1"), 3),
        entry("a-4", "system:Job", "export", "t1", None, 4),
        entry("a-5", "staff-2", "order.status", "o-2", Some("c-2"), 5),
        entry("a-6", "staff-1", "order.create", "o-3", Some("c-1"), 6),
    ];
    for entry in &entries {
        store.append_audit(&t, entry.clone()).await.unwrap();
    }
    store
        .append_audit(
            &tenant("t2"),
            AuditEntry::now("t2", "staff-1", "order.create", "order", "o-1", "corr"),
        )
        .await
        .unwrap();
    let listed =
        |filter| async move { ids(all_audit(store, &tenant("t1"), filter).await, |e| e.id) };
    assert_eq!(
        listed(AuditFilter::default()).await,
        ["a-6", "a-5", "a-4", "a-3", "a-2", "a-1"],
        "newest first, across pages"
    );
    assert_eq!(
        listed(AuditFilter {
            actor_id: Some("staff-1".into()),
            ..Default::default()
        })
        .await,
        ["a-6", "a-3", "a-1"]
    );
    assert_eq!(
        listed(AuditFilter {
            action: Some("order.status".into()),
            ..Default::default()
        })
        .await,
        ["a-5", "a-3"]
    );
    assert_eq!(
        listed(AuditFilter {
            target_id: Some("o-2".into()),
            ..Default::default()
        })
        .await,
        ["a-5", "a-2"]
    );
    assert_eq!(
        listed(AuditFilter {
            customer_id: Some("c-1".into()),
            ..Default::default()
        })
        .await,
        ["a-6", "a-3", "a-1"]
    );
    let window = AuditFilter {
        from: Some(base + Duration::hours(2)),
        to: Some(base + Duration::hours(5)),
        ..Default::default()
    };
    assert_eq!(
        listed(window).await,
        ["a-4", "a-3", "a-2"],
        "from inclusive, to exclusive"
    );
    let combined = AuditFilter {
        actor_id: Some("staff-1".into()),
        action: Some("order.create".into()),
        customer_id: Some("c-1".into()),
        ..Default::default()
    };
    assert_eq!(listed(combined).await, ["a-6", "a-1"]);
    let read = all_audit(
        store,
        &t,
        AuditFilter {
            target_id: Some("t1".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(read.len(), 1);
    assert_eq!(
        (
            read[0].actor_id.as_str(),
            read[0].action.as_str(),
            read[0].customer_id.as_deref()
        ),
        ("system:Job", "export", None)
    );
    assert_eq!(read[0].at, entries[3].at, "times read back as written");
}

// ---------------------------------------------------------------------------------------------
// Erasure requests and the erasure itself
// ---------------------------------------------------------------------------------------------

async fn a_repeated_erasure_request_returns_the_open_one(subject: Subject) {
    let t = tenant("t1");
    seed(subject.store.as_ref(), &t).await;
    let (first, created) = subject
        .store
        .request_erasure(
            &t,
            erasure_record("r-1", "t1", "c-1", "actor-1"),
            audit(&t, "gdpr", "c-1"),
        )
        .await
        .unwrap();
    assert!(created);
    let (again, created_again) = subject
        .store
        .request_erasure(
            &t,
            erasure_record("r-2", "t1", "c-1", "actor-1"),
            audit(&t, "gdpr", "c-1"),
        )
        .await
        .unwrap();
    assert!(!created_again);
    assert_eq!(again.id, first.id);
    assert_eq!(
        subject.store.get_customer(&t, "c-1").await.unwrap().status,
        CustomerStatus::ErasureRequested
    );
    assert_eq!(
        subject
            .store
            .get_erasure(&t, "c-1", "r-1")
            .await
            .unwrap()
            .status,
        ErasureStatus::Accepted
    );
    assert!(matches!(
        subject.store.get_erasure(&tenant("t2"), "c-1", "r-1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        subject.store.get_erasure(&t, "c-1", "r-2").await,
        Err(StoreError::NotFound)
    ));
    let input = CustomerInput {
        name: "x".into(),
        email: "x@example.org".into(),
        phone: None,
        address: None,
        preferences: None,
    };
    let blocked = subject
        .store
        .update_customer(
            &t,
            "c-1",
            input,
            IfMatch::Any,
            audit(&t, "customer.update", "c-1"),
        )
        .await;
    assert!(matches!(
        blocked,
        Err(StoreError::Rejected(Rejection::CustomerNotActive(_)))
    ));
    let missing = subject
        .store
        .request_erasure(
            &t,
            erasure_record("r-3", "t1", "c-9", "actor-1"),
            audit(&t, "gdpr", "c-9"),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

/// What the erasure tests start from, in tenant t1: customer c-1 (phone, address) with three
/// orders (two with idempotency keys; one confirmed by the customer with a reason), three
/// notifications and one dispatched order event (a fourth notification and a processed-event
/// marker); customer c-2 with one order and one notification; one staff notification; an open
/// erasure request r-1 for c-1.
async fn erasure_fixture(store: &dyn Store, t: &TenantId) {
    seed(store, t).await;
    let mut c1 = customer("c-1");
    c1.phone = Some("+4915112345678".into());
    c1.address = Some(address());
    let input = CustomerInput {
        name: c1.name.clone(),
        email: c1.email.clone(),
        phone: c1.phone.clone(),
        address: c1.address.clone(),
        preferences: None,
    };
    store
        .update_customer(
            t,
            "c-1",
            input,
            IfMatch::Any,
            audit(t, "customer.update", "c-1").about_customer("c-1"),
        )
        .await
        .unwrap();
    store
        .create_customer(t, customer("c-2"), audit(t, "customer.create", "c-2"))
        .await
        .unwrap();
    for (id, key) in [
        ("o-1", Some(("c-1.k-1", "h-1"))),
        ("o-2", Some(("c-1.k-2", "h-2"))),
        ("o-3", None),
    ] {
        let mut order = new_order(id, "c-1", &[("p-1", 1)], key);
        order.actor_id = "dev-client-c-1".into();
        order.input.shipping_address = Some(address());
        store
            .create_order(
                t,
                order,
                AuditEntry::now(
                    t.as_str(),
                    "dev-client-c-1",
                    "order.create",
                    "order",
                    id,
                    "corr",
                )
                .about_customer("c-1"),
            )
            .await
            .unwrap();
    }
    let confirm = StatusInput {
        status: OrderStatus::Confirmed,
        reason: Some("please hurry, I am at 1 Main Street".into()),
    };
    store
        .change_order_status(
            t,
            "o-1",
            confirm,
            "dev-client-c-1",
            IfMatch::Any,
            audit(t, "order.status", "o-1").about_customer("c-1"),
        )
        .await
        .unwrap();
    store
        .create_order(
            t,
            new_order("o-9", "c-2", &[("p-1", 1)], Some(("c-2.k-9", "h-9"))),
            audit(t, "order.create", "o-9").about_customer("c-2"),
        )
        .await
        .unwrap();
    for id in ["n-1", "n-2", "n-3"] {
        store
            .create_notification(
                t,
                note(id, to_customer("c-1"), now()),
                audit(t, "notification.send", id).about_customer("c-1"),
            )
            .await
            .unwrap();
    }
    store
        .create_notification(
            t,
            note("n-9", to_customer("c-2"), now()),
            audit(t, "notification.send", "n-9").about_customer("c-2"),
        )
        .await
        .unwrap();
    store
        .create_notification(
            t,
            note("n-staff", Recipient::Role("order-manager".into()), now()),
            audit(t, "notification.send", "n-staff"),
        )
        .await
        .unwrap();
    let dispatched = store
        .dispatch_event(
            t,
            "NotificationDispatch",
            &event("e-1", t, "o-1", "c-1"),
            plan,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            dispatched,
            DispatchOutcome::Dispatched {
                notifications: 1,
                ..
            }
        ),
        "{dispatched:?}"
    );
    store
        .request_erasure(
            t,
            erasure_record("r-1", t.as_str(), "c-1", "actor-1"),
            audit(t, "gdpr.erasure.request", "c-1").about_customer("c-1"),
        )
        .await
        .unwrap();
}

/// Audit entries of the tenant naming the customer (as customer, target or actor).
async fn audit_naming(store: &dyn Store, t: &TenantId, identifiers: &[&str]) -> Vec<AuditEntry> {
    let named = |value: Option<&str>| value.is_some_and(|value| identifiers.contains(&value));
    all_audit(store, t, AuditFilter::default())
        .await
        .into_iter()
        .filter(|entry| {
            named(entry.customer_id.as_deref())
                || named(Some(&entry.target_id))
                || named(Some(&entry.actor_id))
        })
        .collect()
}

/// Runs every step not done yet to its end in batches of `size`.
async fn erase_all(
    store: &dyn Store,
    t: &TenantId,
    request_id: &str,
    masker: &Masker,
    size: usize,
    mut progress: ErasureProgress,
) -> ErasureProgress {
    for step in ErasureStep::ALL {
        let mut batches = 0;
        while !progress.is_done(step) {
            progress = store
                .erase_batch(t, request_id, step, masker, size)
                .await
                .unwrap();
            batches += 1;
            assert!(batches < 200, "step {} does not end", step.as_str());
        }
    }
    progress
}

async fn start(
    store: &dyn Store,
    t: &TenantId,
    request: ErasureRecord,
) -> (ErasureRecord, ErasureProgress) {
    match store.start_erasure(t, request).await.unwrap() {
        ErasureStart::Run { record, progress } => (record, progress),
        other => panic!("expected the erasure to run, got {other:?}"),
    }
}

fn counts(progress: &ErasureProgress) -> Vec<(String, u64)> {
    progress
        .counts()
        .into_iter()
        .filter(|(table, _)| table != "auditEntries")
        .collect()
}

async fn a_marketing_message_is_stored_with_its_outbound_message(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    let mut notification = note("n-m", to_customer("c-1"), now());
    notification.tenant_id = t.as_str().into();
    let message = OutboxMessage::marketing(&notification, "c-1", Purpose::MarketingEmail, "email");
    let entry = audit(&t, "notification.marketing.marketing-email", "n-m").about_customer("c-1");
    store
        .create_notification_with_messages(&t, notification, entry, vec![message])
        .await
        .unwrap();
    let listed = store
        .list_notifications(&t, &[to_customer("c-1")], PageRequest::new(10, None))
        .await
        .unwrap();
    assert_eq!(ids(listed.items, |n| n.id), ["n-m"]);
    let pending = store.pending_outbox(&t).await.unwrap();
    let sent: Vec<OutboxMessage> = pending
        .iter()
        .filter_map(|doc| doc.message().ok())
        .filter(|message| message.destination == "notifications-outbound")
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message_id, "n-m:email");
}

async fn security_events_are_kept_with_their_audit_entry_and_alert(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    let event = shared::security::SecurityEvent {
        id: "se-1".into(),
        tenant_id: t.as_str().into(),
        rule: shared::security::Rule::BulkRead,
        principal_id: "emp-1".into(),
        role: Some("customer-service".into()),
        count: 3,
        threshold: 3,
        window_seconds: 300,
        first_seen_at: now(),
        detected_at: now(),
        correlation_id: "corr-1".into(),
    };
    let message = OutboxMessage::security_alert(&event);
    let entry = audit(&t, "security.bulk-read", "emp-1");
    store
        .record_security_event(&t, event.clone(), entry, message)
        .await
        .unwrap();
    let listed = store
        .list_security_events(&t, PageRequest::new(10, None))
        .await
        .unwrap();
    assert_eq!(listed.items, [event]);
    let other = store
        .list_security_events(&tenant("t2"), PageRequest::new(10, None))
        .await
        .unwrap();
    assert!(other.items.is_empty(), "tenant-scoped");
    let trail = all_audit(store, &t, AuditFilter::default()).await;
    assert!(trail
        .iter()
        .any(|entry| entry.action == "security.bulk-read"));
    let alerts = store.pending_outbox(&t).await.unwrap();
    assert!(alerts
        .iter()
        .filter_map(|doc| doc.message().ok())
        .any(|message| message.destination == "security-alerts" && message.message_id == "se-1"));
}

fn consent(t: &TenantId, id: &str, customer: &str, granted: bool, by: &str) -> ConsentRecord {
    ConsentRecord {
        id: id.into(),
        tenant_id: t.as_str().into(),
        customer_id: customer.into(),
        purpose: Purpose::MarketingEmail,
        granted,
        notice_version: "2025-03".into(),
        channel: ConsentChannel::Web,
        recorded_at: now(),
        recorded_by: by.into(),
    }
}

async fn an_erasure_keeps_the_proof_of_consents_under_a_pseudonym(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    erasure_fixture(store, &t).await;
    for record in [
        consent(&t, "k-1", "c-1", true, "dev-client-c-1"),
        consent(&t, "k-2", "c-1", false, "employee-7"),
        consent(&t, "k-3", "c-2", true, "dev-client-c-2"),
    ] {
        let customer = record.customer_id.clone();
        let entry = audit(&t, "consent.grant", &customer).about_customer(&customer);
        store.record_consent(&t, record, entry).await.unwrap();
    }
    let masker = masker(&t, "c-1");
    let (_, progress) = start(store, &t, erasure_record("r-1", "t1", "c-1", "actor-1")).await;
    let progress = erase_all(store, &t, "r-1", &masker, 100, progress).await;
    assert_eq!(progress.counts()["consents"], 2);
    assert!(
        store.consent_history(&t, "c-1").await.unwrap().is_empty(),
        "no consent record names the erased customer"
    );
    let other = store.consent_history(&t, "c-2").await.unwrap();
    let other: Vec<_> = other
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                r.customer_id.as_str(),
                r.recorded_by.as_str(),
            )
        })
        .collect();
    assert_eq!(
        other,
        [("k-3", "c-2", "dev-client-c-2")],
        "another customer's untouched"
    );
    if store.backend() == "sqlite" {
        // The proof, under the pseudonym (Cosmos DB keeps it in the customer's partition, which
        // the port reads by the customer's id; the masking rules' tests cover its fields).
        let proof = store
            .consent_history(&t, &masker.customer_pseudonym())
            .await
            .unwrap();
        let kept: Vec<_> = proof
            .iter()
            .map(|r| {
                (
                    r.granted,
                    r.notice_version.as_str(),
                    r.recorded_by.starts_with("psn-"),
                )
            })
            .collect();
        assert_eq!(kept, [(true, "2025-03", true), (false, "2025-03", false)]);
        assert_eq!(proof[1].recorded_by, "employee-7", "staff stay named");
    }
}

async fn an_erasure_masks_the_customer_and_leaves_others_untouched(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    erasure_fixture(store, &t).await;
    let masker = masker(&t, "c-1");
    let named_before = audit_naming(store, &t, &["c-1", "dev-client-c-1"])
        .await
        .len() as u64;
    let about_before = all_audit(
        store,
        &t,
        AuditFilter {
            customer_id: Some("c-1".into()),
            ..Default::default()
        },
    )
    .await
    .len();
    let c2_before = store.get_customer(&t, "c-2").await.unwrap();
    let c2_trail = audit_naming(store, &t, &["c-2"]).await;
    let (record, progress) = start(store, &t, erasure_record("r-1", "t1", "c-1", "actor-1")).await;
    assert_eq!(
        (record.status, progress.attempts),
        (ErasureStatus::InProgress, 1)
    );
    let progress = erase_all(store, &t, "r-1", &masker, 100, progress).await;
    let expected: Vec<(String, u64)> = [
        ("consents", 0),
        ("customers", 1),
        ("idempotencyKeys", 2),
        ("notifications", 4),
        ("orderStatusHistory", 4),
        ("orders", 3),
        ("payments", 0),
        ("processedEvents", 1),
        ("queuedMessages", 0),
        ("shipments", 0),
    ]
    .into_iter()
    .map(|(table, count)| (table.to_owned(), count))
    .collect();
    assert_eq!(counts(&progress), expected);
    assert_eq!(
        progress.counts()["auditEntries"],
        named_before,
        "every audit entry naming the customer, once"
    );

    let erased = store.get_customer(&t, "c-1").await.unwrap();
    assert_eq!(erased.status, CustomerStatus::Erased);
    assert_eq!(
        (erased.name.as_str(), erased.email.as_str()),
        ("Erased customer", "erased@erased.invalid")
    );
    assert_eq!(
        (erased.phone.as_deref(), erased.address.as_ref()),
        (None, None)
    );
    for id in ["o-1", "o-2", "o-3"] {
        let order = store.get_order(&t, id).await.unwrap();
        let shipping = order
            .shipping_address
            .expect("the address is masked, not removed");
        assert_eq!(
            (
                shipping.line1.as_str(),
                shipping.line2.as_deref(),
                shipping.city.as_str(),
                shipping.postal_code.as_str(),
                shipping.country.as_str()
            ),
            (ERASED_TEXT, None, ERASED_TEXT, "10", "DE")
        );
        assert_eq!(
            (order.total_cents, order.items.len()),
            (250, 1),
            "bookkeeping facts stay"
        );
    }
    let history = store.order_history(&t, "o-1").await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(
        history
            .iter()
            .all(|change| change.actor_id.starts_with("psn-") && change.reason.is_none()),
        "{history:?}"
    );
    assert!(all_notifications(store, &t, &[to_customer("c-1")])
        .await
        .is_empty());
    assert!(
        audit_naming(store, &t, &["c-1", "dev-client-c-1"])
            .await
            .is_empty(),
        "the audit trail names the customer no more"
    );
    assert_eq!(
        all_audit(
            store,
            &t,
            AuditFilter {
                customer_id: Some(masker.customer_pseudonym()),
                ..Default::default()
            }
        )
        .await
        .len(),
        about_before,
        "entries about the customer carry the pseudonym"
    );
    // Nobody else was touched.
    assert_eq!(store.get_customer(&t, "c-2").await.unwrap(), c2_before);
    // The customer's key is gone: the same key is new again.
    let reused = store
        .create_order(
            &t,
            new_order("o-4", "c-2", &[("p-1", 1)], Some(("c-1.k-1", "h-1"))),
            audit(&t, "order.create", "o-4"),
        )
        .await
        .unwrap();
    assert!(matches!(reused, OrderCreated::New(_)), "{reused:?}");

    assert_eq!(
        ids(
            all_notifications(store, &t, &[to_customer("c-2")]).await,
            |n| n.id
        ),
        ["n-9"]
    );
    assert_eq!(
        ids(
            all_notifications(store, &t, &[Recipient::Role("order-manager".into())]).await,
            |n| n.id
        ),
        ["n-staff"]
    );
    assert_eq!(
        store.get_order(&t, "o-9").await.unwrap().shipping_address,
        None
    );
    let replay = store
        .create_order(
            &t,
            new_order("o-10", "c-2", &[("p-1", 1)], Some(("c-2.k-9", "h-9"))),
            audit(&t, "order.create", "o-10"),
        )
        .await
        .unwrap();
    assert!(
        matches!(replay, OrderCreated::Replayed(ref order) if order.id == "o-9"),
        "{replay:?}"
    );
    assert_eq!(
        audit_naming(store, &t, &["c-2"]).await,
        c2_trail,
        "c-2's trail is intact"
    );
}

async fn an_erasure_resumed_after_a_partial_run_counts_every_record_once(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    erasure_fixture(store, &t).await;
    let masker = masker(&t, "c-1");
    let named_before = audit_naming(store, &t, &["c-1", "dev-client-c-1"])
        .await
        .len() as u64;
    let (_, progress) = start(store, &t, erasure_record("r-1", "t1", "c-1", "actor-1")).await;
    // A first delivery gets through part of the work, then dies.
    let after_orders = store
        .erase_batch(&t, "r-1", ErasureStep::Orders, &masker, 1)
        .await
        .unwrap();
    assert_eq!(after_orders.steps[&ErasureStep::Orders].counts["orders"], 1);
    assert!(!after_orders.is_done(ErasureStep::Orders));
    assert_eq!(progress.steps.len(), 0);
    // The redelivery resumes: the progress was kept, the attempt counted.
    let (record, resumed) = start(store, &t, erasure_record("r-1", "t1", "c-1", "actor-1")).await;
    assert_eq!(
        (record.status, resumed.attempts),
        (ErasureStatus::InProgress, 2)
    );
    assert_eq!(
        resumed.steps[&ErasureStep::Orders].counts["orders"],
        1,
        "the committed batch is remembered"
    );
    // Then it dies again half-way through the notifications.
    let mut progress = resumed;
    while !progress.is_done(ErasureStep::Orders) {
        progress = store
            .erase_batch(&t, "r-1", ErasureStep::Orders, &masker, 1)
            .await
            .unwrap();
    }
    for step in [ErasureStep::IdempotencyKeys] {
        while !progress.is_done(step) {
            progress = store
                .erase_batch(&t, "r-1", step, &masker, 1)
                .await
                .unwrap();
        }
    }
    progress = store
        .erase_batch(&t, "r-1", ErasureStep::Notifications, &masker, 2)
        .await
        .unwrap();
    assert_eq!(
        progress.steps[&ErasureStep::Notifications].counts["notifications"],
        2
    );
    let (_, resumed) = start(store, &t, erasure_record("r-1", "t1", "c-1", "actor-1")).await;
    assert_eq!(resumed.attempts, 3);
    // A step that is done does nothing more.
    let again = store
        .erase_batch(&t, "r-1", ErasureStep::Orders, &masker, 1)
        .await
        .unwrap();
    assert_eq!(
        again.steps[&ErasureStep::Orders],
        resumed.steps[&ErasureStep::Orders]
    );
    let finished = erase_all(store, &t, "r-1", &masker, 1, resumed).await;
    let expected: Vec<(String, u64)> = [
        ("consents", 0),
        ("customers", 1),
        ("idempotencyKeys", 2),
        ("notifications", 4),
        ("orderStatusHistory", 4),
        ("orders", 3),
        ("payments", 0),
        ("processedEvents", 1),
        ("queuedMessages", 0),
        ("shipments", 0),
    ]
    .into_iter()
    .map(|(table, count)| (table.to_owned(), count))
    .collect();
    assert_eq!(
        counts(&finished),
        expected,
        "each record counted once over three deliveries"
    );
    assert_eq!(finished.counts()["auditEntries"], named_before);
    assert!(
        finished.steps[&ErasureStep::Orders].batches >= 3,
        "batches of one order each"
    );
    assert_eq!(
        store.get_customer(&t, "c-1").await.unwrap().status,
        CustomerStatus::Erased
    );
}

async fn finishing_an_erasure_twice_has_one_effect(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    erasure_fixture(store, &t).await;
    let masker = masker(&t, "c-1");
    let (_, progress) = start(store, &t, erasure_record("r-1", "t1", "c-1", "actor-1")).await;
    erase_all(store, &t, "r-1", &masker, 100, progress).await;
    let report = json!({ "requestId": "r-1", "sha256": "x" });
    let finish_audit = || {
        AuditEntry::now(
            "t1",
            "system:GDPRDataAnonymization",
            "gdpr.erasure.completed",
            "erasureRequest",
            "r-1",
            "corr",
        )
        .about_customer(&masker.customer_pseudonym())
    };
    let (record, first) = store
        .finish_erasure(&t, "r-1", report.clone(), finish_audit())
        .await
        .unwrap();
    assert!(first);
    assert_eq!(
        (record.status, record.report.as_ref()),
        (ErasureStatus::Completed, Some(&report))
    );
    let (again, second) = store
        .finish_erasure(&t, "r-1", json!({ "other": true }), finish_audit())
        .await
        .unwrap();
    assert!(!second, "the second finish writes nothing");
    assert_eq!(again.report.as_ref(), Some(&report));
    let stored = store.get_erasure(&t, "c-1", "r-1").await.unwrap();
    assert_eq!(
        (stored.status, stored.report),
        (ErasureStatus::Completed, Some(report))
    );
    let completions = all_audit(
        store,
        &t,
        AuditFilter {
            action: Some("gdpr.erasure.completed".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(completions.len(), 1, "one completion entry");
    // The same request again: no second effect.
    assert!(
        matches!(store.start_erasure(&t, erasure_record("r-1", "t1", "c-1", "actor-1")).await.unwrap(), ErasureStart::AlreadyCompleted(ref done) if done.id == "r-1")
    );
    // Another request for the erased customer: nothing to do, and who did it.
    match store
        .start_erasure(&t, erasure_record("r-2", "t1", "c-1", "operator:x"))
        .await
        .unwrap()
    {
        ErasureStart::CustomerAlreadyErased { erased_by } => {
            assert_eq!(erased_by.as_deref(), Some("r-1"))
        }
        other => panic!("expected CustomerAlreadyErased, got {other:?}"),
    }
    // A new erasure request through the API finds the completed one.
    let (existing, created) = store
        .request_erasure(
            &t,
            erasure_record("r-3", "t1", "c-1", "actor-1"),
            audit(&t, "gdpr", "c-1"),
        )
        .await
        .unwrap();
    assert_eq!((existing.id.as_str(), created), ("r-1", false));
}

async fn an_erasure_request_for_a_missing_customer_or_naming_another_customer_is_refused(
    subject: Subject,
) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .create_customer(&t, customer("c-2"), audit(&t, "customer.create", "c-2"))
        .await
        .unwrap();
    let missing = store
        .start_erasure(&t, erasure_record("r-9", "t1", "c-9", "operator:x"))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    // An operator's message without a stored record: the record is created.
    let (record, _) = start(store, &t, erasure_record("r-1", "t1", "c-1", "operator:x")).await;
    assert_eq!(record.status, ErasureStatus::InProgress);
    assert_eq!(
        store.get_erasure(&t, "c-1", "r-1").await.unwrap().status,
        ErasureStatus::InProgress
    );
    assert_eq!(
        store.get_customer(&t, "c-1").await.unwrap().status,
        CustomerStatus::ErasureRequested
    );
    let other = store
        .start_erasure(&t, erasure_record("r-1", "t1", "c-2", "operator:x"))
        .await;
    assert!(matches!(other, Err(StoreError::Conflict(_))), "{other:?}");
    assert_eq!(
        store.get_customer(&t, "c-2").await.unwrap().status,
        CustomerStatus::Active
    );
    let wrong_masker = store
        .erase_batch(&t, "r-1", ErasureStep::Orders, &masker(&t, "c-2"), 10)
        .await;
    assert!(
        matches!(wrong_masker, Err(StoreError::Conflict(_))),
        "a masker for another customer is refused: {wrong_masker:?}"
    );
    let wrong_tenant = store
        .erase_batch(
            &t,
            "r-1",
            ErasureStep::Orders,
            &masker(&tenant("t2"), "c-1"),
            10,
        )
        .await;
    assert!(
        matches!(wrong_tenant, Err(StoreError::Conflict(_))),
        "{wrong_tenant:?}"
    );
}

async fn an_erasure_of_a_customer_with_many_records_takes_any_batch_size(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    for index in 0..130 {
        let id = format!("n-{index:03}");
        store
            .create_notification(
                &t,
                note(&id, to_customer("c-1"), now()),
                audit(&t, "notification.send", &id).about_customer("c-1"),
            )
            .await
            .unwrap();
    }
    let named_before = audit_naming(store, &t, &["c-1", "dev-client-c-1"])
        .await
        .len() as u64;
    assert!(named_before > 130);
    let (_, progress) = start(store, &t, erasure_record("r-1", "t1", "c-1", "operator:x")).await;
    // JOB_BATCH_SIZE defaults to 5000: the store takes what it can per committed batch.
    let progress = erase_all(store, &t, "r-1", &masker(&t, "c-1"), 5000, progress).await;
    assert_eq!(progress.counts()["notifications"], 130);
    assert_eq!(progress.counts()["auditEntries"], named_before);
    assert!(all_notifications(store, &t, &[to_customer("c-1")])
        .await
        .is_empty());
    assert!(audit_naming(store, &t, &["c-1", "dev-client-c-1"])
        .await
        .is_empty());
}

// ---------------------------------------------------------------------------------------------
// Order events: dispatched once
// ---------------------------------------------------------------------------------------------

async fn an_order_event_is_dispatched_once_per_consumer(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    let e1 = event("e-1", &t, "o-1", "c-1");
    let first = store
        .dispatch_event(&t, "NotificationDispatch", &e1, plan)
        .await
        .unwrap();
    assert_eq!(
        first,
        DispatchOutcome::Dispatched {
            notifications: 1,
            outbound: 1
        }
    );
    // A redelivery: nothing new stored.
    let again = store
        .dispatch_event(&t, "NotificationDispatch", &e1, plan)
        .await
        .unwrap();
    assert_eq!(again, DispatchOutcome::Duplicate);
    let notes = all_notifications(store, &t, &[to_customer("c-1")]).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].order_id.as_deref(), notes[0].category.as_str()),
        (Some("o-1"), "order.created")
    );
    let dispatches = all_audit(
        store,
        &t,
        AuditFilter {
            action: Some("notification.dispatch".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        dispatches.len(),
        1,
        "the fan-out's audit entry is stored with it, once"
    );
    assert_eq!(dispatches[0].target_id, notes[0].id);
    // Deduplication is per consumer and per tenant.
    let other = store
        .dispatch_event(&t, "AnotherConsumer", &e1, plan)
        .await
        .unwrap();
    assert!(
        matches!(
            other,
            DispatchOutcome::Dispatched {
                notifications: 1,
                ..
            }
        ),
        "{other:?}"
    );
    let t2 = tenant("t2");
    let elsewhere = store
        .dispatch_event(
            &t2,
            "NotificationDispatch",
            &event("e-1", &t2, "o-1", "c-1"),
            plan,
        )
        .await
        .unwrap();
    assert_eq!(
        elsewhere,
        DispatchOutcome::Skipped(SkipReason::CustomerMissing)
    );
    assert_eq!(
        all_notifications(store, &t, &[to_customer("c-1")])
            .await
            .len(),
        2
    );
}

async fn events_for_missing_or_erased_customers_or_orders_are_skipped_once(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .create_customer(&t, customer("c-2"), audit(&t, "customer.create", "c-2"))
        .await
        .unwrap();
    store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    store
        .create_order(
            &t,
            new_order("o-2", "c-2", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-2"),
        )
        .await
        .unwrap();
    let skipped = |id: &str, order: &str, customer: &str| {
        let e = event(id, &t, order, customer);
        async move {
            store
                .dispatch_event(&tenant("t1"), "NotificationDispatch", &e, plan)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        skipped("e-1", "o-1", "c-9").await,
        DispatchOutcome::Skipped(SkipReason::CustomerMissing)
    );
    assert_eq!(
        skipped("e-2", "o-9", "c-1").await,
        DispatchOutcome::Skipped(SkipReason::OrderMissing)
    );
    assert_eq!(
        skipped("e-3", "o-2", "c-1").await,
        DispatchOutcome::Skipped(SkipReason::OrderMissing),
        "another customer's order"
    );
    store
        .request_erasure(
            &t,
            erasure_record("r-1", "t1", "c-1", "actor-1"),
            audit(&t, "gdpr", "c-1"),
        )
        .await
        .unwrap();
    assert_eq!(
        skipped("e-4", "o-1", "c-1").await,
        DispatchOutcome::Skipped(SkipReason::CustomerErased),
        "erasure requested"
    );
    // A skipped event is recorded: its redelivery is a duplicate with nothing to send.
    assert_eq!(
        skipped("e-4", "o-1", "c-1").await,
        DispatchOutcome::Duplicate
    );
    assert_eq!(
        skipped("e-1", "o-1", "c-9").await,
        DispatchOutcome::Duplicate
    );
    assert!(all_notifications(
        store,
        &t,
        &[to_customer("c-1"), to_customer("c-2"), to_customer("c-9")]
    )
    .await
    .is_empty());
    // After the erasure completes, still skipped.
    let (_, progress) = start(store, &t, erasure_record("r-1", "t1", "c-1", "actor-1")).await;
    erase_all(store, &t, "r-1", &masker(&t, "c-1"), 100, progress).await;
    assert_eq!(
        skipped("e-5", "o-1", "c-1").await,
        DispatchOutcome::Skipped(SkipReason::CustomerErased),
        "erased"
    );
    assert!(all_notifications(store, &t, &[to_customer("c-1")])
        .await
        .is_empty());
}

async fn expired_processed_event_markers_are_removed_once(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    store
        .dispatch_event(
            &t,
            "NotificationDispatch",
            &event("e-1", &t, "o-1", "c-1"),
            plan,
        )
        .await
        .unwrap();
    store
        .dispatch_event(
            &t,
            "NotificationDispatch",
            &event("e-2", &t, "o-9", "c-1"),
            plan,
        )
        .await
        .unwrap();
    assert!(
        store
            .scan_expired_processed_events(now() - Duration::hours(1), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "recent markers are kept"
    );
    let expired = store
        .scan_expired_processed_events(now() + Duration::minutes(1), None, 10)
        .await
        .unwrap();
    let mut events: Vec<(String, String, String)> = expired.clone();
    events.sort();
    assert_eq!(
        events,
        [
            ("t1".into(), "NotificationDispatch".into(), "e-1".into()),
            ("t1".into(), "NotificationDispatch".into(), "e-2".into())
        ]
    );
    let after_first = store
        .scan_expired_processed_events(
            now() + Duration::minutes(1),
            Some(Cursor::new(
                expired[0].0.clone(),
                format!("{}\n{}", expired[0].1, expired[0].2),
            )),
            10,
        )
        .await
        .unwrap();
    assert_eq!(after_first, expired[1..], "the scan resumes after a cursor");
    hold_lease(store).await;
    assert_eq!(
        store
            .remove_rows(Removal::ProcessedEvents(expired.clone()), fence(None))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .remove_rows(Removal::ProcessedEvents(expired), fence(None))
            .await
            .unwrap(),
        0,
        "removed twice counts once"
    );
    assert!(store
        .scan_expired_processed_events(now() + Duration::minutes(1), None, 10)
        .await
        .unwrap()
        .is_empty());
    // With its marker gone, the event would be handled again (markers outlive any redelivery).
    assert!(matches!(
        store
            .dispatch_event(
                &t,
                "NotificationDispatch",
                &event("e-1", &t, "o-1", "c-1"),
                plan
            )
            .await
            .unwrap(),
        DispatchOutcome::Dispatched { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Jobs: leases, checkpoints, run records
// ---------------------------------------------------------------------------------------------

async fn a_job_lease_is_exclusive_until_it_expires_or_is_taken_over(subject: Subject) {
    let store = subject.store.as_ref();
    let ttl = StdDuration::from_secs(1);
    let asked = now();
    assert_eq!(
        store
            .acquire_lease("job-a", "holder-1", ttl, None)
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
    match store
        .acquire_lease("job-a", "holder-2", ttl, None)
        .await
        .unwrap()
    {
        LeaseGrant::HeldBy(lease) => {
            assert_eq!(
                (lease.job.as_str(), lease.holder.as_str()),
                ("job-a", "holder-1")
            );
            assert!(
                lease.expires_at > asked && lease.expires_at <= now() + Duration::seconds(2),
                "expires a ttl after it was taken: {lease:?}"
            );
        }
        other => panic!("expected the lease to be held, got {other:?}"),
    }
    // Another job's lease is independent.
    assert_eq!(
        store
            .acquire_lease("job-b", "holder-2", ttl, None)
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
    // Taking over from a holder the caller does not name is refused; naming it works.
    assert!(matches!(
        store
            .acquire_lease("job-a", "holder-2", ttl, Some("holder-9"))
            .await
            .unwrap(),
        LeaseGrant::HeldBy(_)
    ));
    assert_eq!(
        store
            .acquire_lease("job-a", "holder-2", ttl, Some("holder-1"))
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
    assert!(
        matches!(store.acquire_lease("job-a", "holder-1", ttl, None).await.unwrap(), LeaseGrant::HeldBy(ref lease) if lease.holder == "holder-2")
    );
    // An expired lease is free.
    tokio::time::sleep(StdDuration::from_millis(1300)).await;
    assert_eq!(
        store
            .acquire_lease("job-a", "holder-3", StdDuration::from_secs(60), None)
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
    // A released lease is free at once; releasing someone else's lease does nothing.
    store.release_lease("job-a", "holder-1").await.unwrap();
    assert!(
        matches!(store.acquire_lease("job-a", "holder-4", ttl, None).await.unwrap(), LeaseGrant::HeldBy(ref lease) if lease.holder == "holder-3")
    );
    store.release_lease("job-a", "holder-3").await.unwrap();
    assert_eq!(
        store
            .acquire_lease("job-a", "holder-4", ttl, None)
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
}

async fn a_run_that_lost_its_lease_can_neither_renew_nor_write(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    store
        .create_notification(
            &t,
            note("n-1", to_customer("c-1"), now() - Duration::days(40)),
            audit(&t, "notification.send", "n-1"),
        )
        .await
        .unwrap();
    let short = StdDuration::from_secs(1);
    assert_eq!(
        store
            .acquire_lease(JOB, "holder-1", short, None)
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
    store.renew_lease(JOB, "holder-1", short).await.unwrap();
    let stranger = store.renew_lease(JOB, "holder-2", short).await.unwrap_err();
    assert!(is_lease_lost(&stranger), "{stranger:?}");
    tokio::time::sleep(StdDuration::from_millis(1300)).await;
    // Expired and not yet taken: holder-1 may no longer write either.
    let expired = store.renew_lease(JOB, "holder-1", short).await.unwrap_err();
    assert!(
        is_lease_lost(&expired),
        "an expired lease is lost: {expired:?}"
    );
    assert_eq!(
        store
            .acquire_lease(JOB, "holder-2", StdDuration::from_secs(60), None)
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
    let lost = |checkpoint| Fence {
        job: JOB.into(),
        holder: "holder-1".into(),
        ttl: short,
        checkpoint,
    };
    let renew = store.renew_lease(JOB, "holder-1", short).await.unwrap_err();
    assert!(is_lease_lost(&renew), "{renew:?}");
    let save = store
        .save_checkpoint(lost(Some(json!({ "step": "stale" }))))
        .await
        .unwrap_err();
    assert!(is_lease_lost(&save), "{save:?}");
    let remove = store
        .remove_rows(
            Removal::Notifications {
                tenant: t.clone(),
                ids: vec!["n-1".into()],
            },
            lost(None),
        )
        .await
        .unwrap_err();
    assert!(is_lease_lost(&remove), "{remove:?}");
    assert_eq!(
        store.count_notifications(&t, now(), false).await.unwrap(),
        1,
        "the fenced removal removed nothing"
    );
    assert_eq!(
        store.load_checkpoint(JOB).await.unwrap(),
        None,
        "the fenced checkpoint was not written"
    );
    // The lease is still holder-2's.
    store
        .renew_lease(JOB, "holder-2", StdDuration::from_secs(60))
        .await
        .unwrap();
    assert!(
        matches!(store.acquire_lease(JOB, "holder-1", short, None).await.unwrap(), LeaseGrant::HeldBy(ref lease) if lease.holder == "holder-2")
    );
}

async fn checkpoints_are_saved_loaded_and_cleared_under_the_lease(subject: Subject) {
    let store = subject.store.as_ref();
    assert_eq!(store.load_checkpoint(JOB).await.unwrap(), None);
    hold_lease(store).await;
    let first = json!({ "runId": "run-1", "step": "notifications", "tenant": "t1", "cursor": { "key": "2026-01-01T00:00:00.000000Z", "id": "n-1" } });
    store
        .save_checkpoint(fence(Some(first.clone())))
        .await
        .unwrap();
    assert_eq!(store.load_checkpoint(JOB).await.unwrap(), Some(first));
    let second =
        json!({ "runId": "run-1", "step": "auditArchive", "day": "2016-01-01", "part": 3 });
    store
        .save_checkpoint(fence(Some(second.clone())))
        .await
        .unwrap();
    assert_eq!(
        store.load_checkpoint(JOB).await.unwrap(),
        Some(second),
        "replaced, not merged"
    );
    assert_eq!(
        store.load_checkpoint("NotificationCleanup").await.unwrap(),
        None,
        "per job"
    );
    store.save_checkpoint(fence(None)).await.unwrap();
    assert_eq!(store.load_checkpoint(JOB).await.unwrap(), None, "cleared");
    // A fenced write extends the lease by its ttl.
    let other = "NotificationCleanup";
    assert_eq!(
        store
            .acquire_lease(other, HOLDER, StdDuration::from_secs(1), None)
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
    store
        .save_checkpoint(Fence {
            job: other.into(),
            holder: HOLDER.into(),
            ttl: StdDuration::from_secs(60),
            checkpoint: Some(json!({ "step": "x" })),
        })
        .await
        .unwrap();
    tokio::time::sleep(StdDuration::from_millis(1300)).await;
    store
        .renew_lease(other, HOLDER, StdDuration::from_secs(60))
        .await
        .expect("the fenced write extended the lease");
    assert!(matches!(
        store
            .acquire_lease(other, "someone-else", StdDuration::from_secs(60), None)
            .await
            .unwrap(),
        LeaseGrant::HeldBy(_)
    ));
}

async fn a_checkpoint_outlives_the_lease_for_the_next_run(subject: Subject) {
    let store = subject.store.as_ref();
    hold_lease(store).await;
    let checkpoint = json!({ "runId": "run-1", "step": "notifications", "tenant": "t1" });
    store
        .save_checkpoint(fence(Some(checkpoint.clone())))
        .await
        .unwrap();
    // A partial run ends: it releases the lease and leaves its checkpoint for the next run.
    store.release_lease(JOB, HOLDER).await.unwrap();
    assert_eq!(
        store.load_checkpoint(JOB).await.unwrap(),
        Some(checkpoint.clone()),
        "the checkpoint survives the release"
    );
    assert_eq!(
        store
            .acquire_lease(JOB, "host:2:run-2", StdDuration::from_secs(1), None)
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
    assert_eq!(
        store.load_checkpoint(JOB).await.unwrap(),
        Some(checkpoint.clone()),
        "the next run resumes from it"
    );
    // A run that dies keeps it too, for whoever takes the lease over.
    tokio::time::sleep(StdDuration::from_millis(1300)).await;
    assert_eq!(
        store
            .acquire_lease(JOB, "host:3:run-3", StdDuration::from_secs(60), None)
            .await
            .unwrap(),
        LeaseGrant::Acquired
    );
    assert_eq!(store.load_checkpoint(JOB).await.unwrap(), Some(checkpoint));
}

async fn job_runs_are_listed_newest_first_with_their_audit_entries(subject: Subject) {
    let store = subject.store.as_ref();
    let base = now() - Duration::hours(5);
    let run = |id: &str, job: &str, hours: i64, outcome: &str| JobRunRecord {
        run_id: id.into(),
        job: job.into(),
        outcome: outcome.into(),
        started_at: base + Duration::hours(hours),
        finished_at: base + Duration::hours(hours) + Duration::minutes(3),
        report: json!({ "runId": id, "counts": { "t1": { "notificationsDeleted": hours } } }),
    };
    let system = tenant("_system");
    for (id, hours, outcome) in [
        ("run-1", 1, "finished"),
        ("run-3", 3, "partial"),
        ("run-2", 2, "failed"),
    ] {
        let entry = AuditEntry::now(
            "_system",
            &format!("system:{JOB}"),
            &format!("job.{outcome}"),
            "job_run",
            id,
            id,
        );
        store
            .record_job_run(run(id, JOB, hours, outcome), vec![entry])
            .await
            .unwrap();
    }
    store
        .record_job_run(run("run-x", "NotificationCleanup", 4, "finished"), vec![])
        .await
        .unwrap();
    let recent = store.recent_job_runs(JOB, 2).await.unwrap();
    assert_eq!(
        recent,
        [
            run("run-3", JOB, 3, "partial"),
            run("run-2", JOB, 2, "failed")
        ],
        "newest first, at most the limit, as recorded"
    );
    assert_eq!(store.recent_job_runs(JOB, 10).await.unwrap().len(), 3);
    assert_eq!(
        ids(
            store
                .recent_job_runs("NotificationCleanup", 10)
                .await
                .unwrap(),
            |r| r.run_id
        ),
        ["run-x"]
    );
    assert!(store
        .recent_job_runs("DatabaseMaintenance", 10)
        .await
        .unwrap()
        .is_empty());
    let trail = all_audit(
        store,
        &system,
        AuditFilter {
            actor_id: Some(format!("system:{JOB}")),
            ..Default::default()
        },
    )
    .await;
    let mut targets = ids(trail, |e| e.target_id);
    targets.sort();
    assert_eq!(
        targets,
        ["run-1", "run-2", "run-3"],
        "each run's audit entries are stored with it"
    );
}

// ---------------------------------------------------------------------------------------------
// Retention and maintenance scans
// ---------------------------------------------------------------------------------------------

async fn tenants_with_data_are_listed_sorted(subject: Subject) {
    let store = subject.store.as_ref();
    assert!(store.tenants_with_data().await.unwrap().is_empty());
    for name in ["tenant-b", "tenant-a"] {
        seed(store, &tenant(name)).await;
    }
    store
        .create_notification(
            &tenant("tenant-c"),
            note("n-1", Recipient::Role("admin".into()), now()),
            audit(&tenant("tenant-c"), "notification.send", "n-1"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.tenants_with_data().await.unwrap(),
        [tenant("tenant-a"), tenant("tenant-b"), tenant("tenant-c")]
    );
}

async fn notification_retention_scans_by_cursor_and_counts_removals_once(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    let base = now() - Duration::days(50);
    for index in 0..5 {
        let recipient = if index % 2 == 0 {
            to_customer("c-1")
        } else {
            Recipient::Role("admin".into())
        };
        store
            .create_notification(
                &t,
                note(
                    &format!("n-old-{index}"),
                    recipient,
                    base + Duration::hours(index),
                ),
                audit(&t, "notification.send", "n"),
            )
            .await
            .unwrap();
    }
    for index in 0..2 {
        store
            .create_notification(
                &t,
                note(&format!("n-new-{index}"), to_customer("c-1"), now()),
                audit(&t, "notification.send", "n"),
            )
            .await
            .unwrap();
    }
    store
        .create_notification(
            &tenant("t2"),
            note("n-other", to_customer("c-1"), base),
            audit(&tenant("t2"), "notification.send", "n"),
        )
        .await
        .unwrap();
    let before = now() - Duration::days(30);
    assert_eq!(
        store.count_notifications(&t, before, false).await.unwrap(),
        5
    );
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let scan = NotificationScan {
            before,
            read_only: false,
            after: after.clone(),
            limit: 2,
        };
        let rows = store.scan_notifications(&t, scan).await.unwrap();
        assert!(rows.len() <= 2);
        let Some(last) = rows.last() else { break };
        after = Some(last.cursor.clone());
        seen.extend(rows.into_iter().map(|row| (row.id, row.created_at)));
    }
    let expected: Vec<(String, DateTime<Utc>)> = (0..5)
        .map(|index| (format!("n-old-{index}"), base + Duration::hours(index)))
        .collect();
    assert_eq!(seen, expected, "oldest first, each once, across batches");
    hold_lease(store).await;
    let first_two = vec!["n-old-0".to_owned(), "n-old-1".to_owned()];
    let checkpoint = json!({ "step": "notifications", "tenant": "t1" });
    assert_eq!(
        store
            .remove_rows(
                Removal::Notifications {
                    tenant: t.clone(),
                    ids: first_two.clone()
                },
                fence(Some(checkpoint.clone()))
            )
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.load_checkpoint(JOB).await.unwrap(),
        Some(checkpoint),
        "the removal wrote the job's checkpoint"
    );
    let again = vec![
        "n-old-1".to_owned(),
        "n-old-2".to_owned(),
        "n-missing".to_owned(),
    ];
    assert_eq!(
        store
            .remove_rows(
                Removal::Notifications {
                    tenant: t.clone(),
                    ids: again
                },
                fence(None)
            )
            .await
            .unwrap(),
        1,
        "removed twice counts once"
    );
    assert_eq!(
        store
            .remove_rows(
                Removal::Notifications {
                    tenant: tenant("t2"),
                    ids: first_two
                },
                fence(None)
            )
            .await
            .unwrap(),
        0,
        "the ids of another tenant"
    );
    assert_eq!(
        store.count_notifications(&t, before, false).await.unwrap(),
        2
    );
    assert_eq!(
        store
            .count_notifications(&tenant("t2"), before, false)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        all_notifications(
            store,
            &t,
            &[to_customer("c-1"), Recipient::Role("admin".into())]
        )
        .await
        .len(),
        4
    );
    let by_key = Removal::NotificationsByKey(vec![
        ("t1".into(), "n-old-3".into()),
        ("t2".into(), "n-other".into()),
        ("t2".into(), "n-old-4".into()),
    ]);
    assert_eq!(
        store.remove_rows(by_key, fence(None)).await.unwrap(),
        2,
        "by key, any tenant"
    );
    assert_eq!(
        store.count_notifications(&t, before, false).await.unwrap(),
        1
    );
}

async fn a_removal_of_many_rows_counts_each_once(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    let old = now() - Duration::days(40);
    for index in 0..150 {
        let id = format!("n-{index:03}");
        store
            .create_notification(
                &t,
                note(
                    &id,
                    to_customer(&format!("c-{}", index % 3)),
                    old + Duration::seconds(index),
                ),
                audit(&t, "notification.send", &id),
            )
            .await
            .unwrap();
    }
    let before = now() - Duration::days(30);
    // JOB_BATCH_SIZE defaults to 5000: one scan and one removal take the whole lot.
    let rows = store
        .scan_notifications(
            &t,
            NotificationScan {
                before,
                read_only: false,
                after: None,
                limit: 5000,
            },
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 150);
    hold_lease(store).await;
    let ids: Vec<String> = rows.into_iter().map(|row| row.id).collect();
    assert_eq!(
        store
            .remove_rows(
                Removal::Notifications {
                    tenant: t.clone(),
                    ids: ids.clone()
                },
                fence(Some(json!({ "step": "notifications" })))
            )
            .await
            .unwrap(),
        150
    );
    assert_eq!(
        store
            .remove_rows(
                Removal::Notifications {
                    tenant: t.clone(),
                    ids
                },
                fence(None)
            )
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.count_notifications(&t, now(), false).await.unwrap(),
        0
    );
}

async fn read_notification_scans_see_only_read_ones_with_their_category(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    let base = now() - Duration::days(40);
    for index in 0..4 {
        let mut notification = note(
            &format!("n-{index}"),
            to_customer("c-1"),
            base + Duration::hours(index),
        );
        notification.category = format!("order.{index}");
        store
            .create_notification(&t, notification, audit(&t, "notification.send", "n"))
            .await
            .unwrap();
    }
    store
        .create_notification(
            &t,
            note("n-recent", to_customer("c-1"), now()),
            audit(&t, "notification.send", "n"),
        )
        .await
        .unwrap();
    for id in ["n-3", "n-1", "n-recent"] {
        store
            .mark_notification_read(
                &t,
                id,
                &[to_customer("c-1")],
                audit(&t, "notification.read", id),
            )
            .await
            .unwrap();
    }
    let before = now() - Duration::days(30);
    assert_eq!(
        store.count_notifications(&t, before, true).await.unwrap(),
        2
    );
    let first = store
        .scan_notifications(
            &t,
            NotificationScan {
                before,
                read_only: true,
                after: None,
                limit: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        first
            .iter()
            .map(|row| (row.id.as_str(), row.category.as_str()))
            .collect::<Vec<_>>(),
        [("n-1", "order.1")]
    );
    let next = store
        .scan_notifications(
            &t,
            NotificationScan {
                before,
                read_only: true,
                after: Some(first[0].cursor.clone()),
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        next.iter()
            .map(|row| (row.id.as_str(), row.category.as_str()))
            .collect::<Vec<_>>(),
        [("n-3", "order.3")]
    );
    assert_eq!(next[0].created_at, base + Duration::hours(3));
}

async fn audit_retention_scans_by_cursor_and_counts_removals_once(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    let old = now() - Duration::days(11 * 365);
    for index in 0..5 {
        let mut entry = AuditEntry::now(
            "t1",
            "actor-1",
            "order.create",
            "order",
            &format!("o-{index}"),
            "corr",
        );
        entry.id = format!("a-{index}");
        entry.at = old + Duration::minutes(index);
        if index == 2 {
            entry.customer_id = Some("c-1".into());
        }
        store.append_audit(&t, entry).await.unwrap();
    }
    store
        .append_audit(
            &t,
            AuditEntry::now("t1", "actor-1", "order.create", "order", "o-new", "corr"),
        )
        .await
        .unwrap();
    let before = now() - Duration::days(10 * 365);
    assert_eq!(store.count_audit(&t, before).await.unwrap(), 5);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let rows = store
            .scan_audit(&t, before, after.clone(), 2)
            .await
            .unwrap();
        let Some((_, cursor)) = rows.last() else {
            break;
        };
        after = Some(cursor.clone());
        seen.extend(
            rows.into_iter()
                .map(|(entry, _)| (entry.id, entry.at, entry.customer_id)),
        );
    }
    let expected: Vec<(String, DateTime<Utc>, Option<String>)> = (0..5)
        .map(|index| {
            (
                format!("a-{index}"),
                old + Duration::minutes(index),
                (index == 2).then(|| "c-1".to_owned()),
            )
        })
        .collect();
    assert_eq!(seen, expected, "oldest first, whole entries, each once");
    hold_lease(store).await;
    let batch: Vec<String> = (0..3).map(|index| format!("a-{index}")).collect();
    assert_eq!(
        store
            .remove_rows(
                Removal::AuditEntries {
                    tenant: t.clone(),
                    ids: batch.clone()
                },
                fence(None)
            )
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .remove_rows(
                Removal::AuditEntries {
                    tenant: t.clone(),
                    ids: batch
                },
                fence(None)
            )
            .await
            .unwrap(),
        0,
        "removed twice counts once"
    );
    assert_eq!(store.count_audit(&t, before).await.unwrap(), 2);
    assert_eq!(all_audit(store, &t, AuditFilter::default()).await.len(), 3);
}

async fn inactive_customers_are_scanned_least_recently_active_first(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    let at = now();
    let years_ago = |years: i64, days: i64| at - Duration::days(365 * years + days);
    let with_activity = |id: &str, at: DateTime<Utc>| Customer {
        last_activity_at: at,
        created_at: at,
        updated_at: at,
        ..customer(id)
    };
    for (id, at) in [
        ("c-old-2", years_ago(8, 0)),
        ("c-old-1", years_ago(9, 0)),
        ("c-recent", years_ago(1, 0)),
        ("c-user-erasure", years_ago(9, 5)),
        ("c-retention", years_ago(8, 100)),
    ] {
        store
            .create_customer(&t, with_activity(id, at), audit(&t, "customer.create", id))
            .await
            .unwrap();
    }
    store
        .create_customer(
            &tenant("t2"),
            with_activity("c-elsewhere", years_ago(9, 0)),
            audit(&tenant("t2"), "customer.create", "c"),
        )
        .await
        .unwrap();
    // An erasure a person asked for is the GDPR function's business; retention's own, interrupted, is retention's.
    store
        .request_erasure(
            &t,
            erasure_record("r-user", "t1", "c-user-erasure", "actor-1"),
            audit(&t, "gdpr", "c-user-erasure"),
        )
        .await
        .unwrap();
    start(
        store,
        &t,
        erasure_record("r-retention", "t1", "c-retention", RETENTION_REQUESTER),
    )
    .await;
    let before = at - Duration::days(7 * 365);
    assert_eq!(store.count_inactive_customers(&t, before).await.unwrap(), 3);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let batch = store
            .scan_inactive_customers(&t, before, after.clone(), 2)
            .await
            .unwrap();
        assert!(batch.len() <= 2);
        let Some(last) = batch.last() else { break };
        after = Some(last.cursor.clone());
        seen.extend(
            batch
                .into_iter()
                .map(|customer| (customer.id, customer.last_activity_at)),
        );
    }
    let expected = [
        ("c-old-1".to_owned(), years_ago(9, 0)),
        ("c-retention".to_owned(), years_ago(8, 100)),
        ("c-old-2".to_owned(), years_ago(8, 0)),
    ];
    assert_eq!(seen, expected, "least recently active first, each once; a started retention erasure is finished by the next run");
    // Activity is what the customer did last: an order makes c-old-2 active again.
    store
        .create_product(&t, product("p-1", 5), audit(&t, "product.create", "p-1"))
        .await
        .unwrap();
    store
        .create_order(
            &t,
            new_order("o-1", "c-old-2", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    assert_eq!(store.count_inactive_customers(&t, before).await.unwrap(), 2);
    // A retention erasure that completed takes the customer off the list.
    let masker = masker(&t, "c-retention");
    let (_, progress) = start(
        store,
        &t,
        erasure_record("r-retention", "t1", "c-retention", RETENTION_REQUESTER),
    )
    .await;
    erase_all(store, &t, "r-retention", &masker, 100, progress).await;
    store
        .finish_erasure(
            &t,
            "r-retention",
            json!({}),
            audit(&t, "gdpr.erasure.completed", "r-retention"),
        )
        .await
        .unwrap();
    assert_eq!(
        ids(
            store
                .scan_inactive_customers(&t, before, None, 10)
                .await
                .unwrap(),
            |c| c.id
        ),
        ["c-old-1"]
    );
}

async fn expired_idempotency_keys_are_found_and_removed_once(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 1)], Some(("c-1.k-1", "h-1"))),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    store
        .create_order(
            &t,
            new_order("o-2", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-2"),
        )
        .await
        .unwrap();
    assert!(
        store
            .scan_expired_idempotency_keys(now() - Duration::hours(24), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "fresh keys are kept"
    );
    let expired = store
        .scan_expired_idempotency_keys(now() + Duration::minutes(1), None, 10)
        .await
        .unwrap();
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0].0, "t1");
    let cursor = Cursor::new(expired[0].0.clone(), expired[0].1.clone());
    assert!(
        store
            .scan_expired_idempotency_keys(now() + Duration::minutes(1), Some(cursor), 10)
            .await
            .unwrap()
            .is_empty(),
        "the scan resumes after a cursor"
    );
    hold_lease(store).await;
    assert_eq!(
        store
            .remove_rows(Removal::IdempotencyKeys(expired.clone()), fence(None))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .remove_rows(Removal::IdempotencyKeys(expired), fence(None))
            .await
            .unwrap(),
        0,
        "removed twice counts once"
    );
    // An expired key is a new request again.
    let again = store
        .create_order(
            &t,
            new_order("o-3", "c-1", &[("p-1", 1)], Some(("c-1.k-1", "h-1"))),
            audit(&t, "order.create", "o-3"),
        )
        .await
        .unwrap();
    assert!(matches!(again, OrderCreated::New(_)), "{again:?}");
}

async fn orphan_notifications_are_found_for_missing_or_erased_customers(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .create_customer(&t, customer("c-2"), audit(&t, "customer.create", "c-2"))
        .await
        .unwrap();
    store
        .create_notification(
            &t,
            note("n-live", to_customer("c-1"), now()),
            audit(&t, "notification.send", "n-live"),
        )
        .await
        .unwrap();
    store
        .create_notification(
            &t,
            note("n-staff", Recipient::Role("admin".into()), now()),
            audit(&t, "notification.send", "n-staff"),
        )
        .await
        .unwrap();
    store
        .create_notification(
            &t,
            note("n-ghost", to_customer("c-ghost"), now()),
            audit(&t, "notification.send", "n-ghost"),
        )
        .await
        .unwrap();
    let (_, progress) = start(store, &t, erasure_record("r-1", "t1", "c-2", "operator:x")).await;
    erase_all(store, &t, "r-1", &masker(&t, "c-2"), 100, progress).await;
    // Written after the erasure (a race the dispatcher prevents; maintenance cleans it up).
    store
        .create_notification(
            &t,
            note("n-erased", to_customer("c-2"), now()),
            audit(&t, "notification.send", "n-erased"),
        )
        .await
        .unwrap();
    let orphans = store.scan_orphan_notifications(None, 10).await.unwrap();
    let mut found: Vec<(String, String)> = orphans.clone();
    found.sort();
    assert_eq!(
        found,
        [
            ("t1".into(), "n-erased".into()),
            ("t1".into(), "n-ghost".into())
        ]
    );
    let cursor = Cursor::new(orphans[0].0.clone(), orphans[0].1.clone());
    assert_eq!(
        store
            .scan_orphan_notifications(Some(cursor), 10)
            .await
            .unwrap(),
        orphans[1..],
        "the scan resumes after a cursor"
    );
    hold_lease(store).await;
    assert_eq!(
        store
            .remove_rows(Removal::NotificationsByKey(orphans.clone()), fence(None))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .remove_rows(Removal::NotificationsByKey(orphans), fence(None))
            .await
            .unwrap(),
        0
    );
    assert!(store
        .scan_orphan_notifications(None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn the_engine_maintenance_reports_integrity_and_no_orphans(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .create_order(
            &t,
            new_order("o-1", "c-1", &[("p-1", 1), ("p-2", 1)], None),
            audit(&t, "order.create", "o-1"),
        )
        .await
        .unwrap();
    assert!(
        store
            .scan_orphan_order_items(None, 10)
            .await
            .unwrap()
            .is_empty(),
        "an order's items never outlive it"
    );
    assert!(store
        .count_orders_without_customer()
        .await
        .unwrap()
        .is_empty());
    for dry_run in [true, false] {
        let engine = store.maintain_engine(dry_run).await.unwrap();
        assert_eq!(engine.backend, store.backend());
        assert_eq!(engine.integrity, ["ok"]);
    }
    assert_eq!(store.get_order(&t, "o-1").await.unwrap().items.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// The ERP: SKUs, stock levels against reservations, master data
// ---------------------------------------------------------------------------------------------

/// A product linked to the ERP by `sku` (none: not linked).
fn linked_product(id: &str, sku: Option<&str>, stock: i64) -> Product {
    Product {
        sku: sku.map(str::to_owned),
        ..product(id, stock)
    }
}

fn stock_level(sku: &str, on_hand: i64) -> shared::store::StockLevel {
    shared::store::StockLevel {
        sku: sku.into(),
        on_hand,
    }
}

/// The fence of a page of stock levels, its checkpoint naming `token`.
fn token_fence(token: &str) -> Fence {
    fence(Some(json!({ "token": token })))
}

/// Customer c-1, and the job lease the fenced writes are made under.
async fn erp_setup(store: &dyn Store, t: &TenantId) {
    store
        .create_customer(t, customer("c-1"), audit(t, "customer.create", "c-1"))
        .await
        .unwrap();
    hold_lease(store).await;
}

async fn erp_create(
    store: &dyn Store,
    t: &TenantId,
    product: Product,
) -> Result<Product, StoreError> {
    let id = product.id.clone();
    store
        .create_product(t, product, audit(t, "product.create", &id))
        .await
}

async fn erp_place(store: &dyn Store, t: &TenantId, id: &str, product: &str, quantity: i64) {
    let placed = store
        .create_order(
            t,
            new_order(id, "c-1", &[(product, quantity)], None),
            audit(t, "order.create", id),
        )
        .await
        .unwrap();
    assert!(matches!(placed, OrderCreated::New(_)), "{placed:?}");
}

async fn erp_move(store: &dyn Store, t: &TenantId, id: &str, status: OrderStatus) {
    store
        .change_order_status(
            t,
            id,
            StatusInput {
                status,
                reason: None,
            },
            "actor-1",
            IfMatch::Any,
            audit(t, "order.status", id),
        )
        .await
        .unwrap();
}

fn is_sku_taken(result: &Result<Product, StoreError>, sku: &str) -> bool {
    matches!(result, Err(StoreError::Rejected(Rejection::SkuTaken(taken))) if taken == sku)
}

/// A SKU is unique in a tenant (create and update), free in another tenant, found by
/// `product_by_sku`, and freed when its product moves to another SKU.
async fn skus_are_unique_per_tenant_and_found_by_sku(subject: Subject) {
    let store = subject.store.as_ref();
    let (a, b) = (tenant("t1"), tenant("t2"));
    erp_create(store, &a, linked_product("p-1", Some("KET-001"), 1))
        .await
        .unwrap();
    let second = erp_create(store, &a, linked_product("p-2", Some("KET-001"), 1)).await;
    assert!(is_sku_taken(&second, "KET-001"), "{second:?}");
    assert!(
        store.get_product(&a, "p-2").await.is_err(),
        "nothing of the refused product stays"
    );
    erp_create(store, &b, linked_product("p-2", Some("KET-001"), 1))
        .await
        .unwrap();
    let free = erp_create(store, &a, linked_product("p-3", None, 1))
        .await
        .unwrap();
    let mut input = product_input(&free, free.stock);
    input.sku = Some("KET-001".into());
    let taken = store
        .update_product(
            &a,
            "p-3",
            input,
            IfMatch::Any,
            audit(&a, "product.update", "p-3"),
        )
        .await;
    assert!(is_sku_taken(&taken, "KET-001"), "{taken:?}");
    let found = store.product_by_sku(&a, "KET-001").await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.tenant_id.as_str()), ("p-1", "t1"));
    assert_eq!(store.product_by_sku(&a, "MUG-002").await.unwrap(), None);

    let mut moved = product_input(&found, found.stock);
    moved.sku = Some("MUG-002".into());
    store
        .update_product(
            &a,
            "p-1",
            moved,
            IfMatch::Any,
            audit(&a, "product.update", "p-1"),
        )
        .await
        .unwrap();
    assert_eq!(store.product_by_sku(&a, "KET-001").await.unwrap(), None);
    let mut input = product_input(&free, free.stock);
    input.sku = Some("KET-001".into());
    let relinked = store
        .update_product(
            &a,
            "p-3",
            input,
            IfMatch::Any,
            audit(&a, "product.update", "p-3"),
        )
        .await
        .unwrap();
    assert_eq!(relinked.sku.as_deref(), Some("KET-001"));
    assert_eq!(
        store
            .product_by_sku(&a, "KET-001")
            .await
            .unwrap()
            .map(|p| p.id),
        Some("p-3".into())
    );
}

/// An update of a linked product that changes what the ERP owns is refused, naming the
/// fields, and changes nothing; its description is the app's to change.
async fn a_linked_product_keeps_what_the_erp_owns(subject: Subject) {
    let store = subject.store.as_ref();
    let t = tenant("t1");
    let linked = erp_create(store, &t, linked_product("p-1", Some("KET-001"), 4))
        .await
        .unwrap();
    let mut input = product_input(&linked, linked.stock);
    input.price_cents = 1;
    input.name = "Cheap kettle".into();
    let refused = store
        .update_product(
            &t,
            "p-1",
            input,
            IfMatch::Any,
            audit(&t, "product.update", "p-1"),
        )
        .await;
    match refused {
        Err(StoreError::Rejected(Rejection::OwnedByErp { sku, fields })) => {
            assert_eq!(sku, "KET-001");
            assert_eq!(fields, ["name", "priceCents"]);
        }
        other => panic!("expected OwnedByErp, got {other:?}"),
    }
    assert_eq!(store.get_product(&t, "p-1").await.unwrap().price_cents, 250);
    let mut input = product_input(&linked, linked.stock);
    input.description = Some("1.7 l".into());
    let updated = store
        .update_product(
            &t,
            "p-1",
            input,
            IfMatch::Any,
            audit(&t, "product.update", "p-1"),
        )
        .await
        .unwrap();
    assert_eq!(updated.description.as_deref(), Some("1.7 l"));
}

/// A level sets on hand and `available = on hand - reserved`; orders placed, cancelled and
/// shipped afterwards keep that equation; unknown SKUs are reported; the checkpoint is saved.
async fn stock_levels_apply_on_hand_less_reserved(subject: Subject) {
    let store = subject.store.as_ref();
    let t = tenant("t1");
    erp_setup(store, &t).await;
    erp_create(store, &t, linked_product("p-1", Some("KET-001"), 10))
        .await
        .unwrap();
    erp_place(store, &t, "o-1", "p-1", 3).await;
    let held = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!((held.stock, held.reserved), (7, 3));

    let applied = store
        .apply_stock_levels(
            std::slice::from_ref(&t),
            &[stock_level("KET-001", 5), stock_level("NOPE-1", 9)],
            token_fence("tok-1"),
        )
        .await
        .unwrap();
    assert_eq!(applied.applied.get("t1"), Some(&1));
    assert_eq!(applied.unknown_skus, ["NOPE-1"]);
    assert_eq!(
        store.load_checkpoint(JOB).await.unwrap(),
        Some(serde_json::json!({ "token": "tok-1" }))
    );
    let synced = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!(
        (synced.erp_on_hand, synced.reserved, synced.stock),
        (Some(5), 3, 2)
    );
    assert_ne!(synced.etag, held.etag, "clients see the stock change");

    erp_place(store, &t, "o-2", "p-1", 2).await;
    let p = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!((p.erp_on_hand, p.reserved, p.stock), (Some(5), 5, 0));
    let oversold = store
        .create_order(
            &t,
            new_order("o-3", "c-1", &[("p-1", 1)], None),
            audit(&t, "order.create", "o-3"),
        )
        .await;
    assert!(
        matches!(
            oversold,
            Err(StoreError::Rejected(Rejection::InsufficientStock { .. }))
        ),
        "{oversold:?}"
    );
    erp_move(store, &t, "o-2", OrderStatus::Cancelled).await;
    let p = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!((p.erp_on_hand, p.reserved, p.stock), (Some(5), 3, 2));
    erp_move(store, &t, "o-1", OrderStatus::Confirmed).await;
    erp_move(store, &t, "o-1", OrderStatus::Shipped).await;
    let p = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!(
        (p.erp_on_hand, p.reserved, p.stock),
        (Some(2), 0, 2),
        "shipped units are off hand and no longer reserved; available is unchanged"
    );
    erp_move(store, &t, "o-1", OrderStatus::Returned).await;
    let p = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!(
        (p.erp_on_hand, p.reserved, p.stock),
        (Some(2), 0, 2),
        "a return changes nothing here: the ERP's goods return raises on hand"
    );
}

/// A product of a tenant not linked to the ERP is not touched by a level of its SKU.
async fn stock_levels_touch_only_the_erp_tenants(subject: Subject) {
    let store = subject.store.as_ref();
    let (a, b) = (tenant("t1"), tenant("t2"));
    erp_setup(store, &a).await;
    erp_create(store, &a, linked_product("p-1", Some("KET-001"), 1))
        .await
        .unwrap();
    erp_create(store, &b, linked_product("p-1", Some("KET-001"), 1))
        .await
        .unwrap();
    store
        .apply_stock_levels(
            std::slice::from_ref(&a),
            &[stock_level("KET-001", 40)],
            token_fence("tok-1"),
        )
        .await
        .unwrap();
    assert_eq!(store.get_product(&a, "p-1").await.unwrap().stock, 40);
    assert_eq!(store.get_product(&b, "p-1").await.unwrap().stock, 1);
}

/// Orders placed while levels are applied are never lost: at the end, every unit on hand is
/// either available or reserved by exactly one placed order.
async fn concurrent_orders_and_stock_levels_never_lose_a_reservation(subject: Subject) {
    let store = subject.store.clone();
    let t = tenant("t1");
    erp_setup(store.as_ref(), &t).await;
    erp_create(
        store.as_ref(),
        &t,
        linked_product("p-1", Some("KET-001"), 50),
    )
    .await
    .unwrap();
    store
        .apply_stock_levels(
            std::slice::from_ref(&t),
            &[stock_level("KET-001", 50)],
            token_fence("tok-0"),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for index in 0..8 {
        let (orders, tenant_id) = (store.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let (store, t) = (orders, tenant_id);
            let id = format!("o-{index}");
            store
                .create_order(
                    &t,
                    new_order(&id, "c-1", &[("p-1", 2)], None),
                    audit(&t, "order.create", &id),
                )
                .await
                .map(|_| 2)
                .unwrap_or(0)
        }));
        let (store, t) = (store.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            store
                .apply_stock_levels(
                    &[t],
                    &[stock_level("KET-001", 50)],
                    token_fence(&format!("tok-{index}")),
                )
                .await
                .map(|_| 0)
                .unwrap()
        }));
    }
    let mut ordered = 0;
    for task in tasks {
        ordered += task.await.unwrap();
    }
    let p = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!(ordered, 16, "stock was enough for every order");
    assert_eq!(
        p.reserved, ordered,
        "every placed order's units are reserved"
    );
    assert_eq!(p.stock, 50 - ordered, "available = on hand - reserved");
}

/// Master data creates a product for an unknown SKU (no stock), updates the ERP-owned fields
/// of a known one, and leaves an up-to-date one alone.
async fn master_data_creates_updates_or_leaves_products(subject: Subject) {
    let store = subject.store.as_ref();
    let t = tenant("t1");
    let mut master = ErpMasterData {
        sku: "KET-001".into(),
        name: "Kettle".into(),
        category: "kitchen".into(),
        price_cents: 2999,
        currency: "EUR".into(),
        active: true,
    };
    let created = store
        .apply_master_data(&t, &master, "erp-ket-001")
        .await
        .unwrap();
    assert_eq!(created, MasterApplied::Created);
    let p = store.get_product(&t, "erp-ket-001").await.unwrap();
    assert_eq!(
        (
            p.name.as_str(),
            p.price_cents,
            p.stock,
            p.sku.as_deref(),
            p.active
        ),
        ("Kettle", 2999, 0, Some("KET-001"), true)
    );
    assert_eq!(
        store
            .apply_master_data(&t, &master, "other-id")
            .await
            .unwrap(),
        MasterApplied::Unchanged
    );
    master.price_cents = 3499;
    master.active = false;
    assert_eq!(
        store
            .apply_master_data(&t, &master, "other-id")
            .await
            .unwrap(),
        MasterApplied::Updated
    );
    let updated = store.get_product(&t, "erp-ket-001").await.unwrap();
    assert_eq!((updated.price_cents, updated.active), (3499, false));
    assert_ne!(updated.etag, p.etag);
    assert!(
        store.get_product(&t, "other-id").await.is_err(),
        "no second product"
    );
}

// ---------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------

async fn the_store_reports_healthy(subject: Subject) {
    subject.store.ping().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Audit intake, consents and notification preferences
// ---------------------------------------------------------------------------------------------

/// An audit entry another service sends is written once per id: a second write with the same
/// id (the service's retry) writes nothing and answers the stored entry, whatever it carries;
/// the same id in another tenant is another entry.
async fn audit_entries_sent_by_services_are_recorded_once(subject: Subject) {
    let store = subject.store.as_ref();
    let (a, b) = (tenant("a"), tenant("b"));
    let mut entry = AuditEntry::now(
        a.as_str(),
        "app:billing",
        "invoice.issue",
        "invoice",
        "i-1",
        "corr-1",
    )
    .about_customer("c-1");
    entry.id = "intake-1".into();
    entry.at = now();
    let first = store.record_audit_once(&a, entry.clone()).await.unwrap();
    assert_eq!(first, AuditRecorded::New(entry.clone()));

    let mut retry = entry.clone();
    retry.action = "invoice.void".into();
    retry.correlation_id = "corr-2".into();
    let again = store.record_audit_once(&a, retry).await.unwrap();
    assert_eq!(again, AuditRecorded::Existing(entry.clone()));
    let stored = all_audit(store, &a, AuditFilter::default()).await;
    assert_eq!(stored, vec![entry.clone()], "one entry, as first sent");
    let trail = AuditFilter {
        customer_id: Some("c-1".into()),
        ..AuditFilter::default()
    };
    assert_eq!(all_audit(store, &a, trail).await, vec![entry.clone()]);

    let mut elsewhere = entry.clone();
    elsewhere.tenant_id = b.as_str().into();
    let other = store
        .record_audit_once(&b, elsewhere.clone())
        .await
        .unwrap();
    assert_eq!(other, AuditRecorded::New(elsewhere));
    assert_eq!(all_audit(store, &a, AuditFilter::default()).await.len(), 1);
}

/// Consents are an append-only history per customer, oldest first: a withdrawal is a record of
/// its own and the grant before it stays; each is audited with it; a customer missing from the
/// tenant (another tenant's included) takes no consent and shows none.
async fn consents_are_an_append_only_history_per_customer(subject: Subject) {
    use shared::domain::consent::{ConsentChannel, ConsentRecord, Purpose};
    let store = subject.store.as_ref();
    let (a, b) = (tenant("a"), tenant("b"));
    store
        .create_customer(&a, customer("c-1"), audit(&a, "customer.create", "c-1"))
        .await
        .unwrap();
    let start = now();
    let record = |id: &str, purpose: Purpose, granted: bool, minutes: i64| ConsentRecord {
        id: id.into(),
        tenant_id: a.as_str().into(),
        customer_id: "c-1".into(),
        purpose,
        granted,
        notice_version: "2025-03".into(),
        channel: ConsentChannel::Web,
        recorded_at: start + Duration::minutes(minutes),
        recorded_by: "u-1".into(),
    };
    let history = vec![
        record("k-1", Purpose::MarketingEmail, true, 0),
        record("k-2", Purpose::Profiling, true, 1),
        record("k-3", Purpose::MarketingEmail, false, 2),
    ];
    for entry in &history {
        let stored = store
            .record_consent(
                &a,
                entry.clone(),
                audit(&a, "consent.record", "c-1").about_customer("c-1"),
            )
            .await
            .unwrap();
        assert_eq!(&stored, entry);
    }
    assert_eq!(store.consent_history(&a, "c-1").await.unwrap(), history);
    let audited = AuditFilter {
        action: Some("consent.record".into()),
        ..AuditFilter::default()
    };
    assert_eq!(all_audit(store, &a, audited).await.len(), 3);

    let foreign = ConsentRecord {
        tenant_id: b.as_str().into(),
        ..record("k-4", Purpose::MarketingSms, true, 3)
    };
    let missing = store
        .record_consent(&b, foreign, audit(&b, "consent.record", "c-1"))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    assert!(store.consent_history(&b, "c-1").await.unwrap().is_empty());
    let unknown = ConsentRecord {
        customer_id: "c-9".into(),
        ..record("k-5", Purpose::MarketingSms, true, 3)
    };
    let missing = store
        .record_consent(&a, unknown, audit(&a, "consent.record", "c-9"))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    assert_eq!(store.consent_history(&a, "c-1").await.unwrap().len(), 3);
}

/// Preferences that switch `email` off for order creations and `realtime` off for shipments.
fn quiet_preferences(customer: &str) -> shared::domain::preferences::Preferences {
    let input: shared::domain::preferences::PreferencesInput = serde_json::from_value(json!({
        "eventTypes": {"order.created": {"email": false}, "order.shipped": {"realtime": false}}
    }))
    .unwrap();
    input.resolve(customer).unwrap()
}

/// Notification preferences are one document per customer: none until set (the caller answers
/// the defaults), then what was put, with a new ETag each time, `If-Match` checked (the
/// defaults' ETag while never set), audited with the write; a missing customer, another
/// tenant's, or one whose erasure was requested takes none.
async fn notification_preferences_are_one_document_per_customer_with_an_etag(subject: Subject) {
    use shared::domain::preferences::{EventType, DEFAULT_ETAG};
    let store = subject.store.as_ref();
    let (a, b) = (tenant("a"), tenant("b"));
    for id in ["c-1", "c-2"] {
        store
            .create_customer(&a, customer(id), audit(&a, "customer.create", id))
            .await
            .unwrap();
    }
    assert_eq!(store.get_preferences(&a, "c-1").await.unwrap(), None);
    let write = |t: &TenantId, id: &str| audit(t, "preferences.update", id).about_customer(id);
    let stale = store
        .put_preferences(
            &a,
            quiet_preferences("c-1"),
            IfMatch::exactly(ETag::new("not-the-defaults")),
            write(&a, "c-1"),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed { .. })),
        "{stale:?}"
    );
    let first = store
        .put_preferences(
            &a,
            quiet_preferences("c-1"),
            IfMatch::exactly(ETag::new(DEFAULT_ETAG)),
            write(&a, "c-1"),
        )
        .await
        .unwrap();
    assert!(first.updated_at.is_some() && first.etag != DEFAULT_ETAG);
    let read = store.get_preferences(&a, "c-1").await.unwrap().unwrap();
    assert_eq!(read, first);
    assert!(!read.switches(EventType::OrderCreated).email);
    assert!(!read.switches(EventType::OrderShipped).realtime);
    assert!(read.switches(EventType::OrderShipped).email);

    let mut louder = first.clone();
    louder.event_types = shared::domain::preferences::Preferences::defaults("c-1").event_types;
    let second = store
        .put_preferences(
            &a,
            louder.clone(),
            IfMatch::exactly(ETag::new(first.etag.clone())),
            write(&a, "c-1"),
        )
        .await
        .unwrap();
    assert_ne!(second.etag, first.etag);
    let stale = store
        .put_preferences(
            &a,
            louder,
            IfMatch::exactly(ETag::new(first.etag.clone())),
            write(&a, "c-1"),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed { .. })),
        "{stale:?}"
    );
    assert_eq!(
        store.get_preferences(&a, "c-1").await.unwrap(),
        Some(second)
    );
    assert_eq!(
        store.get_preferences(&a, "c-2").await.unwrap(),
        None,
        "c-2 never set any"
    );
    let audited = AuditFilter {
        action: Some("preferences.update".into()),
        ..AuditFilter::default()
    };
    assert_eq!(all_audit(store, &a, audited).await.len(), 2);

    for (t, id) in [(&b, "c-1"), (&a, "c-9")] {
        let missing = store
            .put_preferences(t, quiet_preferences(id), IfMatch::Any, write(t, id))
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
        assert_eq!(store.get_preferences(t, id).await.unwrap(), None);
    }
    store
        .request_erasure(
            &a,
            erasure_record("r-2", "a", "c-2", "actor-1"),
            audit(&a, "gdpr.erasure.request", "c-2"),
        )
        .await
        .unwrap();
    let erasing = store
        .put_preferences(&a, quiet_preferences("c-2"), IfMatch::Any, write(&a, "c-2"))
        .await;
    assert!(
        matches!(
            erasing,
            Err(StoreError::Rejected(Rejection::CustomerNotActive(_)))
        ),
        "{erasing:?}"
    );
}

/// Like [`plan`], with the outbound email only when the customer's preferences let
/// `order.created` through `email`.
fn plan_by_preferences(
    customer: &Customer,
    preferences: &shared::domain::preferences::Preferences,
    event: &CustomerEvent,
) -> Fanout {
    let mut fanout = plan(customer, preferences, event);
    if !preferences.allows("order.created", shared::domain::preferences::Channel::Email) {
        fanout.outbound.clear();
    }
    fanout
}

/// The dispatch hands the plan the customer's preferences as stored (the defaults when they
/// never set any).
async fn dispatch_plans_with_the_customers_stored_preferences(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .create_customer(&t, customer("c-2"), audit(&t, "customer.create", "c-2"))
        .await
        .unwrap();
    for (order, customer) in [("o-1", "c-1"), ("o-2", "c-2")] {
        store
            .create_order(
                &t,
                new_order(order, customer, &[("p-1", 1)], None),
                audit(&t, "order.create", order),
            )
            .await
            .unwrap();
    }
    store
        .put_preferences(
            &t,
            quiet_preferences("c-1"),
            IfMatch::Any,
            audit(&t, "preferences.update", "c-1"),
        )
        .await
        .unwrap();
    let quiet = store
        .dispatch_event(
            &t,
            "NotificationDispatch",
            &event("e-1", &t, "o-1", "c-1"),
            plan_by_preferences,
        )
        .await
        .unwrap();
    assert_eq!(
        quiet,
        DispatchOutcome::Dispatched {
            notifications: 1,
            outbound: 0
        },
        "email switched off: the notification only"
    );
    let defaults = store
        .dispatch_event(
            &t,
            "NotificationDispatch",
            &event("e-2", &t, "o-2", "c-2"),
            plan_by_preferences,
        )
        .await
        .unwrap();
    assert_eq!(
        defaults,
        DispatchOutcome::Dispatched {
            notifications: 1,
            outbound: 1
        },
        "never set: every channel on"
    );
}

/// An erasure deletes the customer's notification preferences (and no one else's), and counts
/// them.
async fn an_erasure_deletes_the_notification_preferences(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    seed(store, &t).await;
    store
        .create_customer(&t, customer("c-2"), audit(&t, "customer.create", "c-2"))
        .await
        .unwrap();
    for id in ["c-1", "c-2"] {
        store
            .put_preferences(
                &t,
                quiet_preferences(id),
                IfMatch::Any,
                audit(&t, "preferences.update", id).about_customer(id),
            )
            .await
            .unwrap();
    }
    let masker = masker(&t, "c-1");
    let (_, progress) = start(store, &t, erasure_record("r-1", "t1", "c-1", "actor-1")).await;
    let progress = erase_all(store, &t, "r-1", &masker, 100, progress).await;
    assert_eq!(progress.counts()["notificationPreferences"], 1);
    assert_eq!(store.get_preferences(&t, "c-1").await.unwrap(), None);
    assert!(
        store.get_preferences(&t, "c-2").await.unwrap().is_some(),
        "another customer's stay"
    );
}

// ---------------------------------------------------------------------------------------------
// Instantiation: every behaviour, once per adapter.
// ---------------------------------------------------------------------------------------------

/// Runs each behaviour against one adapter: a module named after the adapter, one
/// `#[tokio::test]` per behaviour.
macro_rules! adapter {
    ($adapter:ident: $($behaviour:ident),* $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    super::$behaviour(super::$adapter().await).await;
                }
            )*
        }
    };
}

/// The list of behaviours, written once; `every_behaviour!(adapter)` instantiates all of them.
macro_rules! every_behaviour {
    ($adapter:ident) => {
        adapter!($adapter:
            created_and_read_back_equal,
            missing_and_other_tenants_documents_are_both_not_found,
            writes_naming_another_tenants_ids_are_not_found,
            updates_check_the_etag,
            product_and_order_updates_check_the_etag,
            a_customers_etag_changes_only_when_the_profile_does,
            product_listing_filters_by_name_and_category,
            paging_returns_every_item_once_and_is_stable_under_inserts,
            newest_first_paging_neither_repeats_nor_skips_under_inserts,
            paging_is_stable_under_concurrent_inserts,
            continuation_tokens_are_checked,
            order_creation_reserves_stock_atomically,
            an_order_and_its_items_are_written_and_read_together,
            lines_of_one_product_are_reserved_together,
            a_refused_order_write_gives_the_stock_back,
            no_order_for_a_customer_whose_erasure_was_requested,
            concurrent_orders_never_oversell,
            concurrent_orders_of_one_customer_are_all_placed_while_stock_lasts,
            idempotency_keys_replay_the_first_result,
            idempotency_keys_as_the_api_builds_them_are_accepted,
            concurrent_requests_with_one_idempotency_key_create_one_order,
            an_order_may_have_as_many_lines_as_the_api_allows,
            order_status_follows_the_state_machine_and_cancel_releases_stock,
            order_listing_filters,
            notifications_list_unread_first_and_are_read_only_by_their_recipient,
            marking_read_is_recorded_once_and_role_notifications_reach_the_role,
            every_write_is_audited_in_the_same_tenant,
            audit_listing_filters_and_pages_newest_first,
            audit_entries_sent_by_services_are_recorded_once,
            consents_are_an_append_only_history_per_customer,
            notification_preferences_are_one_document_per_customer_with_an_etag,
            dispatch_plans_with_the_customers_stored_preferences,
            an_erasure_deletes_the_notification_preferences,
            a_repeated_erasure_request_returns_the_open_one,
            an_erasure_masks_the_customer_and_leaves_others_untouched,
            an_erasure_keeps_the_proof_of_consents_under_a_pseudonym,
            a_marketing_message_is_stored_with_its_outbound_message,
            security_events_are_kept_with_their_audit_entry_and_alert,
            an_erasure_resumed_after_a_partial_run_counts_every_record_once,
            finishing_an_erasure_twice_has_one_effect,
            an_erasure_request_for_a_missing_customer_or_naming_another_customer_is_refused,
            an_erasure_of_a_customer_with_many_records_takes_any_batch_size,
            an_order_event_is_dispatched_once_per_consumer,
            events_for_missing_or_erased_customers_or_orders_are_skipped_once,
            expired_processed_event_markers_are_removed_once,
            a_job_lease_is_exclusive_until_it_expires_or_is_taken_over,
            a_run_that_lost_its_lease_can_neither_renew_nor_write,
            checkpoints_are_saved_loaded_and_cleared_under_the_lease,
            a_checkpoint_outlives_the_lease_for_the_next_run,
            job_runs_are_listed_newest_first_with_their_audit_entries,
            tenants_with_data_are_listed_sorted,
            notification_retention_scans_by_cursor_and_counts_removals_once,
            a_removal_of_many_rows_counts_each_once,
            read_notification_scans_see_only_read_ones_with_their_category,
            audit_retention_scans_by_cursor_and_counts_removals_once,
            inactive_customers_are_scanned_least_recently_active_first,
            expired_idempotency_keys_are_found_and_removed_once,
            orphan_notifications_are_found_for_missing_or_erased_customers,
            the_engine_maintenance_reports_integrity_and_no_orphans,
            skus_are_unique_per_tenant_and_found_by_sku,
            a_linked_product_keeps_what_the_erp_owns,
            stock_levels_apply_on_hand_less_reserved,
            stock_levels_touch_only_the_erp_tenants,
            concurrent_orders_and_stock_levels_never_lose_a_reservation,
            master_data_creates_updates_or_leaves_products,
            the_store_reports_healthy,
        );
    };
}

every_behaviour!(sqlite);
every_behaviour!(cosmos);
