//! The payment store's conformance suite, on both adapters (SQLite, and Cosmos DB on the SDK's
//! in-memory emulator): idempotency keys (new, in progress, resumed, replayed, reused), one
//! payment holding an order even under concurrency, updates that only move forward and
//! announce each event once through the outbox, webhooks applied once, refunds within what was
//! captured even under concurrency, tenant isolation, the listing, and reconciliation's queries;
//! and the GDPR erasure of a customer's payments (payer removed, financial facts kept, the rule
//! version recorded, each payment counted once across a resumed erasure).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use shared::domain::audit::AuditEntry;
use shared::domain::customer::{Customer, CustomerStatus, NotificationPreferences};
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::masking::{Masker, PseudonymKey, RULES_VERSION};
use shared::domain::messages::{PaymentEvent, PaymentEventType};
use shared::domain::payment::{
    GatewayRefs, Payer, Payment, PaymentStatus, PaymentUpdate, Refund, RefundStatus, RefundUpdate,
    UpdateSource,
};
use shared::domain::rejection::Rejection;
use shared::domain::tenant::TenantId;
use shared::outbox::PAYMENT_EVENTS_TOPIC;
use shared::store::cosmos::CosmosOptions;
use shared::store::sqlite::Db;
use shared::store::{
    AuditFilter, ErasureProgress, ErasureStart, ErasureStep, PageRequest, PaymentFilter,
    PaymentStore, Started, Store, StoreError,
};

/// Both ports the suite needs, as one object.
trait Payments: Store + PaymentStore {}
impl<T: Store + PaymentStore> Payments for T {}

async fn sqlite() -> (Arc<dyn Payments>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("app.db")).unwrap();
    (Arc::new(db), dir)
}

async fn cosmos() -> (Arc<dyn Payments>, tempfile::TempDir) {
    let cosmos = shared::store::cosmos::in_memory(CosmosOptions::for_emulator(), vec![])
        .await
        .unwrap();
    (Arc::new(cosmos.store), tempfile::tempdir().unwrap())
}

fn t1() -> TenantId {
    TenantId::new("t1").unwrap()
}

fn audit(tenant: &str, target: &str) -> AuditEntry {
    AuditEntry::now(
        tenant,
        "actor-1",
        "payment.test",
        "payment",
        target,
        "corr-1",
    )
}

fn now() -> DateTime<Utc> {
    shared::domain::now()
}

/// A new pending payment of 1000 cents, held for a minute, made `age` ago.
fn payment(id: &str, order: &str, customer: &str, key: &str, age: Duration) -> Payment {
    let at = now() - age;
    Payment {
        id: id.into(),
        tenant_id: String::new(),
        order_id: order.into(),
        customer_id: customer.into(),
        provider: "paypal".into(),
        source_id: "vault-1".into(),
        amount_cents: 1_000,
        currency: "EUR".into(),
        status: PaymentStatus::Pending,
        captured_cents: 0,
        captured_at: None,
        refunded_cents: 0,
        gateway: GatewayRefs::default(),
        failure_code: None,
        payer: None,
        erasure: None,
        refunds: Vec::new(),
        idempotency_key: key.into(),
        request_hash: format!("hash-{key}"),
        in_flight_until: Some(now() + Duration::minutes(1)),
        created_at: at,
        updated_at: at,
        etag: String::new(),
    }
}

fn refund(id: &str, amount_cents: i64, key: &str, age: Duration) -> Refund {
    let at = now() - age;
    Refund {
        id: id.into(),
        amount_cents,
        status: RefundStatus::Pending,
        gateway_refund_id: None,
        idempotency_key: key.into(),
        request_hash: format!("hash-{key}"),
        reason: None,
        created_at: at,
        updated_at: at,
    }
}

/// The gateway says `status`; the request that held the payment is done.
fn said(status: PaymentStatus) -> PaymentUpdate {
    PaymentUpdate {
        release_in_flight: true,
        ..PaymentUpdate::status(status, UpdateSource::Api)
    }
}

fn released() -> PaymentUpdate {
    PaymentUpdate {
        status: None,
        ..said(PaymentStatus::Pending)
    }
}

fn webhook(status: PaymentStatus, event_id: &str) -> PaymentUpdate {
    PaymentUpdate::status(
        status,
        UpdateSource::Webhook {
            event_id: event_id.into(),
        },
    )
}

