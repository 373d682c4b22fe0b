//! `CustomersApi` over real HTTP on loopback, through the local runtime's host envelope (the
//! function has a Service Bus output, so the host wraps each request).
//!
//! Proves: create (201, `Location`, `ETag`), read, update with `If-Match` (new ETag; 412 on a
//! stale one); paging by continuation token without duplicates or gaps, stable when a customer
//! is inserted between page reads; tenant isolation (another tenant's customer answers exactly
//! like a missing one) and client isolation (a client sees and changes only their own record);
//! a customer's orders; the GDPR export with profile, orders, notifications and audit trail; the
//! erasure request (202 with a status URL, one message on `gdpr-requests`, idempotent, the
//! profile read-only afterwards); body validation on the enveloped path (400 listing every bad
//! field, unknown fields, malformed JSON, 413, 415).

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

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", reply.text))
        .iter()
        .map(id_of)
        .collect()
}

#[tokio::test]
async fn create_read_and_update_with_etags_and_a_412_for_a_stale_if_match() {
    let app = ApiApp::start(&[]).await;
    let staff = app.employee("t1", &[Role::CustomerService]);
    let body = json!({
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "phone": "+4915112345678",
        "address": {"line1": "1 Analytical Way", "city": "London", "postalCode": "N1 9GU", "country": "GB"},
    });
    let created = app.post("/customers", &staff, &body).await;
    created.expect_status(201);
    let id = id_of(&created.body);
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/customers/{id}").as_str())
    );
    let first_etag = created.header("etag").expect("an ETag").to_owned();
    assert!(
        first_etag.starts_with('"') && first_etag.ends_with('"') && first_etag.len() > 2,
        "{first_etag}"
    );
    assert_eq!(created.body["name"], "Ada Lovelace");
    assert_eq!(created.body["email"], "ada@example.org");
    assert_eq!(created.body["address"]["country"], "GB");
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["tenantId"], "t1");
    assert_eq!(
        created.body["preferences"],
        json!({"inApp": true, "email": true, "sms": false})
    );

    let read = app.get(&format!("/customers/{id}"), &staff).await;
    read.expect_status(200);
    assert_eq!(read.header("etag"), Some(first_etag.as_str()));
    assert_eq!(read.body, created.body);

    let changed = json!({"name": "Ada King", "email": "ada.king@example.org"});
    let updated = Reply::read(
        app.request(Method::PUT, &format!("/customers/{id}"), Some(&staff))
            .header("if-match", &first_etag)
            .json(&changed),
    )
    .await;
    updated.expect_status(200);
    let second_etag = updated.header("etag").expect("a new ETag").to_owned();
    assert_ne!(second_etag, first_etag);
    assert_eq!(updated.body["name"], "Ada King");
    assert_eq!(updated.body["email"], "ada.king@example.org");
    assert!(
        updated.body.get("address").is_none(),
        "PUT replaces the profile: {}",
        updated.text
    );

    // A writer still holding the first version loses, and is told the current ETag.
    let stale = json!({"name": "Lost Update", "email": "lost@example.org"});
    let refused = Reply::read(
        app.request(Method::PUT, &format!("/customers/{id}"), Some(&staff))
            .header("if-match", &first_etag)
            .json(&stale),
    )
    .await;
    let problem = refused.expect_problem(412);
    assert_eq!(problem["currentETag"], second_etag.as_str());
    let now = app.get(&format!("/customers/{id}"), &staff).await;
    assert_eq!(now.body["name"], "Ada King");
    assert_eq!(now.header("etag"), Some(second_etag.as_str()));

    // The current ETag goes through.
    let again = Reply::read(
        app.request(Method::PUT, &format!("/customers/{id}"), Some(&staff))
            .header("if-match", &second_etag)
            .json(&stale),
    )
    .await;
    again.expect_status(200);

    // Two writers racing with the same current ETag: exactly one wins.
    let third_etag = again.header("etag").unwrap().to_owned();
    let write = |name: &'static str| {
        Reply::read(
            app.request(Method::PUT, &format!("/customers/{id}"), Some(&staff))
                .header("if-match", &third_etag)
                .json(&json!({"name": name, "email": "race@example.org"})),
        )
    };
    let (one, two) = tokio::join!(write("Racer One"), write("Racer Two"));
    let mut statuses = [one.status, two.status];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{} / {}", one.text, two.text);
    let winner = if one.status == 200 { &one } else { &two };
    assert_eq!(
        app.get(&format!("/customers/{id}"), &staff).await.body["name"],
        winner.body["name"]
    );

    let missing = app.get("/customers/no-such-customer", &staff).await;
    missing.expect_problem(404);
    let missing_update = app
        .put("/customers/no-such-customer", &staff, &changed)
        .await;
    missing_update.expect_problem(404);
}

