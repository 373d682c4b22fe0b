//! Conformance of the ERP synchronisation's storage ([`shared::store::ErpStore`]) and of the
//! SKU rules of the catalogue, written once against `Arc<dyn Store>` and instantiated per
//! adapter at the end (`erp_store_conformance::sqlite::<behaviour>`,
//! `erp_store_conformance::cosmos::<behaviour>`, the latter on the SDK's in-memory emulator).

#[path = "fixtures/records.rs"]
mod records;

use std::sync::Arc;
use std::time::Duration;

use shared::domain::audit::AuditEntry;
use shared::domain::order::{OrderInput, OrderLineInput, OrderStatus, StatusInput};
use shared::domain::product::{Product, ProductInput};
use shared::domain::rejection::Rejection;
use shared::domain::tenant::TenantId;
use shared::store::cosmos::CosmosOptions;
use shared::store::jobs::{Fence, LeaseGrant};
use shared::store::sqlite::Db;
use shared::store::{
    ErpMasterData, IfMatch, MasterApplied, NewOrder, OrderCreated, StockLevel, Store, StoreError,
};

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

async fn cosmos() -> Subject {
    let cosmos = shared::store::cosmos::in_memory(CosmosOptions::for_emulator(), vec![])
        .await
        .unwrap();
    Subject {
        store: Arc::new(cosmos.store),
        _keep: tempfile::tempdir().unwrap(),
    }
}

const JOB: &str = "ErpInventorySync";
const HOLDER: &str = "host:1:run-1";

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn audit(t: &TenantId, action: &str, target: &str) -> AuditEntry {
    AuditEntry::now(t.as_str(), "actor-1", action, "test", target, "corr-1")
}

fn product(id: &str, sku: Option<&str>, stock: i64) -> Product {
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
        sku: sku.map(str::to_owned),
        erp_on_hand: None,
        reserved: 0,
        created_at: now,
        updated_at: now,
        etag: String::new(),
    }
}

fn input_of(product: &Product) -> ProductInput {
    ProductInput {
        name: product.name.clone(),
        category: product.category.clone(),
        description: product.description.clone(),
        price_cents: product.price_cents,
        currency: product.currency.clone(),
        stock: product.stock,
        active: product.active,
        sku: product.sku.clone(),
    }
}

fn order(id: &str, product: &str, quantity: i64) -> NewOrder {
    NewOrder {
        id: id.into(),
        customer_id: "c-1".into(),
        input: OrderInput {
            customer_id: Some("c-1".into()),
            items: vec![OrderLineInput {
                product_id: product.into(),
                quantity,
            }],
            shipping_address: None,
        },
        actor_id: "actor-1".into(),
        idempotency: None,
    }
}

fn level(sku: &str, on_hand: i64) -> StockLevel {
    StockLevel {
        sku: sku.into(),
        on_hand,
    }
}

fn fence(token: &str) -> Fence {
    Fence {
        job: JOB.into(),
        holder: HOLDER.into(),
        ttl: Duration::from_secs(60),
        checkpoint: Some(serde_json::json!({ "token": token })),
    }
}

async fn setup(store: &dyn Store, t: &TenantId) {
    store
        .create_customer(
            t,
            records::customer("c-1"),
            audit(t, "customer.create", "c-1"),
        )
        .await
        .unwrap();
    let lease = store
        .acquire_lease(JOB, HOLDER, Duration::from_secs(60), None)
        .await
        .unwrap();
    assert_eq!(lease, LeaseGrant::Acquired);
}

async fn create(store: &dyn Store, t: &TenantId, product: Product) -> Result<Product, StoreError> {
    let id = product.id.clone();
    store
        .create_product(t, product, audit(t, "product.create", &id))
        .await
}

async fn place(store: &dyn Store, t: &TenantId, id: &str, product: &str, quantity: i64) {
    let placed = store
        .create_order(
            t,
            order(id, product, quantity),
            audit(t, "order.create", id),
        )
        .await
        .unwrap();
    assert!(matches!(placed, OrderCreated::New(_)), "{placed:?}");
}

