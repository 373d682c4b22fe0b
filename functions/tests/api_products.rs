//! `ProductsApi` over real HTTP on loopback (a forwarded HTTP function in local mode), and the
//! input validation every API shares, shown on it.
//!
//! Proves: `admin` and `order-manager` create and update products (201 with `Location` and
//! `ETag`, `If-Match` with 412 when stale), everyone signed in reads them and their stock,
//! another tenant's product answers 404; listing and search by name (case-insensitive
//! substring, wildcards taken literally) and category, paged; and validation: a 400 problem
//! listing every bad field, unknown and mistyped fields named, malformed JSON 400, bodies over
//! 256 KiB 413 (and a large body within the limit is validated, not refused for size), a wrong
//! or missing content type 415, `limit` outside 1..=100, forged or foreign continuation tokens
//! and unknown query parameters 400 naming the parameter.

mod common;

use std::collections::HashSet;

use common::{ApiApp, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use shared::auth::Role;

fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
        .to_owned()
}

fn names(reply: &Reply) -> Vec<String> {
    reply.expect_status(200);
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", reply.text))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn product(name: &str, category: &str, stock: i64) -> Value {
    json!({"name": name, "category": category, "description": "A fine thing", "priceCents": 999, "currency": "EUR", "stock": stock})
}

#[tokio::test]
async fn catalogue_roles_create_and_update_products_and_everyone_signed_in_reads_them() {
    let app = ApiApp::start(&[]).await;
    let manager = app.employee("t1", &[Role::OrderManager]);
    let admin = app.admin("t1");
    let customer = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );

    let created = app
        .post("/products", &manager, &product("Widget", "tools", 10))
        .await;
    created.expect_status(201);
    let id = id_of(&created.body);
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/products/{id}").as_str())
    );
    let etag = created.header("etag").expect("an ETag").to_owned();
    assert_eq!(created.body["name"], "Widget");
    assert_eq!(created.body["priceCents"], 999);
    assert_eq!(created.body["stock"], 10);
    assert_eq!(created.body["active"], true, "active unless said otherwise");
    app.post("/products", &admin, &product("Gadget", "tools", 1))
        .await
        .expect_status(201);

    // An employee without a role reads no product (every employee operation needs a role).
    app.get(&format!("/products/{id}"), &app.employee("t1", &[]))
        .await
        .expect_problem(403);
    for reader in [
        app.client_of("t1", &customer),
        app.employee("t1", &[Role::CustomerService]),
    ] {
        let read = app.get(&format!("/products/{id}"), &reader).await;
        assert_eq!(read.expect_status(200).body, created.body);
        assert_eq!(read.header("etag"), Some(etag.as_str()));
        let stock = app.get(&format!("/products/{id}/stock"), &reader).await;
        stock.expect_status(200);
        assert_eq!(stock.body["productId"], id.as_str());
        assert_eq!(stock.body["stock"], 10);
        assert!(stock.body["updatedAt"].is_string());
        assert_eq!(
            names(&app.get("/products", &reader).await),
            ["Widget", "Gadget"]
        );
    }

    let changed = json!({"name": "Widget Pro", "category": "tools", "priceCents": 1999, "currency": "EUR", "stock": 25, "active": true});
    let updated = Reply::read(
        app.request(Method::PUT, &format!("/products/{id}"), Some(&manager))
            .header("if-match", &etag)
            .json(&changed),
    )
    .await;
    updated.expect_status(200);
    assert_eq!(updated.body["name"], "Widget Pro");
    assert_eq!(updated.body["stock"], 25);
    assert!(
        updated.body.get("description").is_none(),
        "PUT replaces: {}",
        updated.text
    );
    let new_etag = updated.header("etag").unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let stale = Reply::read(
        app.request(Method::PUT, &format!("/products/{id}"), Some(&admin))
            .header("if-match", &etag)
            .json(&product("Lost", "tools", 0)),
    )
    .await;
    assert_eq!(stale.expect_problem(412)["currentETag"], new_etag.as_str());
    assert_eq!(
        app.get(&format!("/products/{id}/stock"), &admin).await.body["stock"],
        25
    );

    // Another tenant's product, like a missing one, is 404 on every route.
    let outsider = app.admin("t2");
    let foreign = app.get(&format!("/products/{id}"), &outsider).await;
    let missing = app.get("/products/no-such-product", &outsider).await;
    foreign.expect_problem(404);
    assert_eq!(foreign.body, missing.expect_problem(404).clone());
    app.get(&format!("/products/{id}/stock"), &outsider)
        .await
        .expect_problem(404);
    app.put(&format!("/products/{id}"), &outsider, &changed)
        .await
        .expect_problem(404);
    assert_eq!(
        app.get("/products", &outsider).await.body["items"],
        json!([])
    );
    assert_eq!(
        app.get(&format!("/products/{id}"), &admin).await.body["name"],
        "Widget Pro"
    );
}

