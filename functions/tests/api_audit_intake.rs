//! `POST /api/v1/audit/logs` (the audit intake for other services) over real HTTP on loopback,
//! through the local runtime.
//!
//! Proves: only an app-only token with the app role `audit.writer` may send entries (every user
//! token, an admin's included, and an app without the role get 403, and an app-only token is
//! 403 on the operations for users); an entry is stored in the token's tenant with the app as
//! actor and shows in the trail and the customer's GDPR trail; a body holding an email address
//! or a phone number anywhere (escaped or not) is 400 and nothing is stored; the same `eventId`
//! with the same body answers 200 with the first entry, with another body 422, and another app
//! or tenant using the same `eventId` records its own entry.

mod common;

use common::ApiApp;
use serde_json::{json, Value};
use shared::auth::{AppRole, Role};

const WRITER: &[AppRole] = &[AppRole::AuditWriter];

fn event(event_id: &str) -> Value {
    json!({
        "eventId": event_id,
        "action": "invoice.issue",
        "targetType": "invoice",
        "targetId": "inv-4711",
        "customerId": "c-1",
        "occurredAt": "2026-01-15T09:30:00.123456Z",
    })
}

/// Every audit entry of `tenant` sent by apps (actor `app:...`).
async fn app_entries(app: &ApiApp, tenant: &str) -> Vec<Value> {
    let reply = app.get("/audit/logs?limit=100", &app.admin(tenant)).await;
    reply.expect_status(200).body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|entry| {
            entry["actorId"]
                .as_str()
                .is_some_and(|id| id.starts_with("app:"))
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn only_an_app_token_with_audit_writer_may_send_entries() {
    let app = ApiApp::start(&[]).await;
    let body = event("evt-1");
    for token in [
        app.admin("t1"),
        app.employee("t1", &[Role::CustomerService, Role::OrderManager]),
        app.client_of("t1", "c-1"),
        app.app("t1", "billing", &[]),
    ] {
        app.post("/audit/logs", &token, &body)
            .await
            .expect_problem(403);
    }
    app.post("/audit/logs", "not-a-token", &body)
        .await
        .expect_problem(401);
    assert!(app_entries(&app, "t1").await.is_empty(), "nothing recorded");

    // An app-only token is no user: the operations for users refuse it.
    let writer = app.app("t1", "billing", WRITER);
    app.get("/customers", &writer).await.expect_problem(403);
    app.get("/audit/logs", &writer).await.expect_problem(403);
}

#[tokio::test]
async fn an_entry_is_stored_in_the_tenant_with_the_app_as_actor() {
    let app = ApiApp::start(&[]).await;
    let writer = app.app("t1", "billing", WRITER);
    let created = app.post("/audit/logs", &writer, &event("evt-1")).await;
    let entry = created.expect_status(201).body.clone();
    assert_eq!(entry["actorId"], "app:billing");
    assert_eq!(entry["tenantId"], "t1");
    assert_eq!(entry["action"], "invoice.issue");
    assert_eq!(entry["targetType"], "invoice");
    assert_eq!(entry["targetId"], "inv-4711");
    assert_eq!(entry["customerId"], "c-1");
    assert_eq!(entry["at"], "2026-01-15T09:30:00.123456Z");

    assert_eq!(app_entries(&app, "t1").await, vec![entry.clone()]);
    let trail = app.get("/audit/gdpr/c-1", &app.admin("t1")).await;
    assert_eq!(trail.expect_status(200).body["items"], json!([entry]));
    assert!(
        app_entries(&app, "t2").await.is_empty(),
        "another tenant sees none"
    );
}

#[tokio::test]
async fn contact_data_anywhere_is_refused_and_not_stored() {
    let app = ApiApp::start(&[]).await;
    let writer = app.app("t1", "billing", WRITER);
    let with = |field: &str, value: &str| {
        let mut body = event("evt-pii");
        body[field] = json!(value);
        body
    };
    let bodies = [
        with("targetId", "ada@example.org"),
        with("customerId", "+442079460001"),
        with("eventId", "030 1234 5678"),
        with("action", "mail.ada\u{0040}example.org"),
        with("note", "call +44 20 7946 0001"),
        json!({"ada@example.org": 1}),
    ];
    for body in &bodies {
        let reply = app.post("/audit/logs", &writer, body).await;
        let problem = reply.expect_problem(400);
        assert_eq!(problem["title"], "Contact Data Refused", "{body}");
        assert!(!reply.text.contains("example.org") && !reply.text.contains("7946"));
    }
    // Escaped in the JSON text, it is still found.
    let escaped = app
        .request(reqwest::Method::POST, "/audit/logs", Some(&writer))
        .header("content-type", "application/json")
        .body(r#"{"eventId":"e-1","action":"a","targetType":"t","targetId":"ada\u0040example.org","occurredAt":"2026-01-15T09:30:00Z"}"#);
    let reply = common::Reply::read(escaped).await;
    assert_eq!(reply.expect_problem(400)["title"], "Contact Data Refused");
    assert!(app_entries(&app, "t1").await.is_empty(), "nothing recorded");

    // Ids with digit groups are not phone numbers.
    let mut ids = event("12345678-1234-4234-8234-123456789012");
    ids["targetId"] = json!("6f1c2b9a-0d3e-4f7a-9b1c-2d3e4f5a6b7c");
    app.post("/audit/logs", &writer, &ids)
        .await
        .expect_status(201);
}

#[tokio::test]
async fn an_event_id_is_recorded_once_and_refused_with_another_body() {
    let app = ApiApp::start(&[]).await;
    let writer = app.app("t1", "billing", WRITER);
    let first = app.post("/audit/logs", &writer, &event("evt-1")).await;
    let entry = first.expect_status(201).body.clone();
    assert!(first.header("idempotent-replayed").is_none());

    let again = app.post("/audit/logs", &writer, &event("evt-1")).await;
    assert_eq!(again.expect_status(200).body, entry);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    let mut other = event("evt-1");
    other["action"] = json!("invoice.void");
    let reused = app.post("/audit/logs", &writer, &other).await;
    assert_eq!(reused.expect_problem(422)["title"], "Event Id Reused");
    assert_eq!(app_entries(&app, "t1").await, vec![entry.clone()]);

    // The event id is the app's own: another app, or the same app in another tenant, has its own.
    let shop = app.app("t1", "shop", WRITER);
    app.post("/audit/logs", &shop, &other)
        .await
        .expect_status(201);
    app.post("/audit/logs", &app.app("t2", "billing", WRITER), &other)
        .await
        .expect_status(201);
    assert_eq!(app_entries(&app, "t1").await.len(), 2);
    assert_eq!(app_entries(&app, "t2").await.len(), 1);
}

#[tokio::test]
async fn fields_are_validated_and_unknown_ones_refused() {
    let app = ApiApp::start(&[]).await;
    let writer = app.app("t1", "billing", WRITER);
    let mut bad = event("evt-1");
    bad["action"] = json!("Invoice Issue");
    bad["targetId"] = json!("a/b");
    bad["occurredAt"] = json!("2999-01-01T00:00:00Z");
    let reply = app.post("/audit/logs", &writer, &bad).await;
    reply.expect_problem(400);
    assert_eq!(reply.error_fields(), ["action", "targetId", "occurredAt"]);
    let mut extra = event("evt-2");
    extra["name"] = json!("x");
    app.post("/audit/logs", &writer, &extra)
        .await
        .expect_problem(400);
    assert!(app_entries(&app, "t1").await.is_empty());
}
