//! `OrdersApi` over real HTTP on loopback, through the local runtime's host envelope (the
//! function has the `orderEvents` Service Bus output, routed to the local `order-events` topic).
//!
//! Proves: creating an order reserves stock atomically (a refused order changes no stock);
//! insufficient stock is 409 with the figures, unknown products 422; `Idempotency-Key` replays
//! the first order (also under concurrent retries) and refuses a reused key with another
//! body; the listing filters by status, customer and creation range; clients see, create and
//! cancel only their own orders and cannot move them along; the state machine
//! (pending → confirmed → shipped → delivered, cancel before shipping) with 409 naming the
//! allowed moves, `If-Match`, cancel releasing stock, and the history of every change; every
//! lifecycle change puts exactly one event of the right type on the topic.
//!
//! How events are observed: in local mode the topic's `notifications` subscription feeds
//! `NotificationDispatch`, which completes (deletes) the events it processes, or, while it
//! fails, has them retried and dead-lettered. Neither leaves a stable count to assert on.
//! `ApiApp` disables the Service Bus consumers (the host stand-in refuses their invocations,
//! as `AzureWebJobs.<Function>.Disabled` would under the Functions host) and starts the app
//! with `LOCAL_QUEUE_RETRY_DELAY_MS=600000`: an event is delivered once, refused, and then
//! stays on the subscription as an active message for ten minutes. [`ApiApp::messages_on`]
//! reads active messages and dead letters together, so every event the API sent is counted
//! exactly once, whatever delivery it is in and whatever the consumer does once implemented.

mod common;

use std::collections::HashSet;

use common::{ApiApp, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use shared::auth::Role;

const EVENTS: &str = "order-events/subscriptions/notifications";

fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
        .to_owned()
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", reply.text))
        .iter()
        .map(id_of)
        .collect()
}

fn order_body(customer: &str, lines: &[(&str, i64)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(product, quantity)| json!({"productId": product, "quantity": quantity}))
        .collect();
    json!({"customerId": customer, "items": items})
}

async fn stock(app: &ApiApp, product: &str) -> i64 {
    let reply = app
        .get(&format!("/products/{product}/stock"), &app.admin("t1"))
        .await;
    reply.expect_status(200);
    assert_eq!(reply.body["productId"], product);
    reply.body["stock"].as_i64().expect("stock is a number")
}

/// The event types emitted for `order`, in the order they were sent.
async fn events_of(app: &ApiApp, order: &str) -> Vec<String> {
    app.messages_on(EVENTS)
        .await
        .into_iter()
        .filter(|event| event["orderId"] == order)
        .map(|event| event["eventType"].as_str().expect("eventType").to_owned())
        .collect()
}

async fn set_status(app: &ApiApp, token: &str, order: &str, status: &str) -> Reply {
    app.put(
        &format!("/orders/{order}/status"),
        token,
        &json!({"status": status}),
    )
    .await
}

