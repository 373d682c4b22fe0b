//! Relay throughput benchmark, run by `scripts/bench-relay`: how many outbox messages per second
//! the local runtime relays, protocol included.
//!
//! `ORDERS` orders are created through the store with the relay off (each writes one outbox
//! record, its `created` event); then the local change feed is started alone (no queue
//! consumers) and timed until the outbox is empty. Each batch goes the whole way an Azure batch
//! goes: rows read in commit order, rendered as change-feed documents, encoded as the host
//! encodes a `cosmosDBTrigger` payload, `POST /OutboxRelay` through the handler's router, parsed,
//! each message published to the embedded queue (its duplicate detection included) and the
//! batch acknowledged. Three rounds; the median is reported. Bounded: `ORDERS` per round.

use std::time::{Duration, Instant};

use function_app::local::change_feed::{run_feed, FeedOptions};
use function_app::local::LocalRuntime;
use function_app::registry;
use function_app::startup::{AppState, Mode};
use shared::config::{Settings, SettingsSource};
use shared::domain::audit::AuditEntry;
use shared::domain::order::{OrderInput, OrderLineInput};
use shared::domain::tenant::TenantId;
use shared::store::NewOrder;

const ORDERS: usize = 5_000;
const ROUNDS: usize = 3;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rates = Vec::new();
    for round in 1..=ROUNDS {
        let (elapsed, relayed) = runtime.block_on(round_trip())?;
        let rate = relayed as f64 / elapsed.as_secs_f64();
        eprintln!(
            "round {round}: {relayed} messages in {:.2} s = {rate:.0}/s",
            elapsed.as_secs_f64()
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!("| relay through the local runtime (change feed → `OutboxRelay` → embedded queue), {ORDERS} messages, median of {ROUNDS} | {median:.0} messages/s |");
    Ok(())
}

async fn round_trip() -> Result<(Duration, usize), BoxError> {
    let dir = tempfile::tempdir()?;
    let source = SettingsSource::from_pairs([
        ("DATA_DIR", dir.path().to_string_lossy().into_owned()),
        ("LOCAL_TIMERS", "false".to_owned()),
        ("LOCAL_RELAY", "false".to_owned()),
        ("RUST_LOG", "error".to_owned()),
    ]);
    let settings = Settings::load(&source)?;
    let state = AppState::open(settings, Mode::Local)?;
    let local = LocalRuntime::new(state);
    let tenant = TenantId::new("t1")?;
    seed(&local, &tenant).await?;
    let relay = registry::find("OutboxRelay").ok_or("no OutboxRelay")?;
    let started = Instant::now();
    let feed = tokio::spawn(run_feed(
        local.host.clone(),
        local.state.ports.outbox.clone(),
        local.state.db.clone(),
        relay,
        FeedOptions::default(),
    ));
    while local.state.ports.outbox.oldest_unrelayed().await?.is_some() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    feed.abort();
    let relayed = local
        .host
        .queue()
        .peek("order-events/subscriptions/notifications")
        .await?
        .len();
    Ok((elapsed, relayed))
}

/// One customer, one product, `ORDERS` orders (each with its outbox record).
async fn seed(local: &LocalRuntime, tenant: &TenantId) -> Result<(), BoxError> {
    let audit = |action: &str| AuditEntry::now("t1", "bench", action, "bench", "x", "corr");
    let now = shared::domain::now();
    let customer: shared::domain::customer::Customer = serde_json::from_value(serde_json::json!({
        "id": "c-1", "tenantId": "t1", "name": "Bench Customer", "email": "bench@example.org",
        "preferences": {"inApp": true, "email": true, "sms": false}, "status": "active",
        "createdAt": now, "updatedAt": now, "lastActivityAt": now, "etag": ""
    }))?;
    let store = &local.state.store;
    store
        .create_customer(tenant, customer, audit("customer.create"))
        .await?;
    let product: shared::domain::product::Product = serde_json::from_value(serde_json::json!({
        "id": "p-1", "tenantId": "t1", "name": "Kettle", "category": "kitchen", "priceCents": 100,
        "currency": "EUR", "stock": 1_000_000, "active": true, "createdAt": now, "updatedAt": now, "etag": ""
    }))?;
    store
        .create_product(tenant, product, audit("product.create"))
        .await?;
    for n in 0..ORDERS {
        let order = NewOrder {
            id: format!("o-{n}"),
            customer_id: "c-1".into(),
            input: OrderInput {
                customer_id: Some("c-1".into()),
                items: vec![OrderLineInput {
                    product_id: "p-1".into(),
                    quantity: 1,
                }],
                shipping_address: None,
            },
            actor_id: "bench".into(),
            idempotency: None,
        };
        store
            .create_order(tenant, order, audit("order.create"))
            .await?;
    }
    Ok(())
}
