//! `NotificationsApi` and `AuditApi` over real HTTP on loopback, and the audit trail every
//! write of the API leaves behind.
//!
//! Proves: staff (`customer-service`, `admin`) send a customer a notification; the client lists
//! their own, unread first then newest first, paged, and marks them read (another client, an
//! employee or another tenant finds nothing to mark); employees see only notifications
//! addressed to one of their roles. Every write appends exactly one audit entry carrying actor
//! id, action, target id, tenant, time and correlation id, and no entry holds the customer's
//! name, email, phone or a message text; `GET /audit/logs` is admin-only, filtered and paged;
//! `GET /audit/gdpr/{customerId}` lists one customer's trail; an `x-correlation-id` sent with a
//! request is the correlation id of its audit entries (else the W3C trace id).

mod common;

use std::collections::{BTreeMap, HashSet};

use common::{ApiApp, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use shared::auth::Role;
use shared::domain::audit::AuditEntry;
use shared::domain::notification::{Notification, Recipient};
use shared::domain::tenant::TenantId;

fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
        .to_owned()
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.expect_status(200);
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", reply.text))
        .iter()
        .map(id_of)
        .collect()
}

/// Every audit entry of the admin's tenant, newest first, read page by page.
async fn whole_trail(app: &ApiApp, admin: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut request = app
            .request(Method::GET, "/audit/logs", Some(admin))
            .query(&[("limit", "100")]);
        if let Some(token) = &continuation {
            request = request.query(&[("continuation", token)]);
        }
        let page = Reply::read(request).await;
        page.expect_status(200);
        entries.extend(page.body["items"].as_array().unwrap().iter().cloned());
        continuation = page.body["continuation"].as_str().map(str::to_owned);
        if continuation.is_none() {
            return entries;
        }
    }
}