#[tokio::test]
async fn an_order_reserves_stock_atomically_and_a_refused_order_changes_no_stock() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let customer = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let widget = id_of(&app.create_product("t1", "Widget", "tools", 10).await);
    let gadget = id_of(&app.create_product("t1", "Gadget", "tools", 3).await);

    let created = app
        .post(
            "/orders",
            &admin,
            &order_body(&customer, &[(&widget, 4), (&gadget, 1)]),
        )
        .await;
    created.expect_status(201);
    let order = id_of(&created.body);
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/orders/{order}").as_str())
    );
    assert!(created.header("etag").is_some_and(|etag| etag.len() > 2));
    assert!(created.header("idempotent-replayed").is_none());
    assert_eq!(created.body["status"], "pending");
    assert_eq!(created.body["customerId"], customer.as_str());
    assert_eq!(created.body["items"][0]["productName"], "Widget");
    assert_eq!(created.body["items"][0]["unitPriceCents"], 1250);
    assert_eq!(created.body["totalCents"], 5 * 1250);
    assert_eq!(created.body["currency"], "EUR");
    assert_eq!(
        (stock(&app, &widget).await, stock(&app, &gadget).await),
        (6, 2)
    );
    let read = app.get(&format!("/orders/{order}"), &admin).await;
    assert_eq!(read.expect_status(200).body, created.body);

    // Not enough gadgets: nothing is reserved, not even the widgets of the first line.
    let short = app
        .post(
            "/orders",
            &admin,
            &order_body(&customer, &[(&widget, 1), (&gadget, 5)]),
        )
        .await;
    let problem = short.expect_problem(409);
    assert_eq!(problem["title"], "Insufficient Stock");
    assert_eq!(problem["productId"], gadget.as_str());
    assert_eq!(
        (problem["available"].as_i64(), problem["requested"].as_i64()),
        (Some(2), Some(5))
    );
    // Two lines of one product count together.
    let split = app
        .post(
            "/orders",
            &admin,
            &order_body(&customer, &[(&gadget, 2), (&gadget, 1)]),
        )
        .await;
    let problem = split.expect_problem(409);
    assert_eq!(
        (problem["available"].as_i64(), problem["requested"].as_i64()),
        (Some(2), Some(3))
    );

    // Unknown (or another tenant's) products: 422 naming them.
    let elsewhere = id_of(&app.create_product("t2", "Foreign", "tools", 50).await);
    let unknown = app
        .post(
            "/orders",
            &admin,
            &order_body(
                &customer,
                &[(&widget, 1), ("no-such-product", 1), (&elsewhere, 1)],
            ),
        )
        .await;
    let problem = unknown.expect_problem(422);
    assert_eq!(problem["productIds"], json!(["no-such-product", elsewhere]));
    // An inactive product cannot be ordered either.
    let retired = id_of(&app.create_product("t1", "Retired", "tools", 5).await);
    let retired_etag = app
        .get(&format!("/products/{retired}"), &admin)
        .await
        .header("etag")
        .expect("an ETag")
        .to_owned();
    Reply::read(
        app.request(Method::PUT, &format!("/products/{retired}"), Some(&admin))
            .header("if-match", retired_etag)
            .json(&json!({"name": "Retired", "category": "tools", "priceCents": 1, "currency": "EUR", "stock": 5, "active": false})),
    )
    .await
    .expect_status(200);
    app.post("/orders", &admin, &order_body(&customer, &[(&retired, 1)]))
        .await
        .expect_problem(422);

    // Bad bodies and an unknown customer.
    let empty = app
        .post(
            "/orders",
            &admin,
            &json!({"customerId": customer, "items": []}),
        )
        .await;
    empty.expect_problem(400);
    assert_eq!(empty.error_fields(), ["items"]);
    let bad_lines = app
        .post(
            "/orders",
            &admin,
            &order_body(&customer, &[(&widget, 0), ("a/b", 1)]),
        )
        .await;
    bad_lines.expect_problem(400);
    assert_eq!(
        bad_lines.error_fields(),
        ["items[0].quantity", "items[1].productId"]
    );
    let no_customer = app
        .post(
            "/orders",
            &admin,
            &json!({"items": [{"productId": widget, "quantity": 1}]}),
        )
        .await;
    no_customer.expect_problem(400);
    assert_eq!(no_customer.error_fields(), ["customerId"]);
    app.post(
        "/orders",
        &admin,
        &order_body("no-such-customer", &[(&widget, 1)]),
    )
    .await
    .expect_problem(404);

    assert_eq!(
        (
            stock(&app, &widget).await,
            stock(&app, &gadget).await,
            stock(&app, &retired).await
        ),
        (6, 2, 5),
        "no refused order reserved anything"
    );
    assert_eq!(
        ids(&app.get("/orders", &admin).await),
        std::slice::from_ref(&order)
    );
    assert_eq!(events_of(&app, &order).await, ["created"]);
    assert_eq!(
        app.messages_on(EVENTS).await.len(),
        1,
        "refused orders emit nothing"
    );
}