async fn move_order(store: &dyn Store, t: &TenantId, id: &str, status: OrderStatus) {
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
    create(store, &a, product("p-1", Some("KET-001"), 1))
        .await
        .unwrap();
    let second = create(store, &a, product("p-2", Some("KET-001"), 1)).await;
    assert!(is_sku_taken(&second, "KET-001"), "{second:?}");
    assert!(
        store.get_product(&a, "p-2").await.is_err(),
        "nothing of the refused product stays"
    );
    create(store, &b, product("p-2", Some("KET-001"), 1))
        .await
        .unwrap();
    let free = create(store, &a, product("p-3", None, 1)).await.unwrap();
    let mut input = input_of(&free);
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

    let mut moved = input_of(&found);
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
    let mut input = input_of(&free);
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
    let linked = create(store, &t, product("p-1", Some("KET-001"), 4))
        .await
        .unwrap();
    let mut input = input_of(&linked);
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
    let mut input = input_of(&linked);
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
    setup(store, &t).await;
    create(store, &t, product("p-1", Some("KET-001"), 10))
        .await
        .unwrap();
    place(store, &t, "o-1", "p-1", 3).await;
    let held = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!((held.stock, held.reserved), (7, 3));

    let applied = store
        .apply_stock_levels(
            std::slice::from_ref(&t),
            &[level("KET-001", 5), level("NOPE-1", 9)],
            fence("tok-1"),
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

    place(store, &t, "o-2", "p-1", 2).await;
    let p = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!((p.erp_on_hand, p.reserved, p.stock), (Some(5), 5, 0));
    let oversold = store
        .create_order(&t, order("o-3", "p-1", 1), audit(&t, "order.create", "o-3"))
        .await;
    assert!(
        matches!(
            oversold,
            Err(StoreError::Rejected(Rejection::InsufficientStock { .. }))
        ),
        "{oversold:?}"
    );
    move_order(store, &t, "o-2", OrderStatus::Cancelled).await;
    let p = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!((p.erp_on_hand, p.reserved, p.stock), (Some(5), 3, 2));
    move_order(store, &t, "o-1", OrderStatus::Confirmed).await;
    move_order(store, &t, "o-1", OrderStatus::Shipped).await;
    let p = store.get_product(&t, "p-1").await.unwrap();
    assert_eq!(
        (p.erp_on_hand, p.reserved, p.stock),
        (Some(2), 0, 2),
        "shipped units are off hand and no longer reserved; available is unchanged"
    );
    move_order(store, &t, "o-1", OrderStatus::Returned).await;
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
    setup(store, &a).await;
    create(store, &a, product("p-1", Some("KET-001"), 1))
        .await
        .unwrap();
    create(store, &b, product("p-1", Some("KET-001"), 1))
        .await
        .unwrap();
    store
        .apply_stock_levels(
            std::slice::from_ref(&a),
            &[level("KET-001", 40)],
            fence("tok-1"),
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
    setup(store.as_ref(), &t).await;
    create(store.as_ref(), &t, product("p-1", Some("KET-001"), 50))
        .await
        .unwrap();
    store
        .apply_stock_levels(
            std::slice::from_ref(&t),
            &[level("KET-001", 50)],
            fence("tok-0"),
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
                .create_order(&t, order(&id, "p-1", 2), audit(&t, "order.create", &id))
                .await
                .map(|_| 2)
                .unwrap_or(0)
        }));
        let (store, t) = (store.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            store
                .apply_stock_levels(
                    &[t],
                    &[level("KET-001", 50)],
                    fence(&format!("tok-{index}")),
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

macro_rules! every_behaviour {
    ($adapter:ident) => {
        adapter!($adapter:
            skus_are_unique_per_tenant_and_found_by_sku,
            a_linked_product_keeps_what_the_erp_owns,
            stock_levels_apply_on_hand_less_reserved,
            stock_levels_touch_only_the_erp_tenants,
            concurrent_orders_and_stock_levels_never_lose_a_reservation,
            master_data_creates_updates_or_leaves_products,
        );
    };
}

every_behaviour!(sqlite);
every_behaviour!(cosmos);
