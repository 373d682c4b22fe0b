//! The order saga's compensation and settlement, on the in-memory emulator.

use azure_data_cosmos::FeedScope;

use super::*;
use crate::domain::order::{OrderInput, OrderLineInput};
use crate::store::cosmos::fixtures::{customer, tenant, TENANT};
use crate::store::cosmos::{in_memory, CosmosOptions};
use crate::store::jobs::MaintenanceStore;
use crate::store::{CustomerStore, ProductStore};

fn audit(action: &str, target: &str) -> AuditEntry {
    AuditEntry::now(TENANT, "actor", action, "order", target, "corr")
}

/// A store with product p-1 (stock 10) and customer c-1.
async fn store() -> CosmosStore {
    let store = in_memory(CosmosOptions::for_emulator(), Vec::new())
        .await
        .unwrap()
        .store;
    let at = now();
    let product = Product {
        id: "p-1".into(),
        tenant_id: TENANT.into(),
        name: "Kettle".into(),
        category: "kitchen".into(),
        description: None,
        price_cents: 100,
        currency: "EUR".into(),
        stock: 10,
        active: true,
        sku: None,
        erp_on_hand: None,
        reserved: 0,
        created_at: at,
        updated_at: at,
        etag: String::new(),
    };
    store
        .create_product(&tenant(), product, audit("product.create", "p-1"))
        .await
        .unwrap();
    store
        .create_customer(&tenant(), customer("c-1"), audit("customer.create", "c-1"))
        .await
        .unwrap();
    store
}

async fn stock(store: &CosmosStore) -> i64 {
    store.get_product(&tenant(), "p-1").await.unwrap().stock
}

async fn reservations(store: &CosmosStore) -> Vec<Doc<StockReservation>> {
    let params = vec![("@kind", json!(kind::RESERVATION))];
    store
        .query_docs(
            store.data(),
            FeedScope::full_container(),
            "SELECT * FROM c WHERE c.type = @kind",
            params,
        )
        .await
        .unwrap()
}

/// Reserves 3 units of p-1 for `order_id` as step 2 of a creation does, and stops there
/// (the process "crashed" before writing the order).
async fn reserve_and_crash(store: &CosmosStore, order_id: &str) {
    let products = vec![store.product_doc(TENANT, "p-1").await.unwrap().unwrap()];
    let body = StockReservation {
        order_id: order_id.into(),
        customer_id: "c-1".into(),
        quantities: vec![("p-1".into(), 3)],
        created_at: now(),
    };
    let doc = Doc::new(
        kind::RESERVATION,
        order_id,
        TENANT,
        CATALOG_SCOPE,
        ts(body.created_at),
        body.clone(),
    )
    .with_at(body.created_at);
    store
        .adjust_stock(
            TENANT,
            &products,
            &[("p-1".into(), -3)],
            ReservationChange::Create(&doc),
        )
        .await
        .unwrap()
        .unwrap();
}

fn new_order(id: &str) -> NewOrder {
    NewOrder {
        id: id.into(),
        customer_id: "c-1".into(),
        input: OrderInput {
            customer_id: Some("c-1".into()),
            items: vec![OrderLineInput {
                product_id: "p-1".into(),
                quantity: 3,
            }],
            shipping_address: None,
        },
        actor_id: "actor".into(),
        idempotency: None,
    }
}

#[tokio::test]
async fn a_placed_order_leaves_no_reservation_record() {
    let store = store().await;
    store
        .create_order(&tenant(), new_order("o-1"), audit("order.create", "o-1"))
        .await
        .unwrap();
    assert_eq!(stock(&store).await, 7);
    assert!(reservations(&store).await.is_empty());
}

#[tokio::test]
async fn maintenance_gives_back_stock_reserved_for_an_order_that_was_never_written() {
    let store = store().await;
    reserve_and_crash(&store, "o-ghost").await;
    assert_eq!(stock(&store).await, 7);
    let later = now() + chrono::Duration::seconds(1);
    assert_eq!(
        store.settle_stock_reservations(later, true).await.unwrap(),
        vec![(TENANT.to_owned(), 1)],
        "a dry run counts"
    );
    assert_eq!(stock(&store).await, 7, "and changes nothing");
    assert!(
        store
            .settle_stock_reservations(now() - chrono::Duration::minutes(15), false)
            .await
            .unwrap()
            .is_empty(),
        "a recent one is left alone"
    );
    assert_eq!(
        store.settle_stock_reservations(later, false).await.unwrap(),
        vec![(TENANT.to_owned(), 1)]
    );
    assert_eq!(stock(&store).await, 10, "the stock is back");
    assert!(reservations(&store).await.is_empty());
    assert!(
        store
            .settle_stock_reservations(later, false)
            .await
            .unwrap()
            .is_empty(),
        "settled once"
    );
    assert_eq!(stock(&store).await, 10);
}

#[tokio::test]
async fn maintenance_forgets_the_reservation_of_an_order_that_exists() {
    let store = store().await;
    store
        .create_order(&tenant(), new_order("o-1"), audit("order.create", "o-1"))
        .await
        .unwrap();
    // The record's deletion after the order write was lost: it is still there.
    let body = StockReservation {
        order_id: "o-1".into(),
        customer_id: "c-1".into(),
        quantities: vec![("p-1".into(), 3)],
        created_at: now(),
    };
    let doc = Doc::new(
        kind::RESERVATION,
        "o-1",
        TENANT,
        CATALOG_SCOPE,
        ts(body.created_at),
        body.clone(),
    )
    .with_at(body.created_at);
    store
        .create_doc(store.data(), pk(TENANT, CATALOG_SCOPE), &doc.id, &doc)
        .await
        .unwrap();
    let later = now() + chrono::Duration::seconds(1);
    assert_eq!(
        store.settle_stock_reservations(later, false).await.unwrap(),
        vec![(TENANT.to_owned(), 1)]
    );
    assert_eq!(stock(&store).await, 7, "the order keeps its stock");
    assert!(reservations(&store).await.is_empty());
}