#[tokio::test]
async fn concurrent_orders_for_the_last_units_never_oversell() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let customer = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let widget = id_of(&app.create_product("t1", "Widget", "tools", 3).await);
    let body = order_body(&customer, &[(&widget, 1)]);
    let attempts: Vec<_> = (0..8).map(|_| app.post("/orders", &admin, &body)).collect();
    let replies = futures_join_all(attempts).await;
    let created = replies.iter().filter(|reply| reply.status == 201).count();
    let refused: Vec<&Reply> = replies.iter().filter(|reply| reply.status != 201).collect();
    assert_eq!(
        created,
        3,
        "{:?}",
        replies.iter().map(|reply| reply.status).collect::<Vec<_>>()
    );
    for reply in refused {
        assert_eq!(reply.expect_problem(409)["title"], "Insufficient Stock");
    }
    assert_eq!(stock(&app, &widget).await, 0);
    assert_eq!(ids(&app.get("/orders", &admin).await).len(), 3);
    assert_eq!(app.messages_on(EVENTS).await.len(), 3);
}

/// Runs the futures concurrently on this task; their results in order.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut pending = false;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|output| output.expect("finished"))
        .collect()
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_order_and_refuses_another_body() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let customer = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let widget = id_of(&app.create_product("t1", "Widget", "tools", 10).await);
    let body = order_body(&customer, &[(&widget, 3)]);
    let post = |key: &'static str, body: &Value| {
        Reply::read(
            app.request(Method::POST, "/orders", Some(&admin))
                .header("idempotency-key", key)
                .json(body),
        )
    };

    let first = post("retry-me-1", &body).await;
    first.expect_status(201);
    assert!(first.header("idempotent-replayed").is_none());
    let order = id_of(&first.body);

    let retried = post("retry-me-1", &body).await;
    retried.expect_status(201);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert_eq!(id_of(&retried.body), order);
    assert_eq!(retried.header("location"), first.header("location"));
    assert_eq!(stock(&app, &widget).await, 7, "stock reserved once");

    // Concurrent retries of a new key make one order between them.
    let other = order_body(&customer, &[(&widget, 1)]);
    let (a, b, c) = tokio::join!(
        post("retry-me-2", &other),
        post("retry-me-2", &other),
        post("retry-me-2", &other)
    );
    for reply in [&a, &b, &c] {
        reply.expect_status(201);
    }
    let concurrent: HashSet<String> = [&a, &b, &c]
        .iter()
        .map(|reply| id_of(&reply.body))
        .collect();
    assert_eq!(concurrent.len(), 1, "one order for one key: {concurrent:?}");
    let replayed = [&a, &b, &c]
        .iter()
        .filter(|reply| reply.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 2);
    assert_eq!(stock(&app, &widget).await, 6);

    // The same key with a different request is refused, not replayed.
    let changed = order_body(&customer, &[(&widget, 4)]);
    let reused = post("retry-me-1", &changed).await;
    assert_eq!(
        reused.expect_problem(422)["title"],
        "Idempotency Key Reused"
    );
    assert_eq!(stock(&app, &widget).await, 6);

    // Without a key, or with another one, a POST is a new order.
    app.post("/orders", &admin, &body).await.expect_status(201);
    let invalid_key = Reply::read(
        app.request(Method::POST, "/orders", Some(&admin))
            .header("idempotency-key", "x".repeat(129))
            .json(&body),
    )
    .await;
    assert_eq!(
        invalid_key.expect_problem(400).clone()["errors"][0]["field"],
        "Idempotency-Key"
    );
    assert_eq!(stock(&app, &widget).await, 3);
    assert_eq!(ids(&app.get("/orders", &admin).await).len(), 3);
    assert_eq!(
        events_of(&app, &order).await,
        ["created"],
        "a replay emits no event"
    );
    assert_eq!(app.messages_on(EVENTS).await.len(), 3);
}