#[tokio::test]
async fn the_customer_list_pages_by_continuation_token_without_duplicates_and_stays_stable_under_inserts(
) {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(id_of(
            &app.create_customer("t1", &format!("Customer {n}"), &format!("c{n}@example.org"))
                .await,
        ));
    }

    // A full pass: 3, 3, 1, in creation order, the last page without a token.
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut request = app
            .request(Method::GET, "/customers", Some(&admin))
            .query(&[("limit", "3")]);
        if let Some(token) = &continuation {
            request = request.query(&[("continuation", token)]);
        }
        let page = Reply::read(request).await;
        page.expect_status(200);
        sizes.push(ids(&page).len());
        seen.extend(ids(&page));
        continuation = page.body["continuation"].as_str().map(str::to_owned);
        if continuation.is_none() {
            assert!(
                page.body.get("continuation").is_none(),
                "no continuation member on the last page: {}",
                page.text
            );
            break;
        }
        assert!(sizes.len() < 5, "paging does not end");
    }
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(seen, created);

    // A customer created while a client pages neither shifts nor repeats anything.
    let first = app.get("/customers?limit=3", &admin).await;
    let token = first.body["continuation"]
        .as_str()
        .expect("more pages")
        .to_owned();
    let late = id_of(
        &app.create_customer("t1", "Late Comer", "late@example.org")
            .await,
    );
    let mut seen = ids(&first);
    let mut continuation = Some(token);
    while let Some(token) = continuation {
        let page = Reply::read(
            app.request(Method::GET, "/customers", Some(&admin))
                .query(&[("limit", "3"), ("continuation", token.as_str())]),
        )
        .await;
        page.expect_status(200);
        seen.extend(ids(&page));
        continuation = page.body["continuation"].as_str().map(str::to_owned);
        assert!(seen.len() <= 8, "more items than customers: {seen:?}");
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates: {seen:?}");
    let mut expected = created.clone();
    expected.push(late);
    assert_eq!(seen, expected, "every customer once, in creation order");

    // The default page and the largest one hold everything here.
    assert_eq!(ids(&app.get("/customers", &admin).await).len(), 8);
    assert_eq!(ids(&app.get("/customers?limit=100", &admin).await).len(), 8);
}

