//! Preconditions, methods and the order of checks, over real HTTP on loopback with the whole
//! app in local mode:
//! - `PUT /products/{id}` needs `If-Match` (428 without it), so a stock level set from a stale
//!   read cannot wipe out the stock an order reserved in between (412);
//! - `If-Match` follows RFC 9110: strong comparison (a weak tag never matches), an empty header
//!   matches nothing, a list matches when it holds the current tag, a malformed one is 400;
//! - `If-None-Match` on reads answers 304 with the `ETag` and no body;
//! - 405 answers carry `Allow`, and `HEAD` works wherever `GET` does;
//! - a caller who may not do something gets 403 whatever the body.

mod common;

use common::{ApiApp, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use shared::auth::Role;

fn product_body(stock: i64) -> Value {
    json!({"name": "Widget", "category": "tools", "priceCents": 1250, "currency": "EUR", "stock": stock})
}

async fn put_with(
    app: &ApiApp,
    path: &str,
    token: &str,
    if_match: Option<&str>,
    body: &Value,
) -> Reply {
    let mut request = app.request(Method::PUT, path, Some(token)).json(body);
    if let Some(value) = if_match {
        request = request.header("if-match", value);
    }
    Reply::read(request).await
}

#[tokio::test]
async fn a_product_update_needs_if_match_so_reserved_stock_is_never_overwritten() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let customer = app.create_customer("t1", "Ada", "ada@example.org").await;
    let product = app.create_product("t1", "Widget", "tools", 10).await;
    let id = product["id"].as_str().unwrap();
    let path = format!("/products/{id}");
    let read = app.get(&path, &admin).await;
    let stale = read.header("etag").unwrap().to_owned();

    // An order reserves 3 while the admin edits the product read with 10 in stock.
    app.post(
        "/orders",
        &admin,
        &json!({"customerId": customer["id"], "items": [{"productId": id, "quantity": 3}]}),
    )
    .await
    .expect_status(201);

    let blind = put_with(&app, &path, &admin, None, &product_body(10)).await;
    let problem = blind.expect_problem(428);
    assert!(
        problem["detail"].as_str().unwrap().contains("If-Match"),
        "{}",
        blind.text
    );
    let late = put_with(&app, &path, &admin, Some(&stale), &product_body(10)).await;
    late.expect_problem(412);
    assert_eq!(
        app.get(&path, &admin).await.body["stock"],
        7,
        "the reservation stands"
    );

    let current = app
        .get(&path, &admin)
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let updated = put_with(&app, &path, &admin, Some(&current), &product_body(12)).await;
    assert_eq!(updated.expect_status(200).body["stock"], 12);
}

#[tokio::test]
async fn if_match_compares_strongly_and_an_empty_header_matches_nothing() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let customer = app.create_customer("t1", "Ada", "ada@example.org").await;
    let path = format!("/customers/{}", customer["id"].as_str().unwrap());
    let etag = app
        .get(&path, &admin)
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let body = |name: &str| json!({"name": name, "email": "ada@example.org"});

    let weak = format!("W/{etag}");
    put_with(&app, &path, &admin, Some(&weak), &body("Weak"))
        .await
        .expect_problem(412);
    put_with(&app, &path, &admin, Some(""), &body("Empty"))
        .await
        .expect_problem(412);
    put_with(&app, &path, &admin, Some("not-quoted"), &body("Bad"))
        .await
        .expect_problem(400);
    assert_eq!(
        app.get(&path, &admin).await.body["name"],
        "Ada",
        "nothing was written"
    );

    let list = format!("\"something-else\", {etag}");
    let updated = put_with(&app, &path, &admin, Some(&list), &body("Listed")).await;
    assert_eq!(updated.expect_status(200).body["name"], "Listed");
    let star = put_with(&app, &path, &admin, Some("*"), &body("Star")).await;
    assert_eq!(star.expect_status(200).body["name"], "Star");
}

