//! `OutboxRelay` through the local runtime when publishing fails: the relay answers non-2xx for
//! as long as the broker refuses, the local change feed retries the same batch, and in the end
//! every order's `created` event reached `NotificationDispatch` once (one "order received"
//! notification per order, none twice). A record the broker refuses for good is parked: the
//! others pass, it stays in the outbox and readiness shows the lag.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{settings, spawn_local};
use function_app::app::handler_router;
use function_app::local::host::LocalHost;
use function_app::local::queue::LocalQueue;
use function_app::local::LocalRuntime;
use function_app::startup::{AppState, Mode};
use serde_json::{json, Value};
use shared::auth::{DevIssuer, DevSubject, Role};
use shared::domain::tenant::TenantId;
use shared::outbox::{MessagePublisher, OutboxMessage, PublishError};

/// Fails the first `transient` publishes, and every publish to `refused` for good; passes the
/// rest to the embedded queue.
struct Flaky {
    queue: LocalQueue,
    transient: AtomicUsize,
    refused: Option<&'static str>,
    attempts: AtomicUsize,
}

#[async_trait::async_trait]
impl MessagePublisher for Flaky {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if self.refused == Some(message.destination.as_str()) {
            return Err(PublishError::Permanent("410 entity does not exist".into()));
        }
        let left = self.transient.load(Ordering::Relaxed);
        if left > 0 {
            self.transient.store(left - 1, Ordering::Relaxed);
            return Err(PublishError::Transient("503 server busy".into()));
        }
        self.queue.publish(message).await
    }
}

struct Running {
    base: String,
    runtime: LocalRuntime,
    flaky: Arc<Flaky>,
    issuer: DevIssuer,
    _dir: tempfile::TempDir,
}

async fn start(transient: usize, refused: Option<&'static str>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    common::jwks::install_dev_key(dir.path());
    let extra = [
        ("LOCAL_QUEUE_RETRY_DELAY_MS", "50"),
        ("OUTBOX_LAG_DEGRADED_SECONDS", "1"),
    ];
    let mut runtime =
        LocalRuntime::new(AppState::open(settings(dir.path(), &extra), Mode::Local).unwrap());
    let flaky = Arc::new(Flaky {
        queue: runtime.host.queue().clone(),
        transient: AtomicUsize::new(transient),
        refused,
        attempts: AtomicUsize::new(0),
    });
    runtime.state.parts_mut().publisher = flaky.clone();
    runtime.host = LocalHost::new(
        handler_router(runtime.state.clone()),
        runtime.host.queue().clone(),
    );
    let address = spawn_local(runtime.clone()).await;
    Running {
        base: format!("http://{address}"),
        runtime,
        flaky,
        issuer: DevIssuer::load_or_create(dir.path()).unwrap(),
        _dir: dir,
    }
}

impl Running {
    fn admin(&self) -> String {
        let subject = DevSubject::Employee {
            roles: [Role::Admin].into_iter().collect(),
        };
        self.issuer
            .token(
                &TenantId::new("t1").unwrap(),
                subject,
                Duration::from_secs(600),
            )
            .unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let response = common::client()
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(self.admin())
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// A customer and `count` orders of theirs; the customer id and the order ids.
    async fn orders(&self, count: usize) -> (String, Vec<String>) {
        let product = self
            .post("/products", &json!({"name": "Kettle", "category": "kitchen", "priceCents": 100, "currency": "EUR", "stock": 1000}))
            .await;
        let customer = self
            .post(
                "/customers",
                &json!({"name": "Ada Buyer", "email": "ada@example.org"}),
            )
            .await;
        let body = json!({"customerId": customer["id"], "items": [{"productId": product["id"], "quantity": 1}]});
        let mut ids = Vec::new();
        for _ in 0..count {
            ids.push(
                self.post("/orders", &body).await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        (customer["id"].as_str().unwrap().to_owned(), ids)
    }

    /// "Order received" notifications of the customer, per order, once `expected` orders have
    /// one (or after 20 s).
    async fn created_notifications(&self, customer: &str, expected: usize) -> Vec<String> {
        let started = Instant::now();
        loop {
            let page = self
                .runtime
                .state
                .ports
                .notifications
                .list_notifications(
                    &TenantId::new("t1").unwrap(),
                    &[shared::domain::notification::Recipient::Customer(
                        customer.to_owned(),
                    )],
                    shared::store::PageRequest::first(100),
                )
                .await
                .unwrap();
            let created: Vec<String> = page
                .items
                .into_iter()
                .filter(|note| note.category == "order.created")
                .filter_map(|note| note.order_id)
                .collect();
            if created.len() >= expected || started.elapsed() > Duration::from_secs(20) {
                return created;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_relay_that_fails_many_times_still_delivers_every_event_once() {
    let running = start(6, None).await;
    let (customer, mut orders) = running.orders(30).await;
    let mut notified = running.created_notifications(&customer, orders.len()).await;
    // A little longer, in case a duplicate was on its way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    notified = running
        .created_notifications(&customer, notified.len())
        .await;
    notified.sort();
    orders.sort();
    assert_eq!(notified, orders, "one notification per order, none twice");
    assert_eq!(
        running.flaky.transient.load(Ordering::Relaxed),
        0,
        "every failure was used"
    );
    assert!(running.flaky.attempts.load(Ordering::Relaxed) >= 30 + 6);
    assert_eq!(
        running
            .runtime
            .state
            .ports
            .outbox
            .oldest_unrelayed()
            .await
            .unwrap(),
        None,
        "everything sent was acknowledged"
    );
}

#[tokio::test]
async fn a_record_refused_for_good_is_parked_and_the_others_pass() {
    let running = start(0, Some("gdpr-requests")).await;
    let (customer, orders) = running.orders(3).await;
    assert_eq!(
        running
            .created_notifications(&customer, orders.len())
            .await
            .len(),
        orders.len()
    );
    let erase = common::client()
        .delete(format!("{}/api/v1/customers/{customer}", running.base))
        .bearer_auth(running.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(erase.status(), 202);
    // The erasure request stays in the outbox: the lag shows it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let ready: Value = common::client()
        .get(format!("{}/api/health/ready", running.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    let left = running
        .runtime
        .state
        .ports
        .outbox
        .pending_outbox(&TenantId::new("t1").unwrap())
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].message().unwrap().destination, "gdpr-requests");
}
