//! The ERP integration end to end, against the fake ERP over loopback HTTP and a real SQLite
//! file: `ErpInventorySync` (available = on hand - reserved, never overselling, a reservation
//! made during a sync kept; the ERP down and back), `ErpProductSync` (what the ERP owns, and
//! the API refusing local edits of it), and `ErpGoodsMovement` (a goods issue and return per
//! shipped or returned order, posted once despite duplicate events, dead-lettered with the
//! ERP's fault text when the ERP keeps refusing it).

mod common;

use std::time::Duration;

use common::erp_app::{ErpApp, TENANT};
use reqwest::Method;
use serde_json::{json, Value};
use shared::jobs::{Outcome, ERP_INVENTORY_SYNC, ERP_PRODUCT_SYNC};

fn stock(product: &Value) -> (i64, i64, i64) {
    (
        product["erpOnHand"].as_i64().unwrap_or(-1),
        product["reserved"].as_i64().unwrap_or(-1),
        product["stock"].as_i64().unwrap_or(-1),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_applies_on_hand_less_open_reservations_and_never_oversells() {
    let app = ErpApp::start(&[]).await;
    let kettle = app.product("Kettle", Some("KET-001"), 0).await;
    let customer = app.customer().await;

    let report = app.run(&ERP_INVENTORY_SYNC).await;
    assert_eq!(report.outcome, Outcome::Finished, "{report:?}");
    assert_eq!(report.counts[TENANT]["stockLevelsApplied"], 1, "{report:?}");
    assert_eq!(
        report.totals["unknownSkus"], 4,
        "the other seeded SKUs have no product here"
    );
    assert_eq!(stock(&app.stock_of(&kettle).await), (10, 0, 10));

    let order = app.order(&customer, &kettle, 4).await;
    order.expect_status(201);
    app.erp_admin("/sandbox/stock", json!({"sku": "KET-001", "onHand": 7}))
        .await;
    let dry = app.run_with(&ERP_INVENTORY_SYNC, true).await;
    assert_eq!(
        dry.totals["wouldApply"], 1,
        "a dry run reads from the checkpoint: {dry:?}"
    );
    assert_eq!(
        stock(&app.stock_of(&kettle).await),
        (10, 4, 6),
        "and changes nothing"
    );
    let report = app.run(&ERP_INVENTORY_SYNC).await;
    assert_eq!(
        report.counts[TENANT]["stockLevelsApplied"], 1,
        "only the change since the checkpoint: {report:?}"
    );
    assert_eq!(
        stock(&app.stock_of(&kettle).await),
        (7, 4, 3),
        "available = on hand in the ERP - reserved by the open order"
    );
    let oversell = app.order(&customer, &kettle, 4).await;
    oversell.expect_problem(409);

    // Orders placed while a sync applies a new level: every reservation is kept.
    app.erp_admin("/sandbox/stock", json!({"sku": "KET-001", "onHand": 20}))
        .await;
    let (sync, orders) = tokio::join!(app.run(&ERP_INVENTORY_SYNC), async {
        let mut placed = 0;
        for _ in 0..6 {
            if app.order(&customer, &kettle, 2).await.status == 201 {
                placed += 2;
            }
        }
        placed
    });
    assert_eq!(sync.outcome, Outcome::Finished, "{sync:?}");
    let (on_hand, reserved, available) = stock(&app.stock_of(&kettle).await);
    assert_eq!(on_hand, 20);
    assert_eq!(reserved, 4 + orders, "no reservation lost to the sync");
    assert_eq!(available, 20 - reserved, "available = on hand - reserved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erp_faults_and_timeouts_open_the_breaker_the_api_keeps_serving_and_a_later_run_catches_up()
{
    let app = ErpApp::start(&[("ERP_STOCK_PAGE_SIZE", "1")]).await;
    let kettle = app.product("Kettle", Some("KET-001"), 0).await;
    let mug = app.product("Mug", Some("MUG-002"), 0).await;
    let customer = app.customer().await;
    assert_eq!(
        app.run(&ERP_INVENTORY_SYNC).await.outcome,
        Outcome::Finished
    );
    assert_eq!(stock(&app.stock_of(&kettle).await), (10, 0, 10));

    app.erp_admin("/sandbox/stock", json!({"sku": "KET-001", "onHand": 3}))
        .await;
    app.erp_admin("/sandbox/stock", json!({"sku": "MUG-002", "onHand": 50}))
        .await;
    // A fault (the ERP's INTERNAL_ERROR), then an outage answering 503, then dropped connections.
    for mode in ["fault", "unavailable", "refuse"] {
        if mode == "fault" {
            app.erp_admin("/sandbox/fail-next", json!({"count": 1}))
                .await;
        } else {
            app.erp_admin("/sandbox/outage", json!({ "mode": mode }))
                .await;
        }
        let report = app.run(&ERP_INVENTORY_SYNC).await;
        assert_eq!(report.outcome, Outcome::Partial, "{mode}: {report:?}");
        let error = report.findings["erpUnavailable"].as_str().unwrap_or("");
        assert!(error.contains("GetStockChanges"), "{mode}: {report:?}");
        if mode == "fault" {
            assert!(error.contains("INTERNAL_ERROR"), "the ERP's fault: {error}");
        }
        let skipped = &report.findings["notApplied"];
        assert!(
            skipped["what"]
                .as_str()
                .unwrap_or("")
                .contains("every stock change after the checkpoint"),
            "{mode}: the report says what was skipped: {report:?}"
        );
        assert_eq!(report.left["stockPages"], 1, "{report:?}");
    }
    let ready = app.readiness().await;
    let erp = ready["outbound"]
        .as_array()
        .and_then(|services| services.iter().find(|s| s["service"] == "erp"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(erp["breaker"], "open", "{ready}");
    // The API keeps working on the last known stock.
    assert_eq!(stock(&app.stock_of(&kettle).await), (10, 0, 10));
    app.order(&customer, &kettle, 2).await.expect_status(201);
    app.call(Method::GET, "/orders", None)
        .await
        .expect_status(200);

    app.erp_admin("/sandbox/outage", json!({"mode": "none"}))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = app.run(&ERP_INVENTORY_SYNC).await;
    assert_eq!(
        report.outcome,
        Outcome::Finished,
        "a later run catches up: {report:?}"
    );
    assert_eq!(report.counts[TENANT]["stockLevelsApplied"], 2, "{report:?}");
    assert_eq!(stock(&app.stock_of(&kettle).await), (3, 2, 1));
    assert_eq!(stock(&app.stock_of(&mug).await), (50, 0, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goods_issue_is_posted_once_despite_duplicate_events_and_a_return_puts_it_back() {
    let app = ErpApp::start(&[]).await;
    let kettle = app.product("Kettle", Some("KET-001"), 0).await;
    let customer = app.customer().await;
    app.run(&ERP_INVENTORY_SYNC).await;
    let order = app.order(&customer, &kettle, 2).await;
    let order_id = order.body["id"].as_str().unwrap().to_owned();
    app.set_status(&order_id, "confirmed").await;
    app.set_status(&order_id, "shipped").await;

    let state = app
        .erp_state_until(|state| state["documents"].as_array().is_some_and(|d| d.len() == 1))
        .await;
    assert_eq!(state["onHand"]["KET-001"], 8, "{state}");
    let issue = &state["documents"][0];
    assert_eq!(issue["kind"], "issue");
    assert_eq!(
        stock(&app.stock_of(&kettle).await),
        (8, 0, 8),
        "shipped units are off hand here too, and no longer reserved"
    );

    // The same event again (as a redelivery would bring it): the ERP answers the first document.
    let event_id = issue["documentReference"].as_str().unwrap();
    let event = json!({"eventId": event_id, "eventType": "shipped", "tenantId": TENANT,
        "orderId": order_id, "customerId": customer, "occurredAt": "2026-12-03T08:00:00Z"});
    let reply = app
        .runtime
        .invoke_now("ErpGoodsMovement", Some(event.to_string()))
        .await
        .expect("the redelivery completes");
    let result = reply.return_value["result"].to_string();
    assert!(result.contains("duplicate"), "{result}");
    let state = app.erp_state().await;
    assert_eq!(
        state["documents"].as_array().map(Vec::len),
        Some(1),
        "{state}"
    );
    assert_eq!(state["onHand"]["KET-001"], 8, "posted once: {state}");

    app.set_status(&order_id, "returned").await;
    let state = app
        .erp_state_until(|state| state["documents"].as_array().is_some_and(|d| d.len() == 2))
        .await;
    assert_eq!(
        state["onHand"]["KET-001"], 10,
        "the goods return put the units back: {state}"
    );
    app.run(&ERP_INVENTORY_SYNC).await;
    assert_eq!(stock(&app.stock_of(&kettle).await), (10, 0, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_movement_the_erp_keeps_refusing_is_dead_lettered_with_its_fault_text() {
    let app = ErpApp::start(&[("LOCAL_QUEUE_MAX_DELIVERY_COUNT", "2")]).await;
    let unknown = app.product("Gadget", Some("ZZZ-999"), 5).await;
    let customer = app.customer().await;
    let order = app.order(&customer, &unknown, 1).await;
    let order_id = order.body["id"].as_str().unwrap().to_owned();
    app.set_status(&order_id, "confirmed").await;
    app.set_status(&order_id, "shipped").await;

    let queue = app.runtime.host.queue();
    let started = std::time::Instant::now();
    let dead = loop {
        let dead = queue
            .dead_letters(Some("order-events/subscriptions/erp"))
            .await
            .expect("dead letters");
        if let Some(message) = dead.into_iter().next() {
            break message;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        dead.dead_letter_reason.as_deref(),
        Some("MaxDeliveryCountExceeded")
    );
    assert_eq!(dead.delivery_count, 2);
    let reason = dead.last_error.unwrap_or_default();
    assert!(
        reason.contains("UNKNOWN_SKU"),
        "the ERP's fault code: {reason}"
    );
    assert!(reason.contains("ZZZ-999"), "the ERP's fault text: {reason}");
    assert!(reason.contains(&order_id), "{reason}");
    let state = app.erp_state().await;
    assert_eq!(state["documents"], json!([]), "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_sync_applies_what_the_erp_owns_and_the_api_refuses_local_edits_of_it() {
    let app = ErpApp::start(&[]).await;
    let mug = app.product("My mug", Some("MUG-002"), 0).await;

    let report = app.run(&ERP_PRODUCT_SYNC).await;
    assert_eq!(report.outcome, Outcome::Finished, "{report:?}");
    assert_eq!(report.counts[TENANT]["productsCreated"], 4, "{report:?}");
    assert_eq!(report.counts[TENANT]["productsUpdated"], 1, "{report:?}");
    let synced = app.stock_of(&mug).await;
    assert_eq!(
        (
            synced["name"].as_str(),
            synced["priceCents"].as_i64(),
            synced["currency"].as_str()
        ),
        (Some("Mug"), Some(750), Some("EUR"))
    );
    let listed = app.call(Method::GET, "/products?limit=100", None).await;
    let toaster = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sku"] == "TST-005")
        .cloned()
        .expect("a product was created for the ERP's toaster");
    assert_eq!(
        (toaster["active"].as_bool(), toaster["stock"].as_i64()),
        (Some(false), Some(0))
    );

    let etag = app
        .call(Method::GET, &format!("/products/{mug}"), None)
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let mut edit = json!({"name": "Mug", "category": "kitchen", "priceCents": 1, "currency": "EUR",
        "stock": synced["stock"], "active": true, "sku": "MUG-002"});
    let refused = Reply::read(
        reqwest::Client::new()
            .put(format!("{}/api/v1/products/{mug}", app.base))
            .bearer_auth(app.admin())
            .header("If-Match", &etag)
            .json(&edit),
    )
    .await;
    let problem = refused.expect_problem(409);
    assert_eq!(problem["title"], "Owned By The ERP");
    assert_eq!(problem["fields"], json!(["priceCents"]));
    edit["priceCents"] = json!(750);
    edit["description"] = json!("Stoneware, 300 ml");
    let allowed = Reply::read(
        reqwest::Client::new()
            .put(format!("{}/api/v1/products/{mug}", app.base))
            .bearer_auth(app.admin())
            .header("If-Match", &etag)
            .json(&edit),
    )
    .await;
    allowed.expect_status(200);
    assert_eq!(allowed.body["description"], "Stoneware, 300 ml");

    // A SKU is unique in the tenant and has a form.
    let body = json!({"name": "Other mug", "category": "kitchen", "priceCents": 500, "currency": "EUR", "stock": 1, "sku": "MUG-002"});
    let taken = app.call(Method::POST, "/products", Some(&body)).await;
    assert_eq!(taken.expect_problem(409)["title"], "SKU In Use");
    let body = json!({"name": "Other mug", "category": "kitchen", "priceCents": 500, "currency": "EUR", "stock": 1, "sku": "MUG 002"});
    let malformed = app.call(Method::POST, "/products", Some(&body)).await;
    malformed.expect_problem(400);
    assert_eq!(malformed.error_fields(), ["sku"]);

    let again = app.run(&ERP_PRODUCT_SYNC).await;
    assert_eq!(again.counts[TENANT]["productsUnchanged"], 5, "{again:?}");
    app.run(&ERP_INVENTORY_SYNC).await;
    assert_eq!(stock(&app.stock_of(&mug).await), (120, 0, 120));
}

use common::Reply;

/// An ERP that accepts connections and never answers: each call gives up after
/// `ERP_TIMEOUT_SECONDS`, the run stops as partial saying what it did not apply, and a run
/// against an answering ERP catches up from the same checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_that_never_answers_times_out_and_a_later_run_catches_up() {
    let app = ErpApp::start(&[("ERP_TIMEOUT_SECONDS", "1")]).await;
    let kettle = app.product("Kettle", Some("KET-001"), 0).await;
    assert_eq!(
        app.run(&ERP_INVENTORY_SYNC).await.outcome,
        Outcome::Finished
    );
    app.erp_admin("/sandbox/stock", json!({"sku": "KET-001", "onHand": 4}))
        .await;

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let state = app.state();
    let mut settings = app.erp.erp_settings(&state.settings.erp);
    settings.base_url = Some(format!("http://{address}/sap/inventory/v1"));
    let silent_erp = function_app::startup::Outbound::default()
        .with_erp(&settings)
        .unwrap();
    let context = function_app::timer_jobs::job_context(
        state.store.clone(),
        state.archive.clone(),
        state.settings.clone(),
        state.erasure.clone(),
        &silent_erp,
    );
    let options = shared::jobs::RunOptions {
        trigger: shared::jobs::Trigger::Timer,
        dry_run: false,
        is_past_due: false,
    };
    let started = std::time::Instant::now();
    let report = shared::jobs::run_job(&ERP_INVENTORY_SYNC, &context, options).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the call gave up in time"
    );
    assert_eq!(report.outcome, Outcome::Partial, "{report:?}");
    assert!(
        report.findings["erpUnavailable"].as_str().is_some(),
        "{report:?}"
    );
    assert!(report.findings.contains_key("notApplied"), "{report:?}");
    assert_eq!(
        stock(&app.stock_of(&kettle).await),
        (10, 0, 10),
        "the last known stock stays"
    );

    let report = app.run(&ERP_INVENTORY_SYNC).await;
    assert_eq!(report.outcome, Outcome::Finished, "{report:?}");
    assert_eq!(stock(&app.stock_of(&kettle).await), (4, 0, 4));
}