#[tokio::test]
async fn staff_send_notifications_and_the_client_reads_them_unread_first() {
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

    let mut sent = Vec::new();
    for (sender, title) in [
        (&staff, "First"),
        (&app.admin("t1"), "Second"),
        (&staff, "Third"),
    ] {
        let reply = app
            .post(
                "/notifications",
                sender,
                &json!({"customerId": ada, "title": title, "message": format!("{title} message")}),
            )
            .await;
        reply.expect_status(201);
        assert_eq!(
            reply.body["recipient"],
            json!({"kind": "customer", "id": ada})
        );
        assert_eq!(reply.body["title"], title);
        assert!(reply.body.get("readAt").is_none());
        sent.push(id_of(&reply.body));
    }
    let bobs = id_of(
        &app.post(
            "/notifications",
            &staff,
            &json!({"customerId": bob, "title": "For Bob", "message": "Hi Bob"}),
        )
        .await
        .body,
    );
    let (first, second, third) = (sent[0].clone(), sent[1].clone(), sent[2].clone());

    let client = app.client_of("t1", &ada);
    assert_eq!(
        ids(&app.get("/notifications", &client).await),
        [third.clone(), second.clone(), first.clone()],
        "newest first"
    );

    // Reading the newest moves it behind the unread ones.
    let read = app
        .put(&format!("/notifications/{third}/read"), &client, &json!({}))
        .await;
    read.expect_status(200);
    let read_at = read.body["readAt"].as_str().expect("readAt set").to_owned();
    assert_eq!(
        ids(&app.get("/notifications", &client).await),
        [second.clone(), first.clone(), third.clone()],
        "unread first"
    );
    // Marking again changes nothing.
    let again = app
        .put(&format!("/notifications/{third}/read"), &client, &json!({}))
        .await;
    assert_eq!(again.expect_status(200).body["readAt"], read_at.as_str());

    // Paged in the same order.
    let page = app.get("/notifications?limit=2", &client).await;
    assert_eq!(ids(&page), [second.clone(), first.clone()]);
    let token = page.body["continuation"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let rest = Reply::read(
        app.request(Method::GET, "/notifications", Some(&client))
            .query(&[("limit", "2"), ("continuation", token.as_str())]),
    )
    .await;
    assert_eq!(ids(&rest), std::slice::from_ref(&third));
    assert!(rest.body.get("continuation").is_none());

    // Nobody else can read or mark them.
    let other_client = app.client_of("t1", &bob);
    assert_eq!(
        ids(&app.get("/notifications", &other_client).await),
        std::slice::from_ref(&bobs)
    );
    let foreign = app
        .put(
            &format!("/notifications/{first}/read"),
            &other_client,
            &json!({}),
        )
        .await;
    let missing = app
        .put(
            "/notifications/no-such-notification/read",
            &other_client,
            &json!({}),
        )
        .await;
    foreign.expect_problem(404);
    assert_eq!(foreign.body, missing.expect_problem(404).clone());
    app.put(&format!("/notifications/{first}/read"), &staff, &json!({}))
        .await
        .expect_problem(404);
    app.put(
        &format!("/notifications/{first}/read"),
        &app.client_of("t2", &ada),
        &json!({}),
    )
    .await
    .expect_problem(404);
    assert_eq!(
        ids(&app.get("/notifications", &client).await)[..2],
        [second, first],
        "still unread"
    );

    // Sending checks the body and the recipient.
    let bad = app
        .post(
            "/notifications",
            &staff,
            &json!({"customerId": "a/b", "title": "", "message": "x".repeat(4001)}),
        )
        .await;
    bad.expect_problem(400);
    assert_eq!(bad.error_fields(), ["customerId", "title", "message"]);
    app.post(
        "/notifications",
        &staff,
        &json!({"customerId": "nobody", "title": "Hi", "message": "Hi"}),
    )
    .await
    .expect_problem(404);
    app.post(
        "/notifications",
        &app.employee("t2", &[Role::CustomerService]),
        &json!({"customerId": ada, "title": "Hi", "message": "Hi"}),
    )
    .await
    .expect_problem(404);
    assert_eq!(ids(&app.get("/notifications", &client).await).len(), 3);
}

#[tokio::test]
async fn employees_see_only_notifications_addressed_to_their_roles() {
    let app = ApiApp::start(&[]).await;
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    app.post(
        "/notifications",
        &app.employee("t1", &[Role::CustomerService]),
        &json!({"customerId": ada, "title": "Hi", "message": "Hi"}),
    )
    .await
    .expect_status(201);

    // Staff with a role see none of the customers' notifications.
    for roles in [
        &[Role::CustomerService][..],
        &[Role::Admin],
        &[Role::OrderManager],
    ] {
        let listed = app.get("/notifications", &app.employee("t1", roles)).await;
        assert_eq!(
            listed.expect_status(200).body["items"],
            json!([]),
            "{roles:?}"
        );
    }
    // An employee without a role lists nothing at all.
    app.get("/notifications", &app.employee("t1", &[]))
        .await
        .expect_problem(403);

    // Role-addressed notifications come from the platform (order events), not from this API:
    // put two in the store as NotificationDispatch would.
    let tenant = TenantId::new("t1").unwrap();
    let mut role_ids = BTreeMap::new();
    for role in ["admin", "order-manager"] {
        let notification = Notification {
            id: format!("role-{role}"),
            tenant_id: "t1".into(),
            recipient: Recipient::Role(role.into()),
            category: "order.created".into(),
            title: "New order".into(),
            message: "An order needs confirming".into(),
            order_id: Some("o-1".into()),
            read_at: None,
            created_at: shared::domain::now(),
        };
        let audit = AuditEntry::now(
            "t1",
            "system:test",
            "notification.create",
            "notification",
            &notification.id,
            "test",
        );
        app.runtime
            .state
            .store
            .create_notification(&tenant, notification, audit)
            .await
            .expect("stored");
        role_ids.insert(role, format!("role-{role}"));
    }

    let admin = app.admin("t1");
    assert_eq!(
        ids(&app.get("/notifications", &admin).await),
        [role_ids["admin"].clone()]
    );
    let manager = app.employee("t1", &[Role::OrderManager]);
    assert_eq!(
        ids(&app.get("/notifications", &manager).await),
        [role_ids["order-manager"].clone()]
    );
    let both = app.employee("t1", &[Role::Admin, Role::OrderManager]);
    assert_eq!(ids(&app.get("/notifications", &both).await).len(), 2);
    assert_eq!(
        app.get(
            "/notifications",
            &app.employee("t1", &[Role::CustomerService])
        )
        .await
        .body["items"],
        json!([])
    );
    assert_eq!(
        app.get("/notifications", &app.admin("t2")).await.body["items"],
        json!([])
    );
    assert_eq!(
        app.get("/notifications", &app.client_of("t1", &ada))
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // An employee marks their role's notification read, not another role's.
    app.put(
        &format!("/notifications/{}/read", role_ids["order-manager"]),
        &admin,
        &json!({}),
    )
    .await
    .expect_problem(404);
    app.put(
        &format!("/notifications/{}/read", role_ids["admin"]),
        &app.client_of("t1", &ada),
        &json!({}),
    )
    .await
    .expect_problem(404);
    let read = app
        .put(
            &format!("/notifications/{}/read", role_ids["admin"]),
            &admin,
            &json!({}),
        )
        .await;
    assert!(read.expect_status(200).body["readAt"].is_string());
}

#[tokio::test]
async fn every_write_appends_one_audit_entry_with_ids_only() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let staff = app.employee("t1", &[Role::CustomerService]);
    let manager = app.employee("t1", &[Role::OrderManager]);
    let personal = [
        "Ada Lovelace",
        "Lovelace",
        "ada@example.org",
        "Ada King",
        "ada.king@example.org",
        "+4915112345678",
        "Analytical Way",
    ];

    // Each write carries its own correlation id so its entry can be told apart.
    let send =
        |method: Method, path: String, token: &str, body: Option<Value>, correlation: &str| {
            let mut request = app
                .request(method, &path, Some(token))
                .header("x-correlation-id", correlation);
            if let Some(body) = body {
                request = request.json(&body);
            }
            Reply::read(request)
        };
    let customer_body = json!({"name": "Ada Lovelace", "email": "ada@example.org", "phone": "+4915112345678",
        "address": {"line1": "1 Analytical Way", "city": "London", "postalCode": "N1", "country": "GB"}});
    let created = send(
        Method::POST,
        "/customers".into(),
        &staff,
        Some(customer_body),
        "w-customer-create",
    )
    .await;
    let ada = id_of(&created.expect_status(201).body);
    send(
        Method::PUT,
        format!("/customers/{ada}"),
        &staff,
        Some(json!({"name": "Ada King", "email": "ada.king@example.org"})),
        "w-customer-update",
    )
    .await
    .expect_status(200);
    let product = send(Method::POST, "/products".into(), &manager, Some(json!({"name": "Widget", "category": "tools", "priceCents": 5, "currency": "EUR", "stock": 9})), "w-product-create").await;
    let product_etag = product.header("etag").expect("an ETag").to_owned();
    let product = id_of(&product.expect_status(201).body);
    Reply::read(
        app.request(Method::PUT, &format!("/products/{product}"), Some(&admin))
            .header("x-correlation-id", "w-product-update")
            .header("if-match", product_etag)
            .json(&json!({"name": "Widget", "category": "tools", "priceCents": 6, "currency": "EUR", "stock": 9})),
    )
    .await
    .expect_status(200);
    let client = app.client_of("t1", &ada);
    let order = send(
        Method::POST,
        "/orders".into(),
        &client,
        Some(json!({"items": [{"productId": product, "quantity": 1}]})),
        "w-order-create",
    )
    .await;
    let order = id_of(&order.expect_status(201).body);
    send(
        Method::PUT,
        format!("/orders/{order}/status"),
        &manager,
        Some(json!({"status": "confirmed"})),
        "w-order-confirm",
    )
    .await
    .expect_status(200);
    let notification = send(Method::POST, "/notifications".into(), &staff, Some(json!({"customerId": ada, "title": "Dear Ada Lovelace", "message": "Mail to ada@example.org"})), "w-notification-send").await;
    let notification = id_of(&notification.expect_status(201).body);
    send(
        Method::PUT,
        format!("/notifications/{notification}/read"),
        &client,
        Some(json!({})),
        "w-notification-read",
    )
    .await
    .expect_status(200);
    send(
        Method::POST,
        format!("/customers/{ada}/gdpr/export"),
        &client,
        Some(json!({})),
        "w-gdpr-export",
    )
    .await
    .expect_status(200);
    send(
        Method::DELETE,
        format!("/customers/{ada}"),
        &staff,
        None,
        "w-erasure",
    )
    .await
    .expect_status(202);
    // Refused writes leave nothing; a list leaves nothing; an employee's read of one
    // customer's data is an entry of its own (the GDPR trail's "who saw my data").
    app.get(&format!("/customers/{ada}"), &staff)
        .await
        .expect_status(200);
    app.get("/orders", &admin).await.expect_status(200);
    send(
        Method::POST,
        "/products".into(),
        &staff,
        Some(json!({"name": "X", "category": "x", "priceCents": 1, "currency": "EUR", "stock": 1})),
        "w-refused",
    )
    .await
    .expect_problem(403);
    send(
        Method::PUT,
        format!("/orders/{order}/status"),
        &manager,
        Some(json!({"status": "delivered"})),
        "w-illegal",
    )
    .await
    .expect_problem(409);

    let (reads, trail): (Vec<Value>, Vec<Value>) = whole_trail(&app, &admin)
        .await
        .into_iter()
        .partition(|entry| {
            entry["action"]
                .as_str()
                .is_some_and(|a| a.ends_with(".read") && a != "notification.read")
        });
    let reads: Vec<(&str, &str, &str)> = reads
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actorId"].as_str().unwrap(),
                e["customerId"].as_str().unwrap(),
            )
        })
        .collect();
    // The read came after the erasure request: it names the customer by their pseudonym.
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!((reads[0].0, reads[0].1), ("customer.read", "dev-employee"));
    assert!(
        reads[0].2.starts_with("psn-") && reads[0].2 != ada,
        "{reads:?}"
    );
    let client_actor = format!("dev-client-{ada}");
    let client_actor = client_actor.as_str();
    let expected = [
        (
            "w-customer-create",
            "customer.create",
            "customer",
            ada.as_str(),
            "dev-employee",
            true,
        ),
        (
            "w-customer-update",
            "customer.update",
            "customer",
            ada.as_str(),
            "dev-employee",
            true,
        ),
        (
            "w-product-create",
            "product.create",
            "product",
            product.as_str(),
            "dev-employee",
            false,
        ),
        (
            "w-product-update",
            "product.update",
            "product",
            product.as_str(),
            "dev-employee",
            false,
        ),
        (
            "w-order-create",
            "order.create",
            "order",
            order.as_str(),
            client_actor,
            true,
        ),
        (
            "w-order-confirm",
            "order.status.confirmed",
            "order",
            order.as_str(),
            "dev-employee",
            true,
        ),
        (
            "w-notification-send",
            "notification.send",
            "notification",
            notification.as_str(),
            "dev-employee",
            true,
        ),
        (
            "w-notification-read",
            "notification.read",
            "notification",
            notification.as_str(),
            client_actor,
            true,
        ),
        (
            "w-gdpr-export",
            "gdpr.export",
            "customer",
            ada.as_str(),
            client_actor,
            true,
        ),
        (
            "w-erasure",
            "gdpr.erasure.request",
            "customer",
            ada.as_str(),
            "dev-employee",
            true,
        ),
    ];
    assert_eq!(
        trail.len(),
        expected.len(),
        "one entry per write, none for refusals: {trail:#?}"
    );
    for (correlation, action, target_type, target_id, actor, about_customer) in expected {
        let entries: Vec<&Value> = trail
            .iter()
            .filter(|entry| entry["correlationId"] == correlation)
            .collect();
        assert_eq!(entries.len(), 1, "{correlation}: {entries:?}");
        let entry = entries[0];
        assert_eq!(entry["action"], action, "{entry}");
        assert_eq!(entry["targetType"], target_type, "{entry}");
        assert_eq!(entry["targetId"], target_id, "{entry}");
        assert_eq!(entry["actorId"], actor, "{entry}");
        assert_eq!(entry["tenantId"], "t1", "{entry}");
        assert!(
            entry["id"].is_string() && entry["at"].is_string(),
            "{entry}"
        );
        if about_customer {
            assert_eq!(entry["customerId"], ada.as_str(), "{entry}");
        } else {
            assert!(entry.get("customerId").is_none(), "{entry}");
        }
    }
    let times: Vec<&str> = trail
        .iter()
        .map(|entry| entry["at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first: {times:?}"
    );
    let text = serde_json::to_string(&trail).unwrap();
    for value in personal.iter().chain(["Dear", "Mail to"].iter()) {
        assert!(
            !text.contains(value),
            "the audit trail holds personal data {value:?}: {text}"
        );
    }
}