#[tokio::test]
async fn products_are_listed_and_searched_by_name_and_category() {
    let app = ApiApp::start(&[]).await;
    let token = app.employee("t1", &[Role::CustomerService]);
    for (name, category) in [
        ("Blue Widget", "tools"),
        ("Red widget", "tools"),
        ("Widgetry Handbook", "books"),
        ("Gadget", "tools"),
        ("100% Cotton Shirt", "clothes"),
        ("Cotton_Socks", "clothes"),
    ] {
        app.create_product("t1", name, category, 5).await;
    }
    let list = |query: &[(&str, &str)]| {
        Reply::read(
            app.request(Method::GET, "/products", Some(&token))
                .query(query),
        )
    };
    let search = |query: &[(&str, &str)]| {
        Reply::read(
            app.request(Method::GET, "/products/search", Some(&token))
                .query(query),
        )
    };

    assert_eq!(
        names(&list(&[("name", "WIDGET")]).await),
        ["Blue Widget", "Red widget", "Widgetry Handbook"]
    );
    assert_eq!(
        names(&list(&[("category", "tools")]).await),
        ["Blue Widget", "Red widget", "Gadget"]
    );
    assert_eq!(
        names(&list(&[("name", "widget"), ("category", "tools")]).await),
        ["Blue Widget", "Red widget"]
    );
    assert_eq!(
        names(&search(&[("q", "widget")]).await),
        ["Blue Widget", "Red widget", "Widgetry Handbook"]
    );
    assert_eq!(
        names(&search(&[("q", "widget"), ("category", "books")]).await),
        ["Widgetry Handbook"]
    );
    assert_eq!(
        names(&search(&[("q", "nothing like it")]).await),
        Vec::<String>::new()
    );
    // Wildcards in a search term are literal characters.
    assert_eq!(names(&search(&[("q", "%")]).await), ["100% Cotton Shirt"]);
    assert_eq!(names(&search(&[("q", "_")]).await), ["Cotton_Socks"]);
    // Categories match exactly.
    assert_eq!(
        names(&list(&[("category", "tool")]).await),
        Vec::<String>::new()
    );

    // Paged through, filtered: every match once, the token tied to its filters.
    let first = list(&[("category", "tools"), ("limit", "2")]).await;
    assert_eq!(names(&first), ["Blue Widget", "Red widget"]);
    let token_text = first.body["continuation"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second = list(&[
        ("category", "tools"),
        ("limit", "2"),
        ("continuation", &token_text),
    ])
    .await;
    assert_eq!(names(&second), ["Gadget"]);
    assert!(second.body.get("continuation").is_none());
    let other_filter = list(&[
        ("category", "clothes"),
        ("limit", "2"),
        ("continuation", &token_text),
    ])
    .await;
    assert_eq!(
        other_filter.expect_problem(400).clone()["errors"][0]["field"],
        "continuation"
    );
    // Search takes the same paging.
    let page = search(&[("q", "widget"), ("limit", "1")]).await;
    let mut seen: Vec<String> = names(&page);
    let mut continuation = page.body["continuation"].as_str().map(str::to_owned);
    while let Some(token_text) = continuation {
        let next = search(&[
            ("q", "widget"),
            ("limit", "1"),
            ("continuation", &token_text),
        ])
        .await;
        seen.extend(names(&next));
        continuation = next.body["continuation"].as_str().map(str::to_owned);
        assert!(seen.len() <= 3, "{seen:?}");
    }
    assert_eq!(seen, ["Blue Widget", "Red widget", "Widgetry Handbook"]);
    let bad = search(&[("query", "widget")]).await;
    bad.expect_problem(400);
    assert_eq!(bad.error_fields(), ["query"]);
}

#[tokio::test]
async fn bodies_are_validated_listing_every_bad_field() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");

    let three_bad = app.post("/products", &admin, &json!({"name": "", "category": "tools", "priceCents": 100, "currency": "euro", "stock": -1})).await;
    let problem = three_bad.expect_problem(400).clone();
    assert_eq!(problem["title"], "Invalid Request");
    let mut fields = three_bad.error_fields();
    fields.sort();
    assert_eq!(fields, ["currency", "name", "stock"]);
    assert!(problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .all(|error| error["message"].as_str().is_some_and(|m| !m.is_empty())));

    let unknown = app.post("/products", &admin, &json!({"name": "Widget", "category": "tools", "priceCents": 100, "currency": "EUR", "stock": 1, "colour": "red"})).await;
    unknown.expect_problem(400);
    assert!(
        unknown.text.contains("colour"),
        "names the unknown field: {}",
        unknown.text
    );

    let mistyped = app.post("/products", &admin, &json!({"name": "Widget", "category": "tools", "priceCents": 100, "currency": "EUR", "stock": "ten"})).await;
    mistyped.expect_problem(400);
    assert_eq!(mistyped.error_fields(), ["stock"]);

    let missing = app
        .post(
            "/products",
            &admin,
            &json!({"name": "Widget", "category": "tools", "currency": "EUR", "stock": 1}),
        )
        .await;
    missing.expect_problem(400);
    assert!(
        missing.text.contains("priceCents"),
        "names the missing field: {}",
        missing.text
    );

    let malformed = Reply::read(
        app.request(Method::POST, "/products", Some(&admin))
            .header("content-type", "application/json")
            .body("{\"name\": \"Widget\""),
    )
    .await;
    assert_eq!(malformed.expect_problem(400)["title"], "Bad Request");
    let trailing = Reply::read(
        app.request(Method::POST, "/products", Some(&admin))
            .header("content-type", "application/json")
            .body(product("Widget", "tools", 1).to_string() + "{}"),
    )
    .await;
    trailing.expect_problem(400);

    // Over the 256 KiB limit: 413. Just under it: read and validated (the description is too long).
    let mut oversized = product("Widget", "tools", 1);
    oversized["description"] = json!("x".repeat(300 * 1024));
    app.post("/products", &admin, &oversized)
        .await
        .expect_problem(413);
    let mut large = product("Widget", "tools", 1);
    large["description"] = json!("x".repeat(250 * 1024));
    let large = app.post("/products", &admin, &large).await;
    large.expect_problem(400);
    assert_eq!(large.error_fields(), ["description"]);

    let form = Reply::read(
        app.request(Method::POST, "/products", Some(&admin))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=Widget"),
    )
    .await;
    form.expect_problem(415);
    let untyped = Reply::read(
        app.request(Method::POST, "/products", Some(&admin))
            .body(product("Widget", "tools", 1).to_string()),
    )
    .await;
    untyped.expect_problem(415);
    let with_charset = Reply::read(
        app.request(Method::POST, "/products", Some(&admin))
            .header("content-type", "application/json; charset=utf-8")
            .body(product("Charset", "tools", 1).to_string()),
    )
    .await;
    with_charset.expect_status(201);

    assert_eq!(
        names(&app.get("/products", &admin).await),
        ["Charset"],
        "only the valid body created a product"
    );
}