async fn begin(store: &dyn Payments, payment: Payment) -> Result<Started, StoreError> {
    let target = payment.id.clone();
    store
        .begin_payment(&t1(), payment, audit("t1", &target))
        .await
}

async fn new(store: &dyn Payments, payment: Payment) -> Payment {
    match begin(store, payment).await.unwrap() {
        Started::New(payment) => payment,
        other => panic!("not new: {other:?}"),
    }
}

async fn update(store: &dyn Payments, id: &str, update: PaymentUpdate) -> Payment {
    store
        .update_payment(&t1(), id, &update, Some("corr-1"), audit("t1", id))
        .await
        .unwrap()
        .0
}

/// The payment events in the tenant's outbox, as (payment id, type, amount).
async fn payment_events(store: &dyn Payments) -> Vec<(String, PaymentEventType, i64)> {
    store
        .pending_outbox(&t1())
        .await
        .unwrap()
        .iter()
        .map(|document| document.message().unwrap())
        .filter(|message| message.destination == PAYMENT_EVENTS_TOPIC)
        .map(|message| {
            let event: PaymentEvent = serde_json::from_str(&message.body).unwrap();
            assert_eq!(event.event_id, message.message_id);
            (event.payment_id, event.event_type, event.amount_cents)
        })
        .collect()
}

fn rejected(outcome: Result<Started, StoreError>) -> Rejection {
    match outcome {
        Err(StoreError::Rejected(rejection)) => rejection,
        other => panic!("not rejected: {other:?}"),
    }
}

async fn a_key_starts_resumes_replays_or_is_in_progress(store: Arc<dyn Payments>) {
    let store = store.as_ref();
    let first = new(store, payment("p-1", "o-1", "c-1", "k-1", Duration::zero())).await;
    assert!(!first.etag.is_empty());
    assert_eq!(store.get_payment(&t1(), "p-1").await.unwrap(), first);
    let retry = || payment("p-retry", "o-1", "c-1", "k-1", Duration::zero());
    assert_eq!(
        begin(store, retry()).await.unwrap(),
        Started::InProgress(first.clone())
    );
    let mut other_body = retry();
    other_body.request_hash = "another request".into();
    assert_eq!(
        rejected(begin(store, other_body).await),
        Rejection::IdempotencyKeyReused
    );
    update(store, "p-1", released()).await;
    let again = retry();
    let Started::Resumed(resumed) = begin(store, again.clone()).await.unwrap() else {
        panic!("not resumed")
    };
    assert_eq!(resumed.id, "p-1");
    assert_eq!(resumed.in_flight_until, again.in_flight_until);
    assert_eq!(store.get_payment(&t1(), "p-1").await.unwrap(), resumed);
    update(store, "p-1", said(PaymentStatus::Captured)).await;
    let Started::Replayed(replayed) = begin(store, retry()).await.unwrap() else {
        panic!("not replayed")
    };
    assert_eq!(replayed.status, PaymentStatus::Captured);
    assert!(matches!(
        store.get_payment(&t1(), "p-retry").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        audit_entries(store, "p-1").await,
        3,
        "the payment's and its two updates': the retries add none"
    );
}

/// How many audit entries of the tenant name `target`.
async fn audit_entries(store: &dyn Payments, target: &str) -> usize {
    let filter = AuditFilter {
        target_id: Some(target.into()),
        ..AuditFilter::default()
    };
    store
        .list_audit(&t1(), filter, PageRequest::first(50))
        .await
        .unwrap()
        .items
        .len()
}

async fn a_held_payment_is_not_held_twice(store: Arc<dyn Payments>) {
    let store = store.as_ref();
    new(store, payment("p-1", "o-1", "c-1", "k-1", Duration::zero())).await;
    let until = now() + Duration::minutes(5);
    assert_eq!(store.hold_payment(&t1(), "p-1", until).await.unwrap(), None);
    update(store, "p-1", released()).await;
    let held = store.hold_payment(&t1(), "p-1", until).await.unwrap();
    assert_eq!(held.map(|p| p.in_flight_until), Some(Some(until)));
    assert_eq!(store.hold_payment(&t1(), "p-1", until).await.unwrap(), None);
}

async fn an_order_has_one_payment_until_it_fails(store: Arc<dyn Payments>) {
    let store = store.as_ref();
    new(store, payment("p-1", "o-1", "c-1", "k-1", Duration::zero())).await;
    let second = || payment("p-2", "o-1", "c-1", "k-2", Duration::zero());
    assert_eq!(
        rejected(begin(store, second()).await),
        Rejection::OrderAlreadyPaid("p-1".into())
    );
    new(
        store,
        payment("p-other", "o-2", "c-1", "k-3", Duration::zero()),
    )
    .await;
    update(store, "p-1", said(PaymentStatus::Failed)).await;
    new(store, second()).await;
    assert_eq!(
        rejected(begin(store, payment("p-3", "o-1", "c-1", "k-4", Duration::zero())).await),
        Rejection::OrderAlreadyPaid("p-2".into())
    );
}

async fn concurrent_payments_of_one_order_start_once(store: Arc<dyn Payments>) {
    let attempts = (0..10).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let key = format!("k-{n}");
            begin(
                store.as_ref(),
                payment(&format!("p-{n}"), "o-1", "c-1", &key, Duration::zero()),
            )
            .await
        })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let started = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(Ok(Started::New(_)))))
        .count();
    assert_eq!(started, 1, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|outcome| matches!(outcome, Ok(Ok(Started::New(_))) | Ok(Err(_)))));
    let listed = store
        .list_payments(&t1(), PaymentFilter::default(), PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
}