#[tokio::test]
async fn another_tenants_customer_answers_exactly_like_a_missing_one() {
    let app = ApiApp::start(&[]).await;
    let theirs = id_of(
        &app.create_customer("tenant-a", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let intruder = app.admin("tenant-b");
    app.create_customer("tenant-b", "Bob Builder", "bob@example.org")
        .await;

    let foreign = app.get(&format!("/customers/{theirs}"), &intruder).await;
    let missing = app
        .get("/customers/0b5d2c1e-0000-4000-8000-000000000000", &intruder)
        .await;
    foreign.expect_problem(404);
    missing.expect_problem(404);
    assert_eq!(foreign.body["title"], missing.body["title"]);
    assert_eq!(foreign.body, missing.body, "nothing tells the two apart");
    assert!(
        !foreign.text.contains("tenant-a") && !foreign.text.contains(&theirs),
        "{}",
        foreign.text
    );

    // A tenant header is no way in: the tenant comes from the token only.
    let with_header = Reply::read(
        app.request(
            Method::GET,
            &format!("/customers/{theirs}"),
            Some(&intruder),
        )
        .header("x-tenant-id", "tenant-a"),
    )
    .await;
    with_header.expect_problem(404);

    // Nor is any other route about that customer.
    let change = json!({"name": "Hijacked", "email": "evil@example.org"});
    let attempts = [
        app.put(&format!("/customers/{theirs}"), &intruder, &change)
            .await,
        app.get(&format!("/customers/{theirs}/orders"), &intruder)
            .await,
        app.post(
            &format!("/customers/{theirs}/gdpr/export"),
            &intruder,
            &json!({}),
        )
        .await,
        app.delete(&format!("/customers/{theirs}"), &intruder).await,
    ];
    for attempt in &attempts {
        attempt.expect_problem(404);
        assert_eq!(
            attempt.body["title"], missing.body["title"],
            "{}",
            attempt.text
        );
    }
    let listed = app.get("/customers", &intruder).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["items"][0]["name"], "Bob Builder");

    // Tenant A's customer is untouched and no erasure was queued.
    let owner = app
        .get(&format!("/customers/{theirs}"), &app.admin("tenant-a"))
        .await;
    assert_eq!(owner.expect_status(200).body["name"], "Ada Lovelace");
    assert_eq!(owner.body["status"], "active");
    assert!(app.messages_on("gdpr-requests").await.is_empty());
}

#[tokio::test]
async fn a_client_sees_and_changes_only_their_own_customer_record() {
    let app = ApiApp::start(&[]).await;
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let bob = id_of(
        &app.create_customer("t1", "Bob Builder", "bob@example.org")
            .await,
    );
    let client = app.client_of("t1", &ada);

    let listed = app.get("/customers", &client).await;
    listed.expect_status(200);
    assert_eq!(
        ids(&listed),
        std::slice::from_ref(&ada),
        "a client's list is themselves: {}",
        listed.text
    );

    app.get(&format!("/customers/{ada}"), &client)
        .await
        .expect_status(200);
    let other = app.get(&format!("/customers/{bob}"), &client).await;
    let missing = app.get("/customers/nobody", &client).await;
    other.expect_problem(404);
    assert_eq!(other.body, missing.expect_problem(404).clone());
    app.get(&format!("/customers/{bob}/orders"), &client)
        .await
        .expect_problem(404);
    app.put(
        &format!("/customers/{bob}"),
        &client,
        &json!({"name": "Hijacked", "email": "evil@example.org"}),
    )
    .await
    .expect_problem(404);
    app.post(
        &format!("/customers/{bob}/gdpr/export"),
        &client,
        &json!({}),
    )
    .await
    .expect_problem(404);
    app.delete(&format!("/customers/{bob}"), &client)
        .await
        .expect_problem(404);

    // Their own profile they may correct.
    let own = app
        .put(
            &format!("/customers/{ada}"),
            &client,
            &json!({"name": "Ada King", "email": "ada@example.org"}),
        )
        .await;
    assert_eq!(own.expect_status(200).body["name"], "Ada King");
    // Clients do not create customers.
    app.post(
        "/customers",
        &client,
        &json!({"name": "New", "email": "new@example.org"}),
    )
    .await
    .expect_problem(403);
    let bob_now = app
        .get(&format!("/customers/{bob}"), &app.admin("t1"))
        .await;
    assert_eq!(bob_now.body["name"], "Bob Builder");
}

#[tokio::test]
async fn a_customers_orders_are_listed_under_the_customer() {
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
    let product = id_of(&app.create_product("t1", "Widget", "tools", 100).await);
    let mut adas = Vec::new();
    for customer in [&ada, &bob, &ada, &ada] {
        let order = app
            .post(
                "/orders",
                &admin,
                &json!({"customerId": customer, "items": [{"productId": product, "quantity": 1}]}),
            )
            .await;
        let order_id = id_of(&order.expect_status(201).body);
        if customer == &ada {
            adas.push(order_id);
        }
    }
    let listed = app.get(&format!("/customers/{ada}/orders"), &admin).await;
    listed.expect_status(200);
    let mut listed_ids = ids(&listed);
    assert!(listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|order| order["customerId"] == ada.as_str()));
    listed_ids.sort();
    adas.sort();
    assert_eq!(listed_ids, adas);

    // Paged like every listing; the client sees their own the same way.
    let page = app
        .get(
            &format!("/customers/{ada}/orders?limit=2"),
            &app.client_of("t1", &ada),
        )
        .await;
    assert_eq!(ids(&page).len(), 2);
    assert!(page.body["continuation"].is_string());
    app.get("/customers/nobody/orders", &admin)
        .await
        .expect_problem(404);
}