#[tokio::test]
async fn if_none_match_on_a_read_answers_304_without_a_body() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let customer = app.create_customer("t1", "Ada", "ada@example.org").await;
    let product = app.create_product("t1", "Widget", "tools", 10).await;
    for path in [
        format!("/customers/{}", customer["id"].as_str().unwrap()),
        format!("/products/{}", product["id"].as_str().unwrap()),
    ] {
        let etag = app
            .get(&path, &admin)
            .await
            .header("etag")
            .unwrap()
            .to_owned();
        for method in [Method::GET, Method::HEAD] {
            for value in [
                etag.clone(),
                format!("W/{etag}"),
                format!("\"x\", {etag}"),
                "*".into(),
            ] {
                let reply = Reply::read(
                    app.request(method.clone(), &path, Some(&admin))
                        .header("if-none-match", &value),
                )
                .await;
                assert_eq!(
                    reply.status, 304,
                    "{method} {path} If-None-Match {value}: {}",
                    reply.text
                );
                assert_eq!(reply.header("etag"), Some(etag.as_str()));
                assert!(reply.text.is_empty());
            }
        }
        let changed = Reply::read(
            app.request(Method::GET, &path, Some(&admin))
                .header("if-none-match", "\"an-older-version\""),
        )
        .await;
        assert_eq!(
            changed.expect_status(200).header("etag"),
            Some(etag.as_str())
        );
    }
}

#[tokio::test]
async fn a_405_says_which_methods_the_route_takes_and_head_works_wherever_get_does() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let customer = app.create_customer("t1", "Ada", "ada@example.org").await;
    let customer_id = customer["id"].as_str().unwrap();
    let product = app.create_product("t1", "Widget", "tools", 10).await;
    let product_id = product["id"].as_str().unwrap();

    for (method, path) in [
        (Method::DELETE, "/products".to_owned()),
        (Method::PATCH, "/orders".to_owned()),
        (Method::DELETE, format!("/products/{product_id}")),
        (Method::POST, format!("/customers/{customer_id}")),
        (Method::PATCH, "/notifications".to_owned()),
        (Method::OPTIONS, "/customers".to_owned()),
        (Method::POST, "/openapi.json".to_owned()),
    ] {
        let reply = Reply::read(app.request(method.clone(), &path, Some(&admin))).await;
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.text);
        let allow = reply
            .header("allow")
            .unwrap_or_else(|| panic!("{method} {path}: no Allow"));
        assert!(allow.contains("GET"), "{method} {path}: Allow {allow}");
        assert!(
            !allow.contains(method.as_str()),
            "{method} {path}: Allow {allow}"
        );
    }

    for path in [
        "/customers".to_owned(),
        format!("/customers/{customer_id}"),
        "/orders".to_owned(),
        "/products".to_owned(),
        format!("/products/{product_id}"),
        format!("/products/{product_id}/stock"),
        "/notifications".to_owned(),
        "/audit/logs".to_owned(),
        "/openapi.json".to_owned(),
    ] {
        let get = app.get(&path, &admin).await;
        get.expect_status(200);
        let head = Reply::read(app.request(Method::HEAD, &path, Some(&admin))).await;
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(head.text.is_empty(), "HEAD {path} has no body");
        assert_eq!(head.header("etag"), get.header("etag"), "HEAD {path}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "HEAD {path}"
        );
    }
    let live = Reply::read(app.http_at(Method::HEAD, "/api/health/live")).await;
    assert_eq!(live.status, 200, "HEAD /api/health/live");
}

#[tokio::test]
async fn a_caller_who_may_not_do_something_gets_403_whatever_the_body() {
    let app = ApiApp::start(&[]).await;
    let customer = app.create_customer("t1", "Ada", "ada@example.org").await;
    let customer_id = customer["id"].as_str().unwrap();
    let product = app.create_product("t1", "Widget", "tools", 10).await;
    let product_id = product["id"].as_str().unwrap();
    let client = app.client_of("t1", customer_id);
    let customer_service = app.employee("t1", &[Role::CustomerService]);
    let order_manager = app.employee("t1", &[Role::OrderManager]);

    let bodies: [(&str, &[u8]); 4] = [
        ("application/json", b"{\"name\": 42}"),
        ("application/json", b"[1, 2, 3]"),
        ("application/json", b"{not json"),
        ("text/plain", b"hello"),
    ];
    let cases = [
        (Method::POST, "/products".to_owned(), &client),
        (Method::POST, "/products".to_owned(), &customer_service),
        (
            Method::PUT,
            format!("/products/{product_id}"),
            &customer_service,
        ),
        (Method::POST, "/customers".to_owned(), &order_manager),
        (Method::POST, "/customers".to_owned(), &client),
        (Method::POST, "/notifications".to_owned(), &order_manager),
        (Method::POST, "/notifications".to_owned(), &client),
    ];
    for (method, path, token) in &cases {
        for (content_type, body) in &bodies {
            let reply = Reply::read(
                app.request(method.clone(), path, Some(token))
                    .header("content-type", *content_type)
                    .body(body.to_vec()),
            )
            .await;
            assert_eq!(
                reply.status,
                403,
                "{method} {path} with {content_type} {:?}: {}",
                String::from_utf8_lossy(body),
                reply.text
            );
        }
    }
}
