//! The gateway outage drill: clients pay orders at a steady rate while the PayPal sandbox goes
//! down (first dropping connections, then answering `503`) for `DRILL_OUTAGE_SECONDS` (15 in
//! the test suite; `scripts/drill-payments` runs it for a minute and prints the figures the
//! README quotes). Clients retry with the same `Idempotency-Key` a few times, then give up, as
//! real clients do; `PaymentReconciliation` settles what they left.
//!
//! It proves: no payment is captured twice (the sandbox's captures equal the orders), none is
//! lost (every order has exactly one payment, captured), and everything settles after recovery.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pay_app::PayApp;

/// How a client's payment ended, as the client saw it.
#[derive(Debug, Default)]
struct ClientOutcome {
    /// The HTTP status of each attempt.
    statuses: Vec<u16>,
    /// The payment id, once an answer named it.
    payment_id: Option<String>,
    /// The last answer's body (what a client without a payment id was told).
    last_body: serde_json::Value,
}

/// The drill's timeline: normal service, the outage (connections dropped, then `503`s),
/// normal service again.
struct Timeline {
    before: Duration,
    outage: Duration,
    after: Duration,
}

impl Timeline {
    fn from_env() -> Self {
        let outage = std::env::var("DRILL_OUTAGE_SECONDS")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(15);
        Self {
            before: Duration::from_secs(3),
            outage: Duration::from_secs(outage),
            after: Duration::from_secs(3),
        }
    }

    fn total(&self) -> Duration {
        self.before + self.outage + self.after
    }
}

/// Pays `order` as a client does: up to 3 attempts with the same key, 2 s apart, while the
/// answer is `503` (not sent), `202` (still settling) or `409` (in progress).
async fn client_pays(app: Arc<PayApp>, customer: String, order: String) -> ClientOutcome {
    let token = app.client_of(&customer);
    let key = format!("drill-{order}");
    let mut outcome = ClientOutcome::default();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let reply = app.pay(&token, &key, &order, "sandbox-ok").await;
        outcome.statuses.push(reply.status);
        let id = reply.body["id"]
            .as_str()
            .or_else(|| reply.body["paymentId"].as_str());
        if let Some(id) = id {
            outcome.payment_id = Some(id.to_owned());
        }
        outcome.last_body = reply.body.clone();
        if !matches!(reply.status, 503 | 202 | 409) {
            break;
        }
    }
    outcome
}

/// Runs reconciliation until nothing is left to settle (the breaker needs a second to let a
/// probe through after the outage): the number of runs and what they settled.
async fn reconcile_until_settled(app: &PayApp) -> (u32, u64) {
    let mut settled = 0;
    for run in 1..=30 {
        let report = app
            .run_job(&shared::jobs::PAYMENT_RECONCILIATION, None)
            .await;
        settled += report.totals.get("paymentsSettled").copied().unwrap_or(0);
        if report.outcome.as_str() == "finished" && report.totals.is_empty() {
            return (run, settled);
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    panic!("payments still unsettled after 30 reconciliation runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_no_payment_and_captures_none_twice() {
    let timeline = Timeline::from_env();
    let app =
        Arc::new(PayApp::start_with(|settings| settings.timeout = Duration::from_secs(2)).await);
    // Two payments a second over the whole timeline.
    let count = (timeline.total().as_secs() * 2) as usize;
    let mut orders = Vec::with_capacity(count);
    for _ in 0..count {
        orders.push(app.order().await);
    }

    let start = Instant::now();
    let mut clients = Vec::new();
    for (index, (customer, order)) in orders.iter().cloned().enumerate() {
        let app = app.clone();
        let at = timeline.total().mul_f64(index as f64 / count as f64);
        clients.push(tokio::spawn(async move {
            tokio::time::sleep(at).await;
            client_pays(app, customer, order).await
        }));
    }
    tokio::time::sleep(timeline.before).await;
    app.outage("refuse").await;
    tokio::time::sleep(timeline.outage / 2).await;
    app.outage("unavailable").await;
    tokio::time::sleep(timeline.outage - timeline.outage / 2).await;
    app.outage("none").await;
    let recovered = Instant::now();
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.push(client.await.unwrap());
    }
    for ((_, order), outcome) in orders.iter().zip(&outcomes) {
        assert!(
            outcome.payment_id.is_some(),
            "order {order}: no payment recorded: {outcome:?}"
        );
    }
    let left_by_clients = unsettled(&app, &orders).await;
    let (runs, settled_by_reconciliation) = reconcile_until_settled(&app).await;
    let settle_time = recovered.elapsed();

    // Nothing lost: every order has exactly one payment, captured for the order's total.
    let admin = app.admin();
    for (_, order) in &orders {
        let payments = app.get(&format!("/orders/{order}/payments"), &admin).await;
        let items = payments.body["payments"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(items.len(), 1, "order {order}: {:?}", payments.body);
        assert_eq!(
            items[0]["status"], "captured",
            "order {order}: {:?}",
            items[0]
        );
        assert_eq!(items[0]["capturedCents"], 2500);
    }
    // Nothing captured twice.
    let sandbox = app.sandbox_state().await;
    assert_eq!(
        sandbox["captures"], count,
        "one capture per order: {sandbox}"
    );
    assert!(outcomes.iter().all(|outcome| outcome.payment_id.is_some()
        || outcome.statuses.iter().all(|status| *status == 409)));

    print_figures(
        &timeline,
        count,
        &outcomes,
        left_by_clients,
        runs,
        settled_by_reconciliation,
        settle_time,
        start.elapsed(),
    );
}

/// The orders whose payment is not captured (what the clients left for reconciliation).
async fn unsettled(app: &PayApp, orders: &[(String, String)]) -> usize {
    let admin = app.admin();
    let mut left = 0;
    for (_, order) in orders {
        let payments = app.get(&format!("/orders/{order}/payments"), &admin).await;
        let captured = payments.body["payments"]
            .as_array()
            .is_some_and(|items| items.iter().any(|item| item["status"] == "captured"));
        left += usize::from(!captured);
    }
    left
}

#[allow(clippy::too_many_arguments)]
fn print_figures(
    timeline: &Timeline,
    count: usize,
    outcomes: &[ClientOutcome],
    left_by_clients: usize,
    runs: u32,
    settled_by_reconciliation: u64,
    settle_time: Duration,
    total: Duration,
) {
    let mut first_answers: BTreeMap<u16, usize> = BTreeMap::new();
    let mut attempts = 0;
    for outcome in outcomes {
        attempts += outcome.statuses.len();
        if let Some(first) = outcome.statuses.first() {
            *first_answers.entry(*first).or_default() += 1;
        }
    }
    println!(
        "drill: outage {} s, {count} orders paid over {} s, {attempts} client attempts",
        timeline.outage.as_secs(),
        timeline.total().as_secs()
    );
    println!("drill: first answers by status: {first_answers:?}");
    println!("drill: left unsettled by the clients: {left_by_clients}; settled by reconciliation: {settled_by_reconciliation} in {runs} runs; all settled {:.1} s after recovery", settle_time.as_secs_f64());
    println!(
        "drill: captured {count} of {count}, none twice; whole drill {:.1} s",
        total.as_secs_f64()
    );
}