async fn updates_move_forward_and_announce_each_event_once(store: Arc<dyn Payments>) {
    let store = store.as_ref();
    new(store, payment("p-1", "o-1", "c-1", "k-1", Duration::zero())).await;
    let before = store.get_payment(&t1(), "p-1").await.unwrap();
    let authorized = update(store, "p-1", said(PaymentStatus::Authorized)).await;
    assert_ne!(authorized.etag, before.etag, "a change gives a new ETag");
    update(store, "p-1", said(PaymentStatus::Captured)).await;
    let (late, applied) = store
        .update_payment(
            &t1(),
            "p-1",
            &webhook(PaymentStatus::Authorized, "WH-late"),
            None,
            audit("t1", "p-1"),
        )
        .await
        .unwrap();
    assert!(!applied.changed);
    assert_eq!(late.status, PaymentStatus::Captured);
    assert_eq!(
        payment_events(store).await,
        [
            ("p-1".to_owned(), PaymentEventType::Authorized, 1_000),
            ("p-1".to_owned(), PaymentEventType::Captured, 1_000)
        ]
    );
}

async fn a_webhook_event_applies_once(store: Arc<dyn Payments>) {
    let store = store.as_ref();
    new(store, payment("p-1", "o-1", "c-1", "k-1", Duration::zero())).await;
    let (_, applied) = store
        .update_payment(
            &t1(),
            "p-1",
            &webhook(PaymentStatus::Authorized, "WH-1"),
            None,
            audit("t1", "p-1"),
        )
        .await
        .unwrap();
    assert_eq!(applied.events, [(PaymentEventType::Authorized, 1_000)]);
    // The same event id again (even saying something else) changes nothing.
    let (again, applied) = store
        .update_payment(
            &t1(),
            "p-1",
            &webhook(PaymentStatus::Captured, "WH-1"),
            None,
            audit("t1", "p-1"),
        )
        .await
        .unwrap();
    assert!(!applied.changed && applied.events.is_empty());
    assert_eq!(again.status, PaymentStatus::Authorized);
    update(store, "p-1", webhook(PaymentStatus::Captured, "WH-2")).await;
    assert_eq!(payment_events(store).await.len(), 2);
}

async fn captured(store: &dyn Payments, id: &str, order: &str) -> Payment {
    new(
        store,
        payment(id, order, "c-1", &format!("k-{id}"), Duration::zero()),
    )
    .await;
    update(store, id, said(PaymentStatus::Captured)).await
}

async fn start_refund(
    store: &dyn Payments,
    id: &str,
    refund: Refund,
) -> Result<Started, StoreError> {
    let until = now() + Duration::minutes(1);
    store
        .begin_refund(&t1(), id, refund, until, audit("t1", id))
        .await
}

