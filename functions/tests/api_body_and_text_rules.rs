//! What the API refuses in request bodies and text, over real HTTP on loopback with the whole
//! app in local mode (requests go through the local host exactly as the Functions host forwards
//! them): a JSON array or scalar where an object is required, invalid UTF-8 on every write
//! route, control and invisible formatting characters in names and
//! emails, NUL and bidirectional overrides in free text, a NUL in a query filter. Every refusal
//! is a 400 problem document and stores nothing.

mod common;

use common::{ApiApp, Reply};
use reqwest::Method;
use serde_json::{json, Value};

async fn send_raw(app: &ApiApp, method: Method, path: &str, token: &str, body: Vec<u8>) -> Reply {
    Reply::read(
        app.request(method, path, Some(token))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

async fn count(app: &ApiApp, path: &str) -> usize {
    let reply = app.get(path, &app.admin("t1")).await;
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: {}", reply.text))
        .len()
}

#[tokio::test]
async fn anything_but_a_json_object_is_refused_on_every_body() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let customer = app.create_customer("t1", "Ada", "ada@example.org").await;
    let customer_id = customer["id"].as_str().unwrap();
    let product = app.create_product("t1", "Widget", "tools", 10).await;
    let product_id = product["id"].as_str().unwrap();

    let customer_array = json!(["Array Person", "array@example.org", null, null, null]);
    let order_array = json!([customer_id, [{"productId": product_id, "quantity": 1}], null]);
    let product_array = json!(["Gadget", "tools", null, 100, "EUR", 1, true]);
    let cases: Vec<(Method, String, Value)> = vec![
        (Method::POST, "/customers".into(), customer_array.clone()),
        (
            Method::PUT,
            format!("/customers/{customer_id}"),
            customer_array,
        ),
        (Method::POST, "/orders".into(), order_array),
        (Method::POST, "/products".into(), product_array),
        (
            Method::POST,
            "/notifications".into(),
            json!([customer_id, "Hi", "Hello"]),
        ),
        (Method::POST, "/customers".into(), json!("a string")),
        (Method::POST, "/orders".into(), json!(42)),
        (Method::POST, "/customers".into(), json!(null)),
    ];
    for (method, path, body) in cases {
        let reply = send_raw(
            &app,
            method.clone(),
            &path,
            &admin,
            body.to_string().into_bytes(),
        )
        .await;
        let problem = reply.expect_problem(400);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("JSON object"),
            "{method} {path} {body}: {}",
            reply.text
        );
    }
    assert_eq!(
        count(&app, "/customers").await,
        1,
        "no customer was created"
    );
    assert_eq!(count(&app, "/orders").await, 0, "no order was created");
    assert_eq!(count(&app, "/products").await, 1, "no product was created");
    let stored = app.get(&format!("/customers/{customer_id}"), &admin).await;
    assert_eq!(stored.body["name"], "Ada", "the customer was not changed");
}