#[tokio::test]
async fn the_gdpr_export_holds_profile_orders_notifications_and_audit_trail() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let staff = app.employee("t1", &[Role::CustomerService]);
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let bob = id_of(
        &app.create_customer("t1", "Bob Builder", "bob@example.org")
            .await,
    );
    let product = id_of(&app.create_product("t1", "Widget", "tools", 100).await);
    let order = app
        .post(
            "/orders",
            &admin,
            &json!({"customerId": ada, "items": [{"productId": product, "quantity": 2}]}),
        )
        .await;
    let order_id = id_of(&order.expect_status(201).body);
    app.post(
        "/orders",
        &admin,
        &json!({"customerId": bob, "items": [{"productId": product, "quantity": 1}]}),
    )
    .await
    .expect_status(201);
    let sent = app
        .post(
            "/notifications",
            &staff,
            &json!({"customerId": ada, "title": "Welcome", "message": "Hello Ada"}),
        )
        .await;
    let notification_id = id_of(&sent.expect_status(201).body);
    app.post(
        "/notifications",
        &staff,
        &json!({"customerId": bob, "title": "Welcome", "message": "Hello Bob"}),
    )
    .await
    .expect_status(201);

    let export = app
        .post(&format!("/customers/{ada}/gdpr/export"), &staff, &json!({}))
        .await;
    export.expect_status(200);
    let body = &export.body;
    assert_eq!(body["customer"]["id"], ada.as_str());
    assert_eq!(body["customer"]["email"], "ada@example.org");
    let orders: Vec<&str> = body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(orders, [order_id.as_str()], "only Ada's orders");
    assert_eq!(body["orders"][0]["items"][0]["quantity"], 2);
    let notifications: Vec<&str> = body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        notifications,
        [notification_id.as_str()],
        "only Ada's notifications"
    );
    let trail = body["auditTrail"].as_array().unwrap();
    let actions: HashSet<&str> = trail
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    for action in ["customer.create", "order.create", "notification.send"] {
        assert!(
            actions.contains(action),
            "{action} missing from {actions:?}"
        );
    }
    assert!(
        trail
            .iter()
            .all(|entry| entry["customerId"] == ada.as_str()),
        "only Ada's trail"
    );
    assert!(body["exportedAt"].is_string());

    // The client may export their own data; the export itself is audited.
    app.post(
        &format!("/customers/{ada}/gdpr/export"),
        &app.client_of("t1", &ada),
        &json!({}),
    )
    .await
    .expect_status(200);
    let audited = app
        .get(
            &format!("/audit/logs?action=gdpr.export&targetId={ada}"),
            &admin,
        )
        .await;
    assert_eq!(
        audited.expect_status(200).body["items"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{}",
        audited.text
    );
    app.post("/customers/nobody/gdpr/export", &staff, &json!({}))
        .await
        .expect_problem(404);
}