async fn refunds_stay_within_what_was_captured(store: Arc<dyn Payments>) {
    let store = store.as_ref();
    captured(store, "p-1", "o-1").await;
    assert_eq!(
        rejected(start_refund(store, "p-1", refund("r-0", 1_200, "rk-0", Duration::zero())).await),
        Rejection::RefundExceedsCaptured {
            requested: 1_200,
            refundable: 1_000
        }
    );
    new(store, payment("p-2", "o-2", "c-1", "k-2", Duration::zero())).await;
    assert_eq!(
        rejected(start_refund(store, "p-2", refund("r-x", 100, "rk-x", Duration::zero())).await),
        Rejection::PaymentNotRefundable("pending")
    );
    let first = || refund("r-1", 300, "rk-1", Duration::zero());
    assert!(
        matches!(start_refund(store, "p-1", first()).await.unwrap(), Started::New(p) if p.refundable_cents() == 700)
    );
    assert!(matches!(
        start_refund(store, "p-1", first()).await.unwrap(),
        Started::InProgress(_)
    ));
    let mut other = first();
    other.request_hash = "another".into();
    assert_eq!(
        rejected(start_refund(store, "p-1", other).await),
        Rejection::IdempotencyKeyReused
    );
    let completed = PaymentUpdate {
        status: None,
        refund: Some(RefundUpdate {
            refund_id: Some("r-1".into()),
            gateway_refund_id: Some("g-r-1".into()),
            status: RefundStatus::Completed,
            amount_cents: None,
        }),
        ..said(PaymentStatus::Captured)
    };
    let refunded = update(store, "p-1", completed).await;
    assert_eq!(refunded.status, PaymentStatus::PartiallyRefunded);
    let Started::Replayed(replayed) = start_refund(store, "p-1", first()).await.unwrap() else {
        panic!("not replayed")
    };
    assert_eq!(replayed.refunded_cents, 300);
    assert!(payment_events(store).await.contains(&(
        "p-1".to_owned(),
        PaymentEventType::Refunded,
        300
    )));
}

async fn concurrent_refunds_never_exceed_the_capture(store: Arc<dyn Payments>) {
    captured(store.as_ref(), "p-1", "o-1").await;
    let attempts = (0..5).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let key = format!("rk-{n}");
            let request = refund(&format!("r-{n}"), 400, &key, Duration::zero());
            start_refund(store.as_ref(), "p-1", request).await
        })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let started = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(Ok(Started::New(_)))))
        .count();
    assert!((1..=2).contains(&started), "{outcomes:?}");
    let stored = store.get_payment(&t1(), "p-1").await.unwrap();
    let claimed: i64 = stored.refunds.iter().map(|r| r.amount_cents).sum();
    assert_eq!(stored.refunds.len(), started);
    assert!(claimed <= stored.captured_cents);
}

async fn tenants_see_only_their_own_payments(store: Arc<dyn Payments>) {
    let store = store.as_ref();
    captured(store, "p-1", "o-1").await;
    let t2 = TenantId::new("t2").unwrap();
    assert!(matches!(
        store.get_payment(&t2, "p-1").await,
        Err(StoreError::NotFound)
    ));
    let listed = store
        .list_payments(&t2, PaymentFilter::default(), PageRequest::first(10))
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    assert!(matches!(
        store
            .update_payment(
                &t2,
                "p-1",
                &said(PaymentStatus::Failed),
                None,
                audit("t2", "p-1")
            )
            .await,
        Err(StoreError::NotFound)
    ));
    let until = now() + Duration::minutes(1);
    assert!(matches!(
        store
            .begin_refund(
                &t2,
                "p-1",
                refund("r", 1, "rk", Duration::zero()),
                until,
                audit("t2", "p-1")
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.hold_payment(&t2, "p-1", until).await,
        Err(StoreError::NotFound)
    ));
    // The same key in another tenant is another payment.
    let mut theirs = payment("p-1", "o-1", "c-1", "k-p-1", Duration::zero());
    theirs.request_hash = "theirs".into();
    assert!(matches!(
        store
            .begin_payment(&t2, theirs, audit("t2", "p-1"))
            .await
            .unwrap(),
        Started::New(_)
    ));
}

async fn ids(store: &dyn Payments, filter: PaymentFilter) -> Vec<String> {
    store
        .list_payments(&t1(), filter, PageRequest::first(50))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.id)
        .collect()
}