#[tokio::test]
async fn query_parameters_are_validated_naming_the_parameter() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    for n in 0..3 {
        app.create_product("t1", &format!("Product {n}"), "tools", 1)
            .await;
    }
    let get = |query: &'static str| {
        Reply::read(app.request(Method::GET, &format!("/products{query}"), Some(&admin)))
    };

    for query in ["?limit=0", "?limit=101", "?limit=ten", "?limit=-1"] {
        let reply = get(query).await;
        reply.expect_problem(400);
        assert_eq!(reply.error_fields(), ["limit"], "{query}");
    }
    assert_eq!(names(&get("?limit=1").await).len(), 1);
    assert_eq!(names(&get("?limit=100").await).len(), 3);

    let unknown = get("?limit=2&sort=name").await;
    unknown.expect_problem(400);
    assert_eq!(unknown.error_fields(), ["sort"]);
    assert!(
        unknown.text.contains("limit"),
        "says which parameters exist: {}",
        unknown.text
    );

    // Continuation tokens: made up, tampered, or from another listing.
    let page = get("?limit=2").await;
    let token = page.body["continuation"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let mut tampered = token.clone();
    tampered.insert(5, 'x');
    let customers_token = {
        for n in 0..2 {
            app.create_customer("t1", &format!("Customer {n}"), &format!("c{n}@example.org"))
                .await;
        }
        app.get("/customers?limit=1", &admin).await.body["continuation"]
            .as_str()
            .expect("customer token")
            .to_owned()
    };
    for (case, forged) in [
        ("made up", "bm90LWEtdG9rZW4".to_owned()),
        ("not base64", "!!!".to_owned()),
        ("tampered", tampered),
        ("from the customer listing", customers_token),
        (
            "from another filter",
            app.get("/products?limit=1&name=product", &admin).await.body["continuation"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
    ] {
        let reply = Reply::read(
            app.request(Method::GET, "/products", Some(&admin))
                .query(&[("limit", "2"), ("continuation", forged.as_str())]),
        )
        .await;
        let problem = reply.expect_problem(400);
        assert_eq!(
            problem["title"], "Invalid Continuation Token",
            "{case}: {}",
            reply.text
        );
        assert_eq!(reply.error_fields(), ["continuation"], "{case}");
    }
    let next = Reply::read(
        app.request(Method::GET, "/products", Some(&admin))
            .query(&[("limit", "2"), ("continuation", token.as_str())]),
    )
    .await;
    assert_eq!(names(&next), ["Product 2"]);

    // Every API checks its parameters the same way.
    for path in [
        "/customers?limit=0",
        "/orders?limit=101",
        "/notifications?limit=0",
        "/audit/logs?limit=101",
    ] {
        let reply = app.get(path, &admin).await;
        reply.expect_problem(400);
        assert_eq!(reply.error_fields(), ["limit"], "{path}");
    }
    for path in [
        "/customers?page=2",
        "/orders?page=2",
        "/notifications?page=2",
        "/audit/logs?page=2",
    ] {
        let reply = app.get(path, &admin).await;
        reply.expect_problem(400);
        assert_eq!(reply.error_fields(), ["page"], "{path}");
    }
    let all: HashSet<String> = names(&get("").await).into_iter().collect();
    assert_eq!(all.len(), 3);
}

#[tokio::test]
async fn a_method_a_route_does_not_take_is_405_as_a_problem_document() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let id = id_of(&app.create_product("t1", "Widget", "tools", 1).await);
    for (method, path) in [
        (Method::DELETE, "/products".to_owned()),
        (Method::DELETE, format!("/products/{id}")),
        (Method::PUT, "/audit/logs".to_owned()),
    ] {
        let reply = Reply::read(app.request(method.clone(), &path, Some(&admin))).await;
        reply.expect_problem(405);
        assert!(
            reply
                .header("allow")
                .is_some_and(|allow| allow.contains("GET")),
            "{method} {path}: {:?}",
            reply.headers
        );
    }
    assert_eq!(
        app.get(&format!("/products/{id}"), &admin)
            .await
            .expect_status(200)
            .body["name"],
        "Widget"
    );
}