#[tokio::test]
async fn two_clients_using_the_same_idempotency_key_each_get_their_own_order() {
    let app = ApiApp::start(&[]).await;
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let bob = id_of(
        &app.create_customer("t1", "Bob Builder", "bob@example.org")
            .await,
    );
    let widget = id_of(&app.create_product("t1", "Widget", "tools", 10).await);
    let body = json!({"items": [{"productId": widget, "quantity": 1}]});
    let post = |token: String| {
        Reply::read(
            app.request(Method::POST, "/orders", Some(&token))
                .header("idempotency-key", "cart-1")
                .json(&body),
        )
    };

    let adas = post(app.client_of("t1", &ada)).await;
    assert_eq!(adas.expect_status(201).body["customerId"], ada.as_str());
    let bobs = post(app.client_of("t1", &bob)).await;
    bobs.expect_status(201);
    assert_eq!(bobs.body["customerId"], bob.as_str());
    assert_ne!(id_of(&bobs.body), id_of(&adas.body));
    assert_eq!(stock(&app, &widget).await, 8);
}

#[tokio::test]
async fn the_order_list_filters_by_status_customer_and_creation_range() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let bob = id_of(
        &app.create_customer("t1", "Bob Builder", "bob@example.org")
            .await,
    );
    let widget = id_of(&app.create_product("t1", "Widget", "tools", 100).await);
    let mut orders = Vec::new();
    for customer in [&ada, &bob, &ada, &bob, &ada] {
        let created = app
            .post("/orders", &admin, &order_body(customer, &[(&widget, 1)]))
            .await;
        created.expect_status(201);
        orders.push(created.body.clone());
    }
    let order_ids: Vec<String> = orders.iter().map(id_of).collect();
    set_status(&app, &admin, &order_ids[1], "confirmed")
        .await
        .expect_status(200);
    set_status(&app, &admin, &order_ids[2], "confirmed")
        .await
        .expect_status(200);
    set_status(&app, &admin, &order_ids[4], "cancelled")
        .await
        .expect_status(200);

    let list = |query: Vec<(&'static str, String)>| {
        Reply::read(
            app.request(Method::GET, "/orders", Some(&admin))
                .query(&query),
        )
    };
    let newest_first = |indices: &[usize]| {
        indices
            .iter()
            .map(|&index| order_ids[index].clone())
            .collect::<Vec<_>>()
    };

    assert_eq!(ids(&list(vec![]).await), newest_first(&[4, 3, 2, 1, 0]));
    assert_eq!(
        ids(&list(vec![("status", "confirmed".into())]).await),
        newest_first(&[2, 1])
    );
    assert_eq!(
        ids(&list(vec![("status", "pending".into())]).await),
        newest_first(&[3, 0])
    );
    assert_eq!(
        ids(&list(vec![("customerId", ada.clone())]).await),
        newest_first(&[4, 2, 0])
    );
    assert_eq!(
        ids(&list(vec![
            ("customerId", ada.clone()),
            ("status", "confirmed".into())
        ])
        .await),
        newest_first(&[2])
    );
    // createdFrom is inclusive, createdTo exclusive.
    let third = orders[2]["createdAt"].as_str().unwrap().to_owned();
    let fourth = orders[3]["createdAt"].as_str().unwrap().to_owned();
    assert_eq!(
        ids(&list(vec![("createdFrom", third.clone())]).await),
        newest_first(&[4, 3, 2])
    );
    assert_eq!(
        ids(&list(vec![("createdTo", third.clone())]).await),
        newest_first(&[1, 0])
    );
    assert_eq!(
        ids(&list(vec![
            ("createdFrom", third.clone()),
            ("createdTo", fourth.clone())
        ])
        .await),
        newest_first(&[2])
    );
    // An offset form of the same instant (its `+` must survive the envelope).
    let offset = third.replace('Z', "+00:00");
    assert_eq!(
        ids(&list(vec![("createdFrom", offset)]).await),
        newest_first(&[4, 3, 2])
    );

    // Filters and paging together: the token carries on the same filtered listing.
    let page = list(vec![("customerId", ada.clone()), ("limit", "2".into())]).await;
    assert_eq!(ids(&page), newest_first(&[4, 2]));
    let token = page.body["continuation"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let next = list(vec![
        ("customerId", ada.clone()),
        ("limit", "2".into()),
        ("continuation", token.clone()),
    ])
    .await;
    assert_eq!(ids(&next), newest_first(&[0]));
    assert!(next.body.get("continuation").is_none());
    // ...and refuses to carry on a listing with other filters.
    let crossed = list(vec![
        ("customerId", bob.clone()),
        ("limit", "2".into()),
        ("continuation", token),
    ])
    .await;
    assert_eq!(
        crossed.expect_problem(400).clone()["errors"][0]["field"],
        "continuation"
    );

    // Bad parameters are 400 naming each.
    let bad = list(vec![
        ("status", "lost".into()),
        ("createdFrom", "yesterday".into()),
        ("customerId", "a/b".into()),
        ("sort", "asc".into()),
    ])
    .await;
    bad.expect_problem(400);
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(fields, ["createdFrom", "customerId", "sort", "status"]);
}