async fn the_listing_filters_and_pages_newest_first(store: Arc<dyn Payments>) {
    let store = store.as_ref();
    for n in 1..=5 {
        let customer = if n <= 3 { "c-1" } else { "c-2" };
        let age = Duration::seconds(10 - n);
        let id = format!("p-{n}");
        new(
            store,
            payment(&id, &format!("o-{n}"), customer, &format!("k-{n}"), age),
        )
        .await;
    }
    update(store, "p-2", said(PaymentStatus::Captured)).await;
    assert_eq!(
        ids(store, PaymentFilter::default()).await,
        ["p-5", "p-4", "p-3", "p-2", "p-1"]
    );
    let customer = PaymentFilter {
        customer_id: Some("c-1".into()),
        ..PaymentFilter::default()
    };
    assert_eq!(ids(store, customer.clone()).await, ["p-3", "p-2", "p-1"]);
    let order = PaymentFilter {
        order_id: Some("o-4".into()),
        ..PaymentFilter::default()
    };
    assert_eq!(ids(store, order).await, ["p-4"]);
    let status = PaymentFilter {
        status: Some(PaymentStatus::Captured),
        ..PaymentFilter::default()
    };
    assert_eq!(ids(store, status).await, ["p-2"]);
    let mut pages = Vec::new();
    let mut continuation = None;
    loop {
        let page = store
            .list_payments(
                &t1(),
                PaymentFilter::default(),
                PageRequest::new(2, continuation),
            )
            .await
            .unwrap();
        pages.push(page.items.iter().map(|p| p.id.clone()).collect::<Vec<_>>());
        continuation = page.continuation;
        if continuation.is_none() {
            break;
        }
    }
    assert_eq!(pages, [vec!["p-5", "p-4"], vec!["p-3", "p-2"], vec!["p-1"]]);
    let first = store
        .list_payments(&t1(), PaymentFilter::default(), PageRequest::first(2))
        .await
        .unwrap();
    assert!(matches!(
        store
            .list_payments(&t1(), customer, PageRequest::new(2, first.continuation))
            .await,
        Err(StoreError::InvalidContinuation(_))
    ));
}

