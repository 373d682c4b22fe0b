//! Fault injection against the Cosmos DB store on the SDK's in-memory emulator (feature
//! `cosmos-emulator`, which turns on the SDK's `fault_injection`): the rules sit below the SDK's
//! retry policy, so what these tests see is the store's real retry and error handling.
//!
//! - 429 (throttling) within the retry budget is retried and the call succeeds; the store counts
//!   every throttled attempt (`throttled_requests`, shown in job reports);
//! - 429 beyond the budget surfaces as [`StoreError::Throttled`];
//! - 503 that clears is retried; 503 that persists surfaces as [`StoreError::Unavailable`]
//!   naming cosmos;
//! - a call the service never answers is bounded by the store's timeout;
//! - the health check fails clearly while faults persist.
//!
//! Rules are disabled while the store provisions its database and containers, then enabled, so
//! they only meet the calls under test. Every call under test is wrapped in a
//! `tokio::time::timeout`, so no test can hang.

#[path = "fixtures/records.rs"]
mod records;
use records::customer;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_data_cosmos::fault_injection::{
    FaultInjectionConditionBuilder, FaultInjectionErrorType, FaultInjectionResultBuilder,
    FaultInjectionRule, FaultInjectionRuleBuilder, FaultOperationType,
};
use shared::domain::audit::AuditEntry;
use shared::domain::tenant::TenantId;
use shared::store::cosmos::{CosmosOptions, CosmosStore};
use shared::store::{AuditStore, CustomerStore, IfMatch};
use shared::store::{HealthCheck, PageRequest, StoreError};

/// The longest any call under test may take before the test fails (instead of hanging).
const GUARD: Duration = Duration::from_secs(20);

fn options(timeout: Duration, throttle_retries: u32) -> CosmosOptions {
    CosmosOptions {
        timeout,
        throttle_retries,
        ..CosmosOptions::for_emulator()
    }
}

/// A rule injecting `error` (or only `delay`) into `operation`, at most `hit_limit` times.
fn rule(
    id: &str,
    operation: FaultOperationType,
    error: Option<FaultInjectionErrorType>,
    delay: Option<Duration>,
    hit_limit: Option<u32>,
) -> Arc<FaultInjectionRule> {
    let mut result = FaultInjectionResultBuilder::new();
    if let Some(error) = error {
        result = result.with_error(error);
    }
    if let Some(delay) = delay {
        result = result.with_delay(delay);
    }
    let condition = FaultInjectionConditionBuilder::new()
        .with_operation_type(operation)
        .build();
    let mut builder = FaultInjectionRuleBuilder::new(id, result.build()).with_condition(condition);
    if let Some(limit) = hit_limit {
        builder = builder.with_hit_limit(limit);
    }
    let rule = Arc::new(builder.build());
    rule.disable();
    rule
}

fn throttle(operation: FaultOperationType, hit_limit: Option<u32>) -> Arc<FaultInjectionRule> {
    rule(
        &format!("throttle-{operation}"),
        operation,
        Some(FaultInjectionErrorType::TooManyRequests),
        None,
        hit_limit,
    )
}

fn unavailable(operation: FaultOperationType, hit_limit: Option<u32>) -> Arc<FaultInjectionRule> {
    rule(
        &format!("unavailable-{operation}"),
        operation,
        Some(FaultInjectionErrorType::ServiceUnavailable),
        None,
        hit_limit,
    )
}

/// A store on a fresh emulator with `rules`, seeded with customer c-1 of tenant t1 before the
/// rules are switched on.
async fn store_with(options: CosmosOptions, rules: &[Arc<FaultInjectionRule>]) -> CosmosStore {
    let cosmos = shared::store::cosmos::in_memory(options, rules.to_vec())
        .await
        .unwrap();
    let store = cosmos.store;
    store
        .create_customer(&t1(), customer("c-1"), audit("c-1"))
        .await
        .unwrap();
    for rule in rules {
        rule.enable();
    }
    store
}

fn t1() -> TenantId {
    TenantId::new("t1").unwrap()
}

fn audit(target: &str) -> AuditEntry {
    AuditEntry::now(
        "t1",
        "actor-1",
        "customer.create",
        "customer",
        target,
        "corr",
    )
}