#[tokio::test]
async fn a_client_sees_creates_and_cancels_only_their_own_orders() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let bob = id_of(
        &app.create_customer("t1", "Bob Builder", "bob@example.org")
            .await,
    );
    let widget = id_of(&app.create_product("t1", "Widget", "tools", 10).await);
    let bobs = id_of(
        &app.post("/orders", &admin, &order_body(&bob, &[(&widget, 1)]))
            .await
            .body,
    );
    let client = app.client_of("t1", &ada);

    // Ordering for themselves, with or without naming their own id.
    let own = app
        .post(
            "/orders",
            &client,
            &json!({"items": [{"productId": widget, "quantity": 2}]}),
        )
        .await;
    own.expect_status(201);
    assert_eq!(own.body["customerId"], ada.as_str());
    let adas = id_of(&own.body);
    app.post("/orders", &client, &order_body(&ada, &[(&widget, 1)]))
        .await
        .expect_status(201);
    // Ordering for someone else is ordering for nobody they can see.
    app.post("/orders", &client, &order_body(&bob, &[(&widget, 1)]))
        .await
        .expect_problem(404);
    assert_eq!(stock(&app, &widget).await, 6);

    let listed = app.get("/orders", &client).await;
    listed.expect_status(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|order| order["customerId"] == ada.as_str()),
        "{}",
        listed.text
    );
    let asked_for_bob = app.get(&format!("/orders?customerId={bob}"), &client).await;
    assert_eq!(asked_for_bob.expect_status(200).body["items"], json!([]));

    // Another customer's order looks missing, on every route.
    let foreign = app.get(&format!("/orders/{bobs}"), &client).await;
    let missing = app.get("/orders/no-such-order", &client).await;
    foreign.expect_problem(404);
    assert_eq!(foreign.body, missing.expect_problem(404).clone());
    app.get(&format!("/orders/{bobs}/history"), &client)
        .await
        .expect_problem(404);
    set_status(&app, &client, &bobs, "cancelled")
        .await
        .expect_problem(404);
    assert_eq!(
        app.get(&format!("/orders/{bobs}"), &admin).await.body["status"],
        "pending"
    );

    // Their own: readable, cancellable while pending, never moved along by them.
    app.get(&format!("/orders/{adas}"), &client)
        .await
        .expect_status(200);
    assert_eq!(
        set_status(&app, &client, &adas, "confirmed")
            .await
            .expect_problem(403)["title"],
        "Forbidden"
    );
    set_status(&app, &client, &adas, "shipped")
        .await
        .expect_problem(403);
    let cancelled = set_status(&app, &client, &adas, "cancelled").await;
    assert_eq!(cancelled.expect_status(200).body["status"], "cancelled");
    assert_eq!(
        stock(&app, &widget).await,
        8,
        "the cancelled order's stock is back"
    );
    assert_eq!(events_of(&app, &adas).await, ["created", "cancelled"]);

    // Another tenant sees none of it.
    let outsider = app.admin("t2");
    app.get(&format!("/orders/{adas}"), &outsider)
        .await
        .expect_problem(404);
    assert_eq!(app.get("/orders", &outsider).await.body["items"], json!([]));
}