#[tokio::test]
async fn audit_logs_are_admin_only_filtered_and_paged() {
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
    let mut products = Vec::new();
    for n in 0..3 {
        products.push(id_of(
            &app.create_product("t1", &format!("Product {n}"), "tools", 5)
                .await,
        ));
    }
    let order = app
        .post(
            "/orders",
            &app.client_of("t1", &bob),
            &json!({"items": [{"productId": products[0], "quantity": 1}]}),
        )
        .await;
    let order = id_of(&order.expect_status(201).body);
    app.create_customer("t2", "Other Tenant", "other@example.org")
        .await;
    // 2 customers + 3 products + 1 order in t1.

    for token in [
        app.employee("t1", &[Role::CustomerService, Role::OrderManager]),
        app.client_of("t1", &ada),
    ] {
        app.get("/audit/logs", &token).await.expect_problem(403);
        app.get(&format!("/audit/gdpr/{ada}"), &token)
            .await
            .expect_problem(403);
    }

    let logs = |query: Vec<(&'static str, String)>| {
        Reply::read(
            app.request(Method::GET, "/audit/logs", Some(&admin))
                .query(&query),
        )
    };
    let actions = |reply: &Reply| -> Vec<String> {
        reply.expect_status(200);
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["action"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = logs(vec![]).await;
    assert_eq!(
        actions(&all),
        [
            "order.create",
            "product.create",
            "product.create",
            "product.create",
            "customer.create",
            "customer.create"
        ]
    );
    assert!(
        all.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["tenantId"] == "t1"),
        "only the caller's tenant"
    );

    assert_eq!(
        actions(&logs(vec![("action", "product.create".into())]).await).len(),
        3
    );
    let by_target = logs(vec![("targetId", products[1].clone())]).await;
    assert_eq!(ids(&by_target).len(), 1);
    assert_eq!(by_target.body["items"][0]["targetId"], products[1].as_str());
    assert_eq!(
        actions(
            &logs(vec![
                ("action", "customer.create".into()),
                ("targetId", bob.clone())
            ])
            .await
        ),
        ["customer.create"]
    );
    assert_eq!(
        actions(&logs(vec![("customerId", bob.clone())]).await),
        ["order.create", "customer.create"]
    );
    let by_actor = logs(vec![("actorId", format!("dev-client-{bob}"))]).await;
    assert_eq!(actions(&by_actor), ["order.create"]);
    assert_eq!(by_actor.body["items"][0]["targetId"], order.as_str());
    let order_at = by_actor.body["items"][0]["at"].as_str().unwrap().to_owned();
    assert_eq!(
        actions(&logs(vec![("from", order_at.clone())]).await),
        ["order.create"]
    );
    assert_eq!(actions(&logs(vec![("to", order_at)]).await).len(), 5);
    assert_eq!(
        actions(&logs(vec![("action", "no.such.action".into())]).await),
        Vec::<String>::new()
    );

    // Paged: every entry once, in the same order as one big page.
    let mut paged = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut query = vec![("limit", "4".to_owned())];
        if let Some(token) = continuation.take() {
            query.push(("continuation", token));
        }
        let page = logs(query).await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 4);
        paged.extend(page_ids);
        continuation = page.body["continuation"].as_str().map(str::to_owned);
        if continuation.is_none() {
            break;
        }
    }
    assert_eq!(paged, ids(&all));
    assert_eq!(paged.iter().collect::<HashSet<_>>().len(), 6);
    // A token is tied to its filters.
    let filtered = logs(vec![
        ("action", "product.create".into()),
        ("limit", "1".into()),
    ])
    .await;
    let token = filtered.body["continuation"].as_str().unwrap().to_owned();
    let crossed = logs(vec![
        ("action", "customer.create".into()),
        ("limit", "1".into()),
        ("continuation", token),
    ])
    .await;
    crossed.expect_problem(400);

    let bad = logs(vec![
        ("from", "last week".into()),
        ("targetId", "a b".into()),
        ("user", "x".into()),
    ])
    .await;
    bad.expect_problem(400);
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(fields, ["from", "targetId", "user"]);
}