#[tokio::test]
async fn delete_records_an_erasure_request_queues_it_once_and_answers_202_with_a_status_url() {
    let app = ApiApp::start(&[]).await;
    let staff = app.employee("t1", &[Role::CustomerService]);
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let bob = id_of(
        &app.create_customer("t1", "Bob Builder", "bob@example.org")
            .await,
    );

    let accepted = app.delete(&format!("/customers/{ada}"), &staff).await;
    accepted.expect_status(202);
    let request_id = accepted.body["requestId"]
        .as_str()
        .expect("a request id")
        .to_owned();
    let status_url = format!("/api/v1/customers/{ada}/gdpr/erasure/{request_id}");
    assert_eq!(accepted.body["statusUrl"], status_url.as_str());
    assert_eq!(accepted.body["status"], "accepted");
    assert_eq!(accepted.header("location"), Some(status_url.as_str()));

    let queued = app.messages_on("gdpr-requests").await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0]["requestId"], request_id.as_str());
    assert_eq!(queued[0]["tenantId"], "t1");
    assert_eq!(queued[0]["customerId"], ada.as_str());
    assert_eq!(queued[0]["requestedBy"], "dev-employee");
    assert!(
        !queued[0].to_string().contains("ada@example.org")
            && !queued[0].to_string().contains("Lovelace"),
        "ids only: {}",
        queued[0]
    );

    let status = app.get_at(&status_url, &staff).await;
    status.expect_status(200);
    assert_eq!(status.body["id"], request_id.as_str());
    assert_eq!(status.body["customerId"], ada.as_str());
    assert_eq!(status.body["status"], "accepted");

    // A repeated DELETE is the same request, not a second one.
    let again = app.delete(&format!("/customers/{ada}"), &staff).await;
    again.expect_status(202);
    assert_eq!(again.body["requestId"], request_id.as_str());
    assert_eq!(again.body["statusUrl"], status_url.as_str());
    let queued = app.messages_on("gdpr-requests").await;
    assert!(
        queued
            .iter()
            .all(|message| message["requestId"] == request_id.as_str()),
        "{queued:?}"
    );

    // The profile is read-only while the erasure is pending; the customer cannot order.
    let customer = app.get(&format!("/customers/{ada}"), &staff).await;
    assert_eq!(customer.body["status"], "erasureRequested");
    let etag = customer.header("etag").unwrap().to_owned();
    let update = Reply::read(
        app.request(Method::PUT, &format!("/customers/{ada}"), Some(&staff))
            .header("if-match", &etag)
            .json(&json!({"name": "Ada King", "email": "ada@example.org"})),
    )
    .await;
    update.expect_problem(409);
    let product = id_of(&app.create_product("t1", "Widget", "tools", 5).await);
    let order = app
        .post(
            "/orders",
            &app.admin("t1"),
            &json!({"customerId": ada, "items": [{"productId": product, "quantity": 1}]}),
        )
        .await;
    order.expect_problem(409);
    assert_eq!(
        app.get(&format!("/products/{product}"), &staff).await.body["stock"],
        5
    );

    // The status URL is the customer's: another customer or tenant finds nothing there.
    app.get(
        &format!("/customers/{bob}/gdpr/erasure/{request_id}"),
        &staff,
    )
    .await
    .expect_problem(404);
    app.get(
        &format!("/customers/{ada}/gdpr/erasure/{request_id}"),
        &app.admin("t2"),
    )
    .await
    .expect_problem(404);
    app.get(
        &format!("/customers/{ada}/gdpr/erasure/{request_id}"),
        &app.client_of("t1", &bob),
    )
    .await
    .expect_problem(404);
    app.get(
        &format!("/customers/{ada}/gdpr/erasure/{request_id}"),
        &app.client_of("t1", &ada),
    )
    .await
    .expect_status(200);
}

#[tokio::test]
async fn customer_bodies_are_validated_on_the_enveloped_path() {
    let app = ApiApp::start(&[]).await;
    let staff = app.employee("t1", &[Role::CustomerService]);

    let three_bad = app
        .post(
            "/customers",
            &staff,
            &json!({"name": "  ", "email": "not-an-email", "phone": "12345"}),
        )
        .await;
    three_bad.expect_problem(400);
    let fields = three_bad.error_fields();
    for field in ["name", "email", "phone"] {
        assert!(
            fields.contains(&field.to_owned()),
            "{field} missing from {fields:?}"
        );
    }
    assert_eq!(fields.len(), 3, "{fields:?}");

    let nested = app.post("/customers", &staff, &json!({"name": "Ada", "email": "ada@example.org", "address": {"line1": "x", "city": "", "postalCode": "1", "country": "gb"}})).await;
    nested.expect_problem(400);
    assert_eq!(nested.error_fields(), ["address.city", "address.country"]);

    let unknown = app
        .post(
            "/customers",
            &staff,
            &json!({"name": "Ada", "email": "ada@example.org", "shoeSize": 38}),
        )
        .await;
    unknown.expect_problem(400);
    assert!(
        unknown.text.contains("shoeSize"),
        "names the unknown field: {}",
        unknown.text
    );

    let malformed = Reply::read(
        app.request(Method::POST, "/customers", Some(&staff))
            .header("content-type", "application/json")
            .body("{\"name\": \"Ada\","),
    )
    .await;
    malformed.expect_problem(400);

    let text = Reply::read(
        app.request(Method::POST, "/customers", Some(&staff))
            .header("content-type", "text/plain")
            .body("name=Ada"),
    )
    .await;
    text.expect_problem(415);

    let huge =
        json!({"name": "Ada", "email": "ada@example.org", "padding": "x".repeat(300 * 1024)});
    let too_large = app.post("/customers", &staff, &huge).await;
    too_large.expect_problem(413);

    assert_eq!(
        app.get("/customers", &staff).await.body["items"],
        json!([]),
        "nothing was created"
    );
}