async fn reconciliation_finds_what_is_unsettled(store: Arc<dyn Payments>) {
    let s = store.as_ref();
    let minutes = Duration::minutes;
    new(s, payment("p-stale", "o-1", "c-1", "k-1", minutes(10))).await;
    new(s, payment("p-fresh", "o-2", "c-1", "k-2", Duration::zero())).await;
    let mut unknown = payment("p-unknown", "o-3", "c-1", "k-3", minutes(9));
    unknown.status = PaymentStatus::Unknown;
    new(s, unknown).await;
    let mut settled = payment("p-settled", "o-4", "c-2", "k-4", minutes(20));
    settled.status = PaymentStatus::Captured;
    settled.captured_cents = 1_000;
    settled.in_flight_until = None;
    new(s, settled.clone()).await;
    let mut refunding = payment("p-refunding", "o-5", "c-2", "k-5", minutes(20));
    refunding.status = PaymentStatus::Captured;
    refunding.captured_cents = 1_000;
    refunding.in_flight_until = None;
    new(s, refunding).await;
    start_refund(s, "p-refunding", refund("r-1", 100, "rk-1", minutes(8)))
        .await
        .unwrap();
    let mut failed = payment("p-failed", "o-6", "c-1", "k-6", minutes(30));
    failed.status = PaymentStatus::Failed;
    new(s, failed).await;
    let t2 = TenantId::new("t2").unwrap();
    let theirs = payment("p-t2", "o-1", "c-1", "k-1", minutes(7));
    s.begin_payment(&t2, theirs, audit("t2", "p-t2"))
        .await
        .unwrap();
    let unsettled: Vec<String> = s
        .unsettled_payments(now() - minutes(1), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(unsettled, ["p-stale", "p-unknown", "p-refunding", "p-t2"]);
    let first_two = s.unsettled_payments(now() - minutes(1), 2).await.unwrap();
    assert_eq!(first_two.len(), 2);
    let mut between: Vec<String> = s
        .payments_updated_between(now() - minutes(25), now() - minutes(5), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    between.sort();
    assert_eq!(between, ["p-settled", "p-stale", "p-t2", "p-unknown"]);
}

fn customer(id: &str) -> Customer {
    let at = now();
    Customer {
        id: id.into(),
        tenant_id: "t1".into(),
        name: format!("Name of {id}"),
        email: format!("{id}@example.org"),
        phone: None,
        address: None,
        preferences: NotificationPreferences::default(),
        status: CustomerStatus::Active,
        created_at: at,
        updated_at: at,
        last_activity_at: at,
        etag: String::new(),
    }
}

fn erasure_request(customer: &str) -> ErasureRecord {
    ErasureRecord {
        id: format!("r-{customer}"),
        tenant_id: "t1".into(),
        customer_id: customer.into(),
        requested_by: "actor-1".into(),
        status: ErasureStatus::Accepted,
        requested_at: now(),
        updated_at: now(),
        queued_at: None,
        report: None,
    }
}

fn masker(customer: &str) -> Masker {
    let key = PseudonymKey::new("a-test-key-that-is-long-enough-0001").unwrap();
    Masker::new(key, "t1", customer, &[])
}

/// What PayPal says of a captured payment: its ids and the payer.
fn captured_by_paypal(name: &str, email: &str) -> PaymentUpdate {
    PaymentUpdate {
        gateway: GatewayRefs {
            order_id: Some("PP-ORDER".into()),
            authorization_id: Some("PP-AUTH".into()),
            capture_id: Some("PP-CAPTURE".into()),
        },
        payer: Some(Payer {
            name: Some(name.into()),
            email: Some(email.into()),
        }),
        ..said(PaymentStatus::Captured)
    }
}

/// c-1 with a captured payment (payer, a completed refund with a reason) and a failed one;
/// c-2 with a captured payment.
async fn payments_to_erase(store: &dyn Payments) {
    for id in ["c-1", "c-2"] {
        store
            .create_customer(&t1(), customer(id), audit("t1", id))
            .await
            .unwrap();
    }
    new(store, payment("p-1", "o-1", "c-1", "k-1", Duration::zero())).await;
    update(
        store,
        "p-1",
        captured_by_paypal("Ada Lovelace", "ada@example.org"),
    )
    .await;
    let mut partial = refund("r-1", 400, "rk-1", Duration::zero());
    partial.reason = Some("Ada called from +442079460001".into());
    start_refund(store, "p-1", partial).await.unwrap();
    let completed = PaymentUpdate {
        status: None,
        refund: Some(RefundUpdate {
            refund_id: Some("r-1".into()),
            gateway_refund_id: Some("PP-REFUND".into()),
            status: RefundStatus::Completed,
            amount_cents: None,
        }),
        ..said(PaymentStatus::Captured)
    };
    update(store, "p-1", completed).await;
    new(store, payment("p-2", "o-2", "c-1", "k-2", Duration::zero())).await;
    update(store, "p-2", said(PaymentStatus::Failed)).await;
    new(store, payment("p-9", "o-9", "c-2", "k-9", Duration::zero())).await;
    update(
        store,
        "p-9",
        captured_by_paypal("Grace Hopper", "grace@example.org"),
    )
    .await;
}

async fn start_erasure(store: &dyn Payments, customer: &str) -> ErasureProgress {
    match store
        .start_erasure(&t1(), erasure_request(customer))
        .await
        .unwrap()
    {
        ErasureStart::Run { progress, .. } => progress,
        other => panic!("the erasure does not run: {other:?}"),
    }
}

/// Runs the `payments` step in batches of `size` until it is done.
async fn erase_payments(
    store: &dyn Payments,
    customer: &str,
    size: usize,
    mut progress: ErasureProgress,
) -> ErasureProgress {
    let masker = masker(customer);
    let request = format!("r-{customer}");
    for _ in 0..20 {
        if progress.is_done(ErasureStep::Payments) {
            return progress;
        }
        progress = store
            .erase_batch(&t1(), &request, ErasureStep::Payments, &masker, size)
            .await
            .unwrap();
    }
    panic!("the payments step does not end")
}

async fn an_erasure_strips_the_payer_and_keeps_the_money(store: Arc<dyn Payments>) {
    let store = store.as_ref();
    payments_to_erase(store).await;
    let before = store.get_payment(&t1(), "p-1").await.unwrap();
    let untouched = store.get_payment(&t1(), "p-9").await.unwrap();
    let progress = start_erasure(store, "c-1").await;
    let progress = erase_payments(store, "c-1", 100, progress).await;
    assert_eq!(progress.counts()["payments"], 2, "both of c-1's payments");

    let erased = store.get_payment(&t1(), "p-1").await.unwrap();
    assert_eq!(erased.payer, None, "the payer is gone");
    let marker = erased.erasure.as_ref().expect("marked erased");
    assert_eq!(marker.rules_version, RULES_VERSION);
    assert!(
        erased.source_id.starts_with("psn-") && erased.source_id != before.source_id,
        "{}",
        erased.source_id
    );
    assert_eq!(
        erased.refunds[0].reason, None,
        "refund reasons are free text"
    );
    assert_eq!(
        (
            erased.id.as_str(),
            erased.order_id.as_str(),
            erased.amount_cents,
            erased.currency.as_str(),
            erased.status,
            erased.captured_cents,
            erased.refunded_cents,
            &erased.gateway,
            erased.created_at,
            erased.updated_at,
        ),
        (
            "p-1",
            "o-1",
            1_000,
            "EUR",
            PaymentStatus::PartiallyRefunded,
            1_000,
            400,
            &before.gateway,
            before.created_at,
            before.updated_at,
        ),
        "the financial facts stay"
    );
    assert_eq!(
        (
            erased.refunds[0].amount_cents,
            erased.refunds[0].status,
            erased.refunds[0].gateway_refund_id.as_deref()
        ),
        (400, RefundStatus::Completed, Some("PP-REFUND"))
    );
    let failed = store.get_payment(&t1(), "p-2").await.unwrap();
    assert!(failed.erasure.is_some() && failed.status == PaymentStatus::Failed);
    assert_eq!(
        store.get_payment(&t1(), "p-9").await.unwrap(),
        untouched,
        "another customer's payment is untouched"
    );
    // A late webhook carrying the payer does not bring them back.
    let late = PaymentUpdate {
        payer: Some(Payer {
            name: Some("Ada Lovelace".into()),
            email: None,
        }),
        ..webhook(PaymentStatus::Captured, "WH-late")
    };
    let after = update(store, "p-1", late).await;
    assert_eq!(after.payer, None);
    // The step is done: asking again masks nothing more.
    let again = store
        .erase_batch(&t1(), "r-c-1", ErasureStep::Payments, &masker("c-1"), 100)
        .await
        .unwrap();
    assert_eq!(again.counts()["payments"], 2);
}

async fn a_resumed_erasure_masks_each_payment_once(store: Arc<dyn Payments>) {
    let store = store.as_ref();
    payments_to_erase(store).await;
    let progress = start_erasure(store, "c-1").await;
    // A first delivery masks one payment, then dies.
    let first = store
        .erase_batch(&t1(), "r-c-1", ErasureStep::Payments, &masker("c-1"), 1)
        .await
        .unwrap();
    assert_eq!(first.counts()["payments"], 1);
    assert!(!first.is_done(ErasureStep::Payments));
    assert!(progress.steps.is_empty());
    let masked_first = store.get_payment(&t1(), "p-1").await.unwrap();
    // The redelivery resumes from the committed batch.
    let resumed = start_erasure(store, "c-1").await;
    assert_eq!(
        (resumed.attempts, resumed.counts()["payments"]),
        (2, 1),
        "the committed batch is remembered"
    );
    let finished = erase_payments(store, "c-1", 1, resumed).await;
    assert_eq!(
        finished.counts()["payments"],
        2,
        "each payment counted once"
    );
    for id in ["p-1", "p-2"] {
        let payment = store.get_payment(&t1(), id).await.unwrap();
        assert!(payment.erasure.is_some() && payment.payer.is_none(), "{id}");
    }
    let p1 = store.get_payment(&t1(), "p-1").await.unwrap();
    assert_eq!(
        (p1.source_id, p1.erasure),
        (masked_first.source_id, masked_first.erasure),
        "a masked payment is not masked twice (its pseudonym is not hashed again)"
    );
}

macro_rules! adapter {
    ($adapter:ident: $($behaviour:ident),* $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    let (store, _keep) = super::$adapter().await;
                    super::$behaviour(store).await;
                }
            )*
        }
    };
}

macro_rules! every_behaviour {
    ($adapter:ident) => {
        adapter!($adapter:
            a_key_starts_resumes_replays_or_is_in_progress,
            a_held_payment_is_not_held_twice,
            an_order_has_one_payment_until_it_fails,
            concurrent_payments_of_one_order_start_once,
            updates_move_forward_and_announce_each_event_once,
            a_webhook_event_applies_once,
            refunds_stay_within_what_was_captured,
            concurrent_refunds_never_exceed_the_capture,
            tenants_see_only_their_own_payments,
            the_listing_filters_and_pages_newest_first,
            reconciliation_finds_what_is_unsettled,
            an_erasure_strips_the_payer_and_keeps_the_money,
            a_resumed_erasure_masks_each_payment_once,
        );
    };
}

every_behaviour!(sqlite);
every_behaviour!(cosmos);