#[tokio::test]
async fn the_gdpr_trail_lists_one_customers_entries() {
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
    let product = id_of(&app.create_product("t1", "Widget", "tools", 5).await);
    let order = id_of(
        &app.post(
            "/orders",
            &admin,
            &json!({"customerId": ada, "items": [{"productId": product, "quantity": 1}]}),
        )
        .await
        .body,
    );
    app.put(
        &format!("/orders/{order}/status"),
        &admin,
        &json!({"status": "cancelled"}),
    )
    .await
    .expect_status(200);
    app.post(
        "/notifications",
        &staff,
        &json!({"customerId": ada, "title": "Hi", "message": "Hi"}),
    )
    .await
    .expect_status(201);
    app.post(
        "/notifications",
        &staff,
        &json!({"customerId": bob, "title": "Hi", "message": "Hi"}),
    )
    .await
    .expect_status(201);
    app.put(
        &format!("/customers/{ada}"),
        &staff,
        &json!({"name": "Ada King", "email": "ada@example.org"}),
    )
    .await
    .expect_status(200);

    let trail = app.get(&format!("/audit/gdpr/{ada}"), &admin).await;
    trail.expect_status(200);
    let items = trail.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "customer.update",
            "notification.send",
            "order.status.cancelled",
            "order.create",
            "customer.create"
        ]
    );
    assert!(items
        .iter()
        .all(|entry| entry["customerId"] == ada.as_str()));

    let first = app.get(&format!("/audit/gdpr/{ada}?limit=2"), &admin).await;
    assert_eq!(ids(&first).len(), 2);
    let token = first.body["continuation"].as_str().unwrap().to_owned();
    let rest = Reply::read(
        app.request(Method::GET, &format!("/audit/gdpr/{ada}"), Some(&admin))
            .query(&[("limit", "10"), ("continuation", token.as_str())]),
    )
    .await;
    let mut both = ids(&first);
    both.extend(ids(&rest));
    assert_eq!(both, ids(&trail));

    // Another tenant's admin finds no trail for the customer.
    assert_eq!(
        app.get(&format!("/audit/gdpr/{ada}"), &app.admin("t2"))
            .await
            .expect_status(200)
            .body["items"],
        json!([])
    );
    assert_eq!(
        app.get(&format!("/audit/gdpr/{bob}"), &admin).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.get(&format!("/audit/gdpr/{ada}?page=1"), &admin)
        .await
        .expect_problem(400);
}

