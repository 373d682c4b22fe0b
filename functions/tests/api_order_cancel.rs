//! `DELETE /api/v1/orders/{id}` over real HTTP on loopback, through the local runtime.
//!
//! Proves, for an order in each status: pending and confirmed orders are cancelled with their
//! stock released and one `cancelled` event on the order topic (the event `CancelledOrderRefund`
//! refunds a paid order on); shipped and delivered orders are 409 with their current status and
//! stay as they were; a cancelled order answers 200 again with nothing released or announced
//! twice (under `If-Match`: 412 when it names another version). Another tenant's or another customer's order is 404; a client cancels their own
//! order; an employee without `admin` or `order-manager` is 403, as for the status change.

mod common;

use common::{ApiApp, Reply};
use serde_json::{json, Value};
use shared::auth::Role;

const EVENTS: &str = "order-events/subscriptions/notifications";

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn stock(app: &ApiApp, product: &str) -> i64 {
    let reply = app
        .get(&format!("/products/{product}/stock"), &app.admin("t1"))
        .await;
    reply.expect_status(200).body["stock"]
        .as_i64()
        .expect("stock")
}

async fn events_of(app: &ApiApp, order: &str) -> Vec<String> {
    app.messages_on(EVENTS)
        .await
        .into_iter()
        .filter(|event| event["orderId"] == order)
        .map(|event| event["eventType"].as_str().expect("eventType").to_owned())
        .collect()
}

/// An app with one customer and one product of 10 units; their ids.
async fn setup() -> (ApiApp, String, String) {
    let app = ApiApp::start(&[]).await;
    let customer = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let widget = id_of(&app.create_product("t1", "Widget", "tools", 10).await);
    (app, customer, widget)
}

/// An order of 2 widgets moved along to `statuses`, in turn; its id.
async fn order_in(app: &ApiApp, customer: &str, widget: &str, statuses: &[&str]) -> String {
    let admin = app.admin("t1");
    let body = json!({"customerId": customer, "items": [{"productId": widget, "quantity": 2}]});
    let order = id_of(
        &app.post("/orders", &admin, &body)
            .await
            .expect_status(201)
            .body,
    );
    for status in statuses {
        app.put(
            &format!("/orders/{order}/status"),
            &admin,
            &json!({"status": status}),
        )
        .await
        .expect_status(200);
    }
    order
}

async fn cancel(app: &ApiApp, token: &str, order: &str) -> Reply {
    app.delete(&format!("/orders/{order}"), token).await
}

#[tokio::test]
async fn a_pending_or_confirmed_order_is_cancelled_with_its_stock_released_and_one_event() {
    let (app, customer, widget) = setup().await;
    let manager = app.employee("t1", &[Role::OrderManager]);
    for statuses in [&[][..], &["confirmed"][..]] {
        let order = order_in(&app, &customer, &widget, statuses).await;
        assert_eq!(stock(&app, &widget).await, 8);

        let reply = cancel(&app, &manager, &order).await;
        assert_eq!(reply.expect_status(200).body["status"], "cancelled");
        assert!(reply.header("etag").is_some());
        assert_eq!(
            stock(&app, &widget).await,
            10,
            "the reserved units are back"
        );
        let read = app.get(&format!("/orders/{order}"), &manager).await;
        assert_eq!(read.body["status"], "cancelled");
        let mut expected = vec!["created"];
        expected.extend_from_slice(statuses);
        expected.push("cancelled");
        assert_eq!(events_of(&app, &order).await, expected);
    }
}

#[tokio::test]
async fn a_shipped_or_delivered_order_is_409_with_its_current_status() {
    let (app, customer, widget) = setup().await;
    let admin = app.admin("t1");
    for (statuses, current) in [
        (&["confirmed", "shipped"][..], "shipped"),
        (&["confirmed", "shipped", "delivered"][..], "delivered"),
    ] {
        let order = order_in(&app, &customer, &widget, statuses).await;
        let stock_before = stock(&app, &widget).await;
        let reply = cancel(&app, &admin, &order).await;
        let problem = reply.expect_problem(409);
        assert_eq!(problem["currentStatus"], current);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        let read = app.get(&format!("/orders/{order}"), &admin).await;
        assert_eq!(read.body["status"], current, "the order is unchanged");
        assert_eq!(stock(&app, &widget).await, stock_before);
        assert!(!events_of(&app, &order).await.contains(&"cancelled".into()));
    }
}

#[tokio::test]
async fn cancelling_a_cancelled_order_answers_200_again_and_changes_nothing() {
    let (app, customer, widget) = setup().await;
    let admin = app.admin("t1");
    let order = order_in(&app, &customer, &widget, &["cancelled"]).await;
    assert_eq!(stock(&app, &widget).await, 10);
    let first = app.get(&format!("/orders/{order}"), &admin).await;

    for _ in 0..2 {
        let again = cancel(&app, &admin, &order).await;
        assert_eq!(again.expect_status(200).body, first.body);
        assert_eq!(again.header("etag"), first.header("etag"));
    }
    let stale = app
        .request(
            reqwest::Method::DELETE,
            &format!("/orders/{order}"),
            Some(&admin),
        )
        .header("if-match", "\"not-the-current-one\"");
    common::Reply::read(stale).await.expect_problem(412);
    let current = first.header("etag").expect("etag");
    let fresh = app
        .request(
            reqwest::Method::DELETE,
            &format!("/orders/{order}"),
            Some(&admin),
        )
        .header("if-match", current);
    common::Reply::read(fresh).await.expect_status(200);
    assert_eq!(stock(&app, &widget).await, 10, "nothing released twice");
    assert_eq!(events_of(&app, &order).await, ["created", "cancelled"]);
    let history = app.get(&format!("/orders/{order}/history"), &admin).await;
    assert_eq!(history.body["history"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn only_the_owner_or_fulfilment_staff_of_the_tenant_may_cancel() {
    let (app, customer, widget) = setup().await;
    let bob = id_of(
        &app.create_customer("t1", "Bob Builder", "bob@example.org")
            .await,
    );
    let order = order_in(&app, &customer, &widget, &[]).await;

    cancel(&app, &app.admin("t2"), &order)
        .await
        .expect_problem(404);
    cancel(&app, &app.client_of("t1", &bob), &order)
        .await
        .expect_problem(404);
    cancel(&app, &app.admin("t1"), "no-such-order")
        .await
        .expect_problem(404);
    cancel(&app, &app.employee("t1", &[Role::CustomerService]), &order)
        .await
        .expect_problem(403);
    let read = app.get(&format!("/orders/{order}"), &app.admin("t1")).await;
    assert_eq!(read.body["status"], "pending", "nobody above cancelled it");

    let own = cancel(&app, &app.client_of("t1", &customer), &order).await;
    assert_eq!(own.expect_status(200).body["status"], "cancelled");
    assert_eq!(stock(&app, &widget).await, 10);
}