/// Runs `call`, failing the test if it takes longer than [`GUARD`]; the result and how long it took.
async fn guarded<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(GUARD, call)
        .await
        .unwrap_or_else(|_| panic!("the call did not return within {GUARD:?}"));
    (result, started.elapsed())
}

// --- 429: throttling ---------------------------------------------------------------------------

#[tokio::test]
async fn throttled_point_reads_within_the_retry_budget_are_retried_and_succeed() {
    let rule = throttle(FaultOperationType::ReadItem, Some(2));
    let store = store_with(
        options(Duration::from_secs(5), 3),
        std::slice::from_ref(&rule),
    )
    .await;
    let (read, _) = guarded(store.get_customer(&t1(), "c-1")).await;
    assert_eq!(read.unwrap().id, "c-1");
    assert_eq!(rule.hit_count(), 2, "both injected 429s were met");
    assert_eq!(
        store.throttled_requests(),
        2,
        "and counted for the job reports"
    );
}

#[tokio::test]
async fn throttled_batch_writes_within_the_retry_budget_are_retried_and_written_once() {
    let rule = throttle(FaultOperationType::BatchItem, Some(2));
    let store = store_with(
        options(Duration::from_secs(5), 3),
        std::slice::from_ref(&rule),
    )
    .await;
    let (created, _) = guarded(store.create_customer(&t1(), customer("c-2"), audit("c-2"))).await;
    assert_eq!(created.unwrap().id, "c-2");
    assert_eq!(rule.hit_count(), 2);
    assert_eq!(store.throttled_requests(), 2);
    rule.disable();
    assert_eq!(
        store.get_customer(&t1(), "c-2").await.unwrap().name,
        "Name c-2"
    );
    let customers = store
        .list_customers(&t1(), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(customers.items.len(), 2, "written once");
}

#[tokio::test]
async fn throttled_creates_and_queries_within_the_retry_budget_are_retried_and_succeed() {
    let create = throttle(FaultOperationType::CreateItem, Some(1));
    let query = throttle(FaultOperationType::QueryItem, Some(1));
    let store = store_with(
        options(Duration::from_secs(5), 2),
        &[create.clone(), query.clone()],
    )
    .await;
    let (appended, _) = guarded(store.append_audit(
        &t1(),
        AuditEntry::now("t1", "actor-1", "export", "customer", "c-1", "corr"),
    ))
    .await;
    appended.unwrap();
    let (listed, _) =
        guarded(store.list_audit(&t1(), Default::default(), PageRequest::first(10))).await;
    assert_eq!(listed.unwrap().items.len(), 2);
    assert_eq!((create.hit_count(), query.hit_count()), (1, 1));
    assert_eq!(store.throttled_requests(), 2);
}

#[tokio::test]
async fn persistent_throttling_surfaces_as_throttled_after_the_retry_budget() {
    let rule = throttle(FaultOperationType::ReadItem, None);
    let store = store_with(
        options(Duration::from_secs(5), 1),
        std::slice::from_ref(&rule),
    )
    .await;
    let (read, _) = guarded(store.get_customer(&t1(), "c-1")).await;
    let error = read.unwrap_err();
    match &error {
        StoreError::Throttled {
            backend, attempts, ..
        } => {
            assert_eq!(*backend, "cosmos");
            assert_eq!(*attempts, 2, "the first attempt and one retry: {error}");
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("cosmos is throttling requests"),
        "{error}"
    );
    assert_eq!(rule.hit_count(), 2, "no more attempts than the budget");
    assert_eq!(store.throttled_requests(), 2);
}

#[tokio::test]
async fn persistent_throttling_of_a_batch_write_surfaces_as_throttled_and_writes_nothing() {
    let rule = throttle(FaultOperationType::BatchItem, None);
    let store = store_with(
        options(Duration::from_secs(5), 1),
        std::slice::from_ref(&rule),
    )
    .await;
    let (created, _) = guarded(store.create_customer(&t1(), customer("c-2"), audit("c-2"))).await;
    assert!(
        matches!(
            created,
            Err(StoreError::Throttled {
                backend: "cosmos",
                ..
            })
        ),
        "{created:?}"
    );
    assert_eq!(rule.hit_count(), 2);
    assert!(store.throttled_requests() >= 2);
    rule.disable();
    assert!(matches!(
        store.get_customer(&t1(), "c-2").await,
        Err(StoreError::NotFound)
    ));
}

// --- 503: service unavailable --------------------------------------------------------------------

#[tokio::test]
async fn a_transient_503_on_a_read_is_retried_and_the_read_succeeds() {
    let rule = unavailable(FaultOperationType::ReadItem, Some(1));
    let store = store_with(
        options(Duration::from_secs(5), 2),
        std::slice::from_ref(&rule),
    )
    .await;
    let (read, _) = guarded(store.get_customer(&t1(), "c-1")).await;
    assert_eq!(read.unwrap().id, "c-1");
    assert_eq!(rule.hit_count(), 1);
    assert_eq!(store.throttled_requests(), 0, "a 503 is not throttling");
}

#[tokio::test]
async fn a_transient_503_on_a_query_is_retried_and_the_query_succeeds() {
    let rule = unavailable(FaultOperationType::QueryItem, Some(1));
    let store = store_with(
        options(Duration::from_secs(5), 2),
        std::slice::from_ref(&rule),
    )
    .await;
    let (listed, _) = guarded(store.list_customers(&t1(), PageRequest::first(10))).await;
    assert_eq!(listed.unwrap().items.len(), 1);
    assert_eq!(rule.hit_count(), 1);
}

#[tokio::test]
async fn a_transient_503_on_a_batch_write_is_retried_and_written_once() {
    let rule = unavailable(FaultOperationType::BatchItem, Some(1));
    let store = store_with(
        options(Duration::from_secs(5), 2),
        std::slice::from_ref(&rule),
    )
    .await;
    let (created, _) = guarded(store.create_customer(&t1(), customer("c-2"), audit("c-2"))).await;
    assert_eq!(created.unwrap().id, "c-2");
    assert_eq!(rule.hit_count(), 1);
    let customers = store
        .list_customers(&t1(), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(customers.items.len(), 2);
}

#[tokio::test]
async fn a_persistent_503_surfaces_as_unavailable_naming_cosmos() {
    let rule = unavailable(FaultOperationType::ReadItem, None);
    let store = store_with(
        options(Duration::from_secs(5), 2),
        std::slice::from_ref(&rule),
    )
    .await;
    let (read, took) = guarded(store.get_customer(&t1(), "c-1")).await;
    let error = read.unwrap_err();
    match &error {
        StoreError::Unavailable { backend, reason } => {
            assert_eq!(*backend, "cosmos");
            assert!(
                reason.contains("read"),
                "the reason names the call: {reason}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        error.to_string().starts_with("cosmos is unavailable"),
        "{error}"
    );
    assert!(rule.hit_count() >= 1);
    assert!(
        took < Duration::from_secs(6),
        "within the store's timeout: {took:?}"
    );
    rule.disable();
    assert_eq!(
        store.get_customer(&t1(), "c-1").await.unwrap().id,
        "c-1",
        "the store recovers when the service does"
    );
}

#[tokio::test]
async fn a_persistent_503_on_a_batch_write_surfaces_as_unavailable_and_writes_nothing() {
    let rule = unavailable(FaultOperationType::BatchItem, None);
    let store = store_with(
        options(Duration::from_secs(5), 2),
        std::slice::from_ref(&rule),
    )
    .await;
    let (created, _) = guarded(store.create_customer(&t1(), customer("c-2"), audit("c-2"))).await;
    assert!(
        matches!(
            created,
            Err(StoreError::Unavailable {
                backend: "cosmos",
                ..
            })
        ),
        "{created:?}"
    );
    rule.disable();
    assert!(matches!(
        store.get_customer(&t1(), "c-2").await,
        Err(StoreError::NotFound)
    ));
}

// --- timeouts ------------------------------------------------------------------------------------

#[tokio::test]
async fn a_read_the_service_never_answers_is_bounded_by_the_store_timeout() {
    let rule = rule(
        "slow",
        FaultOperationType::ReadItem,
        None,
        Some(Duration::from_secs(30)),
        None,
    );
    let timeout = Duration::from_millis(300);
    let store = store_with(options(timeout, 2), std::slice::from_ref(&rule)).await;
    let (read, took) = guarded(store.get_customer(&t1(), "c-1")).await;
    let error = read.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Unavailable {
                backend: "cosmos",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("cosmos is unavailable"),
        "{error}"
    );
    assert!(
        took < Duration::from_secs(2),
        "a 300 ms timeout ends the call well before the 30 s delay: {took:?}"
    );
    assert!(rule.hit_count() >= 1);
}

#[tokio::test]
async fn a_batch_write_the_service_never_answers_is_bounded_by_the_store_timeout() {
    let rule = rule(
        "slow",
        FaultOperationType::BatchItem,
        None,
        Some(Duration::from_secs(30)),
        None,
    );
    let store = store_with(
        options(Duration::from_millis(300), 2),
        std::slice::from_ref(&rule),
    )
    .await;
    let (created, took) =
        guarded(store.create_customer(&t1(), customer("c-2"), audit("c-2"))).await;
    assert!(
        matches!(
            created,
            Err(StoreError::Unavailable {
                backend: "cosmos",
                ..
            })
        ),
        "{created:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

// --- health ----------------------------------------------------------------------------------------

#[tokio::test]
async fn the_health_check_fails_clearly_while_the_service_is_unavailable() {
    let rule = unavailable(FaultOperationType::MetadataReadContainer, None);
    let store = store_with(
        options(Duration::from_secs(5), 2),
        std::slice::from_ref(&rule),
    )
    .await;
    let (ping, took) = guarded(store.ping()).await;
    let error = ping.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Unavailable {
                backend: "cosmos",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("cosmos is unavailable: ping"),
        "names the backend and the check: {error}"
    );
    assert!(rule.hit_count() >= 1, "the ping reached the service");
    assert!(took < Duration::from_secs(6), "{took:?}");
    rule.disable();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn the_health_check_fails_clearly_while_the_service_throttles() {
    let rule = throttle(FaultOperationType::MetadataReadContainer, None);
    let store = store_with(
        options(Duration::from_secs(5), 1),
        std::slice::from_ref(&rule),
    )
    .await;
    let (ping, _) = guarded(store.ping()).await;
    let error = ping.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Throttled {
                backend: "cosmos",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("cosmos is throttling requests"),
        "{error}"
    );
    rule.disable();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn the_health_check_is_bounded_by_the_store_timeout() {
    let rule = rule(
        "slow",
        FaultOperationType::MetadataReadContainer,
        None,
        Some(Duration::from_secs(30)),
        None,
    );
    let store = store_with(
        options(Duration::from_millis(300), 2),
        std::slice::from_ref(&rule),
    )
    .await;
    let (ping, took) = guarded(store.ping()).await;
    assert!(
        matches!(
            ping,
            Err(StoreError::Unavailable {
                backend: "cosmos",
                ..
            })
        ),
        "{ping:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

// --- lost answers: the service applied a write, the client never heard ---------------------------

/// A rule that lets the first `skip` calls of `operation` through untouched (first match wins,
/// so rules after it see only the later calls).
fn pass_first(operation: FaultOperationType, skip: u32) -> Arc<FaultInjectionRule> {
    rule(
        &format!("pass-{operation}"),
        operation,
        None,
        None,
        Some(skip),
    )
}

fn lose_answer(operation: FaultOperationType) -> Arc<FaultInjectionRule> {
    rule(
        &format!("lose-{operation}"),
        operation,
        Some(FaultInjectionErrorType::ResponseTimeoutAfterService),
        None,
        Some(1),
    )
}

/// Seeds product p-1 (stock 10) and returns the order to place.
async fn order_fixture(store: &CosmosStore) -> shared::store::NewOrder {
    use shared::store::ProductStore;
    let now = shared::domain::now();
    let product = shared::domain::product::Product {
        id: "p-1".into(),
        tenant_id: String::new(),
        name: "Product".into(),
        category: "kitchen".into(),
        description: None,
        price_cents: 250,
        currency: "EUR".into(),
        stock: 10,
        active: true,
        sku: None,
        erp_on_hand: None,
        reserved: 0,
        created_at: now,
        updated_at: now,
        etag: String::new(),
    };
    store
        .create_product(&t1(), product, audit("p-1"))
        .await
        .unwrap();
    shared::store::NewOrder {
        id: "o-1".into(),
        customer_id: "c-1".into(),
        input: shared::domain::order::OrderInput {
            customer_id: Some("c-1".into()),
            items: vec![shared::domain::order::OrderLineInput {
                product_id: "p-1".into(),
                quantity: 3,
            }],
            shipping_address: None,
        },
        actor_id: "actor-1".into(),
        idempotency: None,
    }
}

/// Stock and orders agree: the units missing from stock are those of the order, if it exists.
async fn assert_stock_matches_orders(store: &CosmosStore, outcome: &str) {
    use shared::store::{OrderStore, ProductStore};
    let stock = store.get_product(&t1(), "p-1").await.unwrap().stock;
    let order = store.get_order(&t1(), "o-1").await;
    let reserved = match &order {
        Ok(order) => order.items.iter().map(|item| item.quantity).sum::<i64>(),
        Err(StoreError::NotFound) => 0,
        Err(error) => panic!("reading the order failed: {error:?}"),
    };
    assert_eq!(
        stock + reserved,
        10,
        "after {outcome}: stock {stock}, order {:?}",
        order.map(|order| order.id)
    );
}

#[tokio::test]
async fn an_order_whose_write_answer_is_lost_keeps_stock_and_orders_consistent() {
    use shared::store::OrderStore;
    // The stock reservation (first batch) goes through; the order batch is applied by the
    // service but its answer is lost on the way back.
    let rules = [
        pass_first(FaultOperationType::BatchItem, 1),
        lose_answer(FaultOperationType::BatchItem),
    ];
    let store = store_with(options(Duration::from_secs(5), 2), &rules).await;
    for rule in &rules {
        rule.disable();
    }
    let order = order_fixture(&store).await;
    for rule in &rules {
        rule.enable();
    }
    let (created, _) = guarded(store.create_order(
        &t1(),
        order,
        AuditEntry::now("t1", "actor-1", "order.create", "order", "o-1", "corr"),
    ))
    .await;
    assert_eq!(rules[1].hit_count(), 1, "the order batch's answer was lost");
    for rule in &rules {
        rule.disable();
    }
    assert_stock_matches_orders(&store, &format!("{created:?}")).await;
}

#[tokio::test]
async fn a_stock_reservation_whose_answer_is_lost_leaves_no_stock_reserved_without_an_order() {
    use shared::store::OrderStore;
    let rules = [lose_answer(FaultOperationType::BatchItem)];
    let store = store_with(options(Duration::from_secs(5), 2), &rules).await;
    rules[0].disable();
    let order = order_fixture(&store).await;
    rules[0].enable();
    let (created, _) = guarded(store.create_order(
        &t1(),
        order,
        AuditEntry::now("t1", "actor-1", "order.create", "order", "o-1", "corr"),
    ))
    .await;
    assert_eq!(rules[0].hit_count(), 1, "the stock batch's answer was lost");
    rules[0].disable();
    assert_stock_matches_orders(&store, &format!("{created:?}")).await;
}

/// Places order o-1 (3 units of p-1) with no faults; stock is then 7.
async fn placed_order(store: &CosmosStore) {
    use shared::store::OrderStore;
    let order = order_fixture(store).await;
    store
        .create_order(
            &t1(),
            order,
            AuditEntry::now("t1", "actor-1", "order.create", "order", "o-1", "corr"),
        )
        .await
        .unwrap();
}

/// Stock and the order's status agree: a cancelled order holds no stock, any other holds its units.
async fn assert_stock_matches_status(store: &CosmosStore, outcome: &str) {
    use shared::store::{OrderStore, ProductStore};
    let stock = store.get_product(&t1(), "p-1").await.unwrap().stock;
    let order = store.get_order(&t1(), "o-1").await.unwrap();
    let held = if order.status == shared::domain::order::OrderStatus::Cancelled {
        0
    } else {
        3
    };
    assert_eq!(
        stock + held,
        10,
        "after {outcome}: stock {stock}, order {:?}",
        order.status
    );
}

async fn cancel(store: &CosmosStore) -> Result<shared::domain::order::Order, StoreError> {
    use shared::store::OrderStore;
    let change = shared::domain::order::StatusInput {
        status: shared::domain::order::OrderStatus::Cancelled,
        reason: None,
    };
    guarded(store.change_order_status(
        &t1(),
        "o-1",
        change,
        "actor-1",
        IfMatch::Any,
        AuditEntry::now("t1", "actor-1", "order.status", "order", "o-1", "corr"),
    ))
    .await
    .0
}

#[tokio::test]
async fn a_cancellation_whose_answer_is_lost_releases_the_stock_once() {
    let rules = [lose_answer(FaultOperationType::BatchItem)];
    let store = store_with(options(Duration::from_secs(5), 2), &rules).await;
    rules[0].disable();
    placed_order(&store).await;
    rules[0].enable();
    let cancelled = cancel(&store).await;
    assert_eq!(
        rules[0].hit_count(),
        1,
        "the cancellation batch's answer was lost"
    );
    rules[0].disable();
    assert_stock_matches_status(&store, &format!("{cancelled:?}")).await;
}

#[tokio::test]
async fn a_stock_release_whose_answer_is_lost_releases_the_stock_once() {
    let rules = [
        pass_first(FaultOperationType::BatchItem, 1),
        lose_answer(FaultOperationType::BatchItem),
    ];
    let store = store_with(options(Duration::from_secs(5), 2), &rules).await;
    for rule in &rules {
        rule.disable();
    }
    placed_order(&store).await;
    for rule in &rules {
        rule.enable();
    }
    let cancelled = cancel(&store).await;
    assert_eq!(
        rules[1].hit_count(),
        1,
        "the stock release batch's answer was lost"
    );
    for rule in &rules {
        rule.disable();
    }
    assert_stock_matches_status(&store, &format!("{cancelled:?}")).await;
}

#[tokio::test]
async fn an_erasure_batch_whose_answer_is_lost_counts_its_records_once() {
    use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
    use shared::domain::masking::{Masker, PseudonymKey};
    use shared::domain::notification::{Notification, Recipient};
    use shared::store::{ErasureStart, ErasureStep, ErasureStore, NotificationStore};
    let rules = [lose_answer(FaultOperationType::BatchItem)];
    let store = store_with(options(Duration::from_secs(5), 2), &rules).await;
    rules[0].disable();
    for index in 0..3 {
        let notification = Notification {
            id: format!("n-{index}"),
            tenant_id: String::new(),
            recipient: Recipient::Customer("c-1".into()),
            category: "message".into(),
            title: "t".into(),
            message: "m".into(),
            order_id: None,
            read_at: None,
            created_at: shared::domain::now(),
        };
        store
            .create_notification(&t1(), notification, audit("n"))
            .await
            .unwrap();
    }
    let now = shared::domain::now();
    let request = ErasureRecord {
        id: "r-1".into(),
        tenant_id: "t1".into(),
        customer_id: "c-1".into(),
        requested_by: "operator:x".into(),
        status: ErasureStatus::Accepted,
        requested_at: now,
        updated_at: now,
        queued_at: None,
        report: None,
    };
    let ErasureStart::Run { mut progress, .. } = store.start_erasure(&t1(), request).await.unwrap()
    else {
        panic!("expected the erasure to run")
    };
    let masker = Masker::new(
        PseudonymKey::new("a-test-key-that-is-long-enough-0001").unwrap(),
        "t1",
        "c-1",
        &[],
    );
    for step in ErasureStep::ALL {
        if step == ErasureStep::Notifications {
            rules[0].enable();
        }
        while !progress.is_done(step) {
            progress = guarded(store.erase_batch(&t1(), "r-1", step, &masker, 2))
                .await
                .0
                .unwrap();
        }
        rules[0].disable();
    }
    assert_eq!(
        rules[0].hit_count(),
        1,
        "a notifications batch's answer was lost"
    );
    assert_eq!(progress.counts()["notifications"], 3);
}