#[tokio::test]
async fn a_correlation_id_sent_with_a_request_is_carried_by_its_audit_entries() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    // Through the enveloped path (customers, orders) and the forwarded one (products).
    let customer = Reply::read(
        app.request(Method::POST, "/customers", Some(&admin))
            .header("x-correlation-id", "abc-123")
            .json(&json!({"name": "Ada", "email": "ada@example.org"})),
    )
    .await;
    let customer = id_of(&customer.expect_status(201).body);
    let product = Reply::read(
        app.request(Method::POST, "/products", Some(&admin))
            .header("x-correlation-id", "abc-123")
            .json(&json!({"name": "Widget", "category": "tools", "priceCents": 5, "currency": "EUR", "stock": 3})),
    )
    .await;
    let product = id_of(&product.expect_status(201).body);
    Reply::read(
        app.request(Method::POST, "/orders", Some(&admin))
            .header("x-correlation-id", "abc-123")
            .json(
                &json!({"customerId": customer, "items": [{"productId": product, "quantity": 1}]}),
            ),
    )
    .await
    .expect_status(201);
    // Without one, the W3C trace id of the request is used.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    Reply::read(
        app.request(Method::POST, "/customers", Some(&admin))
            .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
            .json(&json!({"name": "Bob", "email": "bob@example.org"})),
    )
    .await
    .expect_status(201);

    let trail = whole_trail(&app, &admin).await;
    let with_id: Vec<&str> = trail
        .iter()
        .filter(|entry| entry["correlationId"] == "abc-123")
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        with_id,
        ["order.create", "product.create", "customer.create"]
    );
    let traced: Vec<&Value> = trail
        .iter()
        .filter(|entry| entry["correlationId"] == trace_id)
        .collect();
    assert_eq!(traced.len(), 1, "{trail:#?}");
    assert_eq!(traced[0]["action"], "customer.create");
}