#[tokio::test]
async fn orders_follow_the_state_machine_with_history_and_one_event_per_change() {
    let app = ApiApp::start(&[]).await;
    let manager = app.employee("t1", &[Role::OrderManager]);
    let customer = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let widget = id_of(&app.create_product("t1", "Widget", "tools", 10).await);
    let created = app
        .post("/orders", &manager, &order_body(&customer, &[(&widget, 2)]))
        .await;
    created.expect_status(201);
    let order = id_of(&created.body);

    // Skipping a step is refused, naming the allowed moves; so is an unknown status.
    let skipped = set_status(&app, &manager, &order, "shipped").await;
    let problem = skipped.expect_problem(409);
    assert_eq!(problem["title"], "Illegal Status Transition");
    assert_eq!(problem["allowed"], json!(["confirmed", "cancelled"]));
    app.put(
        &format!("/orders/{order}/status"),
        &manager,
        &json!({"status": "lost"}),
    )
    .await
    .expect_problem(400);
    app.put(
        &format!("/orders/{order}/status"),
        &manager,
        &json!({"status": "confirmed", "why": "x"}),
    )
    .await
    .expect_problem(400);

    // A stale If-Match loses.
    let stale = Reply::read(
        app.request(
            Method::PUT,
            &format!("/orders/{order}/status"),
            Some(&manager),
        )
        .header("if-match", "\"not-the-current-etag\"")
        .json(&json!({"status": "confirmed"})),
    )
    .await;
    stale.expect_problem(412);

    let mut etag = created.header("etag").unwrap().to_owned();
    for status in ["confirmed", "shipped", "delivered"] {
        let moved = Reply::read(
            app.request(
                Method::PUT,
                &format!("/orders/{order}/status"),
                Some(&manager),
            )
            .header("if-match", &etag)
            .json(&json!({"status": status, "reason": format!("now {status}")})),
        )
        .await;
        moved.expect_status(200);
        assert_eq!(moved.body["status"], status);
        let next = moved.header("etag").unwrap().to_owned();
        assert_ne!(next, etag);
        etag = next;
        assert_eq!(
            app.get(&format!("/orders/{order}"), &manager).await.body["status"],
            status
        );
    }

    // A delivered order can only come back (returned); shipped could not have been cancelled
    // either.
    let after_delivery = set_status(&app, &manager, &order, "cancelled").await;
    assert_eq!(
        after_delivery.expect_problem(409)["allowed"],
        json!(["returned"])
    );
    let shipped = id_of(
        &app.post("/orders", &manager, &order_body(&customer, &[(&widget, 1)]))
            .await
            .body,
    );
    set_status(&app, &manager, &shipped, "confirmed")
        .await
        .expect_status(200);
    set_status(&app, &manager, &shipped, "shipped")
        .await
        .expect_status(200);
    let too_late = set_status(&app, &manager, &shipped, "cancelled").await;
    let problem = too_late.expect_problem(409);
    assert_eq!(problem["allowed"], json!(["delivered", "returned"]));
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("allowed: delivered, returned"),
        "{problem}"
    );
    assert_eq!(
        app.get(&format!("/orders/{shipped}"), &manager).await.body["status"],
        "shipped"
    );
    assert_eq!(
        stock(&app, &widget).await,
        7,
        "refused cancellations release nothing"
    );

    // The history lists every change, in order, with who and why.
    let history = app.get(&format!("/orders/{order}/history"), &manager).await;
    history.expect_status(200);
    assert_eq!(history.body["orderId"], order.as_str());
    let changes = history.body["history"].as_array().unwrap();
    let statuses: Vec<&str> = changes
        .iter()
        .map(|change| change["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "confirmed", "shipped", "delivered"]);
    assert!(changes
        .iter()
        .all(|change| change["actorId"] == "dev-employee"));
    assert_eq!(changes[2]["reason"], "now shipped");
    let times: Vec<&str> = changes
        .iter()
        .map(|change| change["at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
    app.get("/orders/no-such-order/history", &manager)
        .await
        .expect_problem(404);

    // Exactly one event per change, of the right type, and none for the refused moves.
    assert_eq!(
        events_of(&app, &order).await,
        ["created", "confirmed", "shipped", "delivered"]
    );
    assert_eq!(
        events_of(&app, &shipped).await,
        ["created", "confirmed", "shipped"]
    );
    let events = app.messages_on(EVENTS).await;
    assert_eq!(events.len(), 7);
    for event in &events {
        assert_eq!(event["tenantId"], "t1");
        assert_eq!(event["customerId"], customer.as_str());
        assert!(
            event["eventId"].is_string() && event["occurredAt"].is_string(),
            "{event}"
        );
        assert!(
            !event.to_string().contains("ada@example.org"),
            "ids only: {event}"
        );
    }
    let event_ids: HashSet<&str> = events
        .iter()
        .map(|event| event["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(event_ids.len(), 7, "event ids are unique");
}

#[tokio::test]
async fn cancelling_before_shipping_releases_the_reserved_stock() {
    let app = ApiApp::start(&[]).await;
    let manager = app.employee("t1", &[Role::OrderManager]);
    let customer = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let widget = id_of(&app.create_product("t1", "Widget", "tools", 10).await);
    let gadget = id_of(&app.create_product("t1", "Gadget", "tools", 5).await);

    let pending = id_of(
        &app.post(
            "/orders",
            &manager,
            &order_body(&customer, &[(&widget, 3), (&gadget, 2)]),
        )
        .await
        .body,
    );
    let confirmed = id_of(
        &app.post("/orders", &manager, &order_body(&customer, &[(&widget, 1)]))
            .await
            .body,
    );
    set_status(&app, &manager, &confirmed, "confirmed")
        .await
        .expect_status(200);
    assert_eq!(
        (stock(&app, &widget).await, stock(&app, &gadget).await),
        (6, 3)
    );

    let cancelled = app
        .put(
            &format!("/orders/{pending}/status"),
            &manager,
            &json!({"status": "cancelled", "reason": "customer changed their mind"}),
        )
        .await;
    assert_eq!(cancelled.expect_status(200).body["status"], "cancelled");
    assert_eq!(
        (stock(&app, &widget).await, stock(&app, &gadget).await),
        (9, 5)
    );
    set_status(&app, &manager, &confirmed, "cancelled")
        .await
        .expect_status(200);
    assert_eq!(stock(&app, &widget).await, 10);

    // Cancelled is final: cancelling again releases nothing more.
    let again = set_status(&app, &manager, &pending, "cancelled").await;
    assert_eq!(again.expect_problem(409)["allowed"], json!([]));
    assert_eq!(
        (stock(&app, &widget).await, stock(&app, &gadget).await),
        (10, 5)
    );

    let history = app
        .get(&format!("/orders/{pending}/history"), &manager)
        .await;
    let statuses: Vec<&str> = history.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "cancelled"]);
    assert_eq!(
        history.body["history"][1]["reason"],
        "customer changed their mind"
    );
    assert_eq!(events_of(&app, &pending).await, ["created", "cancelled"]);
    assert_eq!(
        events_of(&app, &confirmed).await,
        ["created", "confirmed", "cancelled"]
    );
}