#[tokio::test]
async fn invalid_utf8_is_refused_on_every_write_route() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let customer = app.create_customer("t1", "Ada", "ada@example.org").await;
    let customer_id = customer["id"].as_str().unwrap();
    let product = app.create_product("t1", "Widget", "tools", 10).await;
    let product_id = product["id"].as_str().unwrap();

    let with_bad_byte = |json: &str| {
        let mut bytes = json.as_bytes().to_vec();
        let at = json.find("XX").expect("marker") + 1;
        bytes[at] = 0xFF;
        bytes
    };
    let cases = [
        // every write of the API is forwarded (its messages leave through the outbox, not an
        // output binding): the handler sees the bytes themselves
        (
            Method::POST,
            "/customers".to_owned(),
            with_bad_byte(r#"{"name":"AXXa","email":"a@example.org"}"#),
        ),
        (
            Method::PUT,
            format!("/customers/{customer_id}"),
            with_bad_byte(r#"{"name":"AXXa","email":"ada@example.org"}"#),
        ),
        (
            Method::POST,
            "/orders".to_owned(),
            with_bad_byte(&format!(
                r#"{{"customerId":"{customer_id}","items":[{{"productId":"{product_id}","quantity":1}}],"shippingAddress":{{"line1":"MXXn St 1","city":"Berlin","postalCode":"10115","country":"DE"}}}}"#
            )),
        ),
        (
            Method::POST,
            "/products".to_owned(),
            with_bad_byte(
                r#"{"name":"GXXt","category":"tools","priceCents":1,"currency":"EUR","stock":1}"#,
            ),
        ),
    ];
    for (method, path, body) in cases {
        let reply = send_raw(&app, method.clone(), &path, &admin, body).await;
        assert_eq!(reply.status, 400, "{method} {path}: {}", reply.text);
        assert!(
            !reply.text.contains('\u{FFFD}'),
            "{method} {path}: {}",
            reply.text
        );
    }
    assert_eq!(count(&app, "/customers").await, 1);
    assert_eq!(count(&app, "/orders").await, 0);
    assert_eq!(count(&app, "/products").await, 1);
    let stored = app.get(&format!("/customers/{customer_id}"), &admin).await;
    assert_eq!(stored.body["name"], "Ada");

    // A replacement character the client means is accepted, raw (valid UTF-8 on a forwarded
    // route) or escaped.
    app.post(
        "/customers",
        &admin,
        &json!({"name": "Bob \u{FFFD}", "email": "bob@example.org"}),
    )
    .await
    .expect_status(201);
    let escaped = send_raw(
        &app,
        Method::POST,
        "/customers",
        &admin,
        br#"{"name":"Bob \ufffd","email":"bob@example.org"}"#.to_vec(),
    )
    .await;
    escaped.expect_status(201);
}

#[tokio::test]
async fn control_and_invisible_characters_are_refused_in_names_and_emails() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let bad_emails = [
        "a\u{0}b@example.org",
        "a\u{202E}b@example.org",
        "a\u{200B}b@example.org",
    ];
    for email in bad_emails {
        let reply = app
            .post(
                "/customers",
                &admin,
                &json!({"name": "Ada", "email": email}),
            )
            .await;
        assert_eq!(
            reply.expect_problem(400)["errors"][0]["field"],
            "email",
            "{email:?}"
        );
    }
    let bad_names = [
        "Ada\u{200B}",
        "Ada\u{202E}",
        "Ada\u{0}",
        "Ada\nLovelace",
        "\u{FEFF}Ada",
    ];
    for name in bad_names {
        let reply = app
            .post(
                "/customers",
                &admin,
                &json!({"name": name, "email": "ada@example.org"}),
            )
            .await;
        assert_eq!(
            reply.expect_problem(400)["errors"][0]["field"],
            "name",
            "{name:?}"
        );
    }
    assert_eq!(count(&app, "/customers").await, 0);

    // Names that need a joiner are ordinary names.
    app.post(
        "/customers",
        &admin,
        &json!({"name": "محمد\u{200C}رضا", "email": "m@example.org"}),
    )
    .await
    .expect_status(201);
}

#[tokio::test]
async fn free_text_refuses_nul_and_bidi_overrides_but_keeps_line_breaks() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let customer = app.create_customer("t1", "Ada", "ada@example.org").await;
    let customer_id = customer["id"].as_str().unwrap();
    for message in ["pay \u{202E}000,1 EUR", "stop\u{0}here", "a\u{2066}b"] {
        let reply = app
            .post(
                "/notifications",
                &admin,
                &json!({"customerId": customer_id, "title": "Hello", "message": message}),
            )
            .await;
        assert_eq!(
            reply.expect_problem(400)["errors"][0]["field"],
            "message",
            "{message:?}"
        );
    }
    app.post(
        "/notifications",
        &admin,
        &json!({"customerId": customer_id, "title": "Hello", "message": "line one\nline two"}),
    )
    .await
    .expect_status(201);
}

#[tokio::test]
async fn a_nul_in_a_text_filter_is_refused_rather_than_matching_everything() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    app.create_customer("t1", "Ada", "ada@example.org").await;
    app.create_product("t1", "Widget", "tools", 10).await;
    for path in [
        "/products?name=%00zzz",
        "/products?category=%00",
        "/audit/logs?action=%00x",
    ] {
        let reply = app.get(path, &admin).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text);
        assert!(
            reply.text.contains("control characters"),
            "{path}: {}",
            reply.text
        );
    }
    // A filter that matches nothing still matches nothing.
    assert_eq!(count(&app, "/products?name=zzz").await, 0);
}

/// A whole number sent with a zero fraction (`2.0`) is the whole number, as JSON Schema's
/// `integer` says; a real fraction is refused.
#[tokio::test]
async fn whole_numbers_may_be_sent_as_2_0_but_not_as_2_5() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let product = app
        .post(
            "/products",
            &admin,
            &json!({"name": "Kettle", "category": "kitchen", "priceCents": 2999.0, "currency": "EUR", "stock": 10.0}),
        )
        .await;
    let product = product.expect_status(201).body.clone();
    assert_eq!(product["priceCents"], 2999);
    assert_eq!(product["stock"], 10);
    let customer = app.create_customer("t1", "Ada", "ada@example.org").await;
    let order = |quantity: Value| json!({"customerId": customer["id"], "items": [{"productId": product["id"], "quantity": quantity}]});
    let placed = app.post("/orders", &admin, &order(json!(2.0))).await;
    assert_eq!(placed.expect_status(201).body["items"][0]["quantity"], 2);
    let refused = app.post("/orders", &admin, &order(json!(2.5))).await;
    refused.expect_status(400);
}