#[tokio::test]
async fn correlation_ids_that_api_management_forwards_are_kept() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    // apim-policies/fragments/correlation-id.xml passes on ^[A-Za-z0-9._:-]{1,128}$ unchanged.
    let long = "c".repeat(100);
    for correlation in ["checkout.web:order-42", long.as_str()] {
        let body = json!({"name": "Widget", "category": "tools", "priceCents": 5, "currency": "EUR", "stock": 3});
        let created = Reply::read(
            app.request(Method::POST, "/products", Some(&admin))
                .header("x-correlation-id", correlation)
                .json(&body),
        )
        .await;
        let product = id_of(&created.expect_status(201).body);
        let entry = app
            .get(&format!("/audit/logs?targetId={product}"), &admin)
            .await;
        assert_eq!(
            entry.body["items"][0]["correlationId"], correlation,
            "{}",
            entry.text
        );
    }
}

#[tokio::test]
async fn a_client_reading_a_notification_is_part_of_their_gdpr_trail() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let sent = app
        .post(
            "/notifications",
            &app.employee("t1", &[Role::CustomerService]),
            &json!({"customerId": ada, "title": "Hi", "message": "Hi"}),
        )
        .await;
    let notification = id_of(&sent.expect_status(201).body);
    app.put(
        &format!("/notifications/{notification}/read"),
        &app.client_of("t1", &ada),
        &json!({}),
    )
    .await
    .expect_status(200);

    let trail = app.get(&format!("/audit/gdpr/{ada}"), &admin).await;
    let actions: Vec<&str> = trail.expect_status(200).body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["notification.read", "notification.send", "customer.create"]
    );
}
