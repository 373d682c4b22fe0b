//! Marketing messages and the consent gate (`POST /api/v1/notifications` with a `purpose`),
//! over real HTTP on loopback through the local runtime.
//!
//! Proves: with the customer's current consent for `marketing-email` the message is sent (the
//! in-app notification and one email message for the senders, ids only); once the consent is
//! withdrawn nothing is sent (`409`, no notification, no message) and the refusal is in the
//! customer's audit trail with the purpose and ids only; SMS needs its own consent; a message
//! without a purpose stays in-app only and needs no consent; an unknown purpose is `400`.

mod common;

use common::ApiApp;
use serde_json::{json, Value};

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

fn message(customer: &str, purpose: Option<&str>) -> Value {
    let mut body = json!({"customerId": customer, "title": "Spring offers", "message": "Ten percent off lamps."});
    if let Some(purpose) = purpose {
        body["purpose"] = json!(purpose);
    }
    body
}

async fn consent(app: &ApiApp, customer: &str, purpose: &str, granted: bool) {
    let body = json!({"granted": granted, "noticeVersion": "2025-03", "channel": "web"});
    app.put(
        &format!("/customers/{customer}/consents/{purpose}"),
        &app.client_of("t1", customer),
        &body,
    )
    .await
    .expect_status(200);
}

async fn inbox(app: &ApiApp, customer: &str) -> Vec<Value> {
    let reply = app
        .get("/notifications", &app.client_of("t1", customer))
        .await;
    reply.expect_status(200).body["items"]
        .as_array()
        .expect("items")
        .clone()
}

#[tokio::test]
async fn with_consent_the_email_is_sent_and_after_withdrawal_nothing_is() {
    let app = ApiApp::start(&[]).await;
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let admin = app.admin("t1");

    consent(&app, &ada, "marketing-email", true).await;
    let sent = app
        .post(
            "/notifications",
            &admin,
            &message(&ada, Some("marketing-email")),
        )
        .await;
    let notification = sent.expect_status(201).body.clone();
    assert_eq!(notification["category"], "marketing");
    let outbound = app.messages_on("notifications-outbound").await;
    assert_eq!(outbound.len(), 1, "one email message: {outbound:?}");
    let email = &outbound[0];
    assert_eq!(email["channel"], "email");
    assert_eq!(email["purpose"], "marketing-email");
    assert_eq!(email["customerId"], ada.as_str());
    assert_eq!(email["notificationId"], notification["id"]);
    let text = email.to_string();
    assert!(
        !text.contains("ada@example.org") && !text.contains("Spring offers"),
        "ids only"
    );

    consent(&app, &ada, "marketing-email", false).await;
    let refused = app
        .post(
            "/notifications",
            &admin,
            &message(&ada, Some("marketing-email")),
        )
        .await;
    let problem = refused.expect_problem(409);
    assert!(problem["detail"]
        .as_str()
        .is_some_and(|d| d.contains("marketing-email")));
    assert_eq!(
        app.messages_on("notifications-outbound").await.len(),
        1,
        "no second email"
    );
    assert_eq!(inbox(&app, &ada).await.len(), 1, "no second notification");

    let trail = app
        .get(
            &format!("/audit/logs?action=notification.marketing.refused&customerId={ada}"),
            &admin,
        )
        .await;
    let entries = trail.expect_status(200).body["items"]
        .as_array()
        .expect("items")
        .clone();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["targetType"], "consent");
    assert_eq!(entries[0]["targetId"], "marketing-email");
    let text = serde_json::to_string(&entries).expect("json");
    assert!(!text.contains("Ada") && !text.contains("example.org") && !text.contains("Spring"));
}

#[tokio::test]
async fn sms_needs_its_own_consent_and_a_service_message_needs_none() {
    let app = ApiApp::start(&[]).await;
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let service = app.employee("t1", &[shared::auth::Role::CustomerService]);
    consent(&app, &ada, "marketing-email", true).await;

    app.post(
        "/notifications",
        &service,
        &message(&ada, Some("marketing-sms")),
    )
    .await
    .expect_problem(409);
    app.post("/notifications", &service, &message(&ada, None))
        .await
        .expect_status(201);
    assert!(
        app.messages_on("notifications-outbound").await.is_empty(),
        "in-app only"
    );
    assert_eq!(inbox(&app, &ada).await.len(), 1);

    app.post(
        "/notifications",
        &service,
        &message(&ada, Some("profiling")),
    )
    .await
    .expect_problem(400);
}
