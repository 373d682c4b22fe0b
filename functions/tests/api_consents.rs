//! Consents (`GET /api/v1/customers/{id}/consents`, `PUT .../consents/{purpose}`) over real HTTP
//! on loopback, through the local runtime.
//!
//! Proves: every purpose starts not granted; a grant and then a withdrawal leave the purpose
//! withdrawn with both records in the history (the grant is never erased), each with its notice
//! version, channel, time and who recorded it, and each audited; the export carries the
//! consents with their history; a client manages their own and nobody else's (404), employees
//! with `admin` or `customer-service` anyone's, other roles get 403; another tenant's customer
//! and a missing one are 404; unknown purposes, channels and fields are 400.

mod common;

use common::ApiApp;
use serde_json::{json, Value};
use shared::auth::Role;

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

fn body(granted: bool, channel: &str) -> Value {
    json!({"granted": granted, "noticeVersion": "2025-03", "channel": channel})
}

/// `(purpose, granted)` of the current state, in the declared order.
fn current(consents: &Value) -> Vec<(String, bool)> {
    consents["current"]
        .as_array()
        .expect("current")
        .iter()
        .map(|state| {
            (
                state["purpose"].as_str().expect("purpose").to_owned(),
                state["granted"].as_bool().expect("granted"),
            )
        })
        .collect()
}

fn states(pairs: &[(&str, bool)]) -> Vec<(String, bool)> {
    pairs.iter().map(|(p, g)| ((*p).to_owned(), *g)).collect()
}

#[tokio::test]
async fn a_withdrawal_keeps_the_grant_in_the_history_and_the_export_has_both() {
    let app = ApiApp::start(&[]).await;
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let client = app.client_of("t1", &ada);
    let path = format!("/customers/{ada}/consents");

    let empty = app.get(&path, &client).await;
    assert_eq!(
        current(&empty.expect_status(200).body),
        states(&[
            ("marketing-email", false),
            ("marketing-sms", false),
            ("profiling", false)
        ])
    );
    assert_eq!(empty.body["history"], json!([]));

    let granted = app
        .put(
            &format!("{path}/marketing-email"),
            &client,
            &body(true, "web"),
        )
        .await;
    assert_eq!(
        current(&granted.expect_status(200).body),
        states(&[
            ("marketing-email", true),
            ("marketing-sms", false),
            ("profiling", false)
        ])
    );
    let service = app.employee("t1", &[Role::CustomerService]);
    let withdrawn = app
        .put(
            &format!("{path}/marketing-email"),
            &service,
            &body(false, "phone"),
        )
        .await;
    let consents = withdrawn.expect_status(200).body.clone();
    assert_eq!(consents["current"][0]["granted"], false);
    let history = consents["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "the grant stays: {consents}");
    assert_eq!(
        (
            &history[0]["granted"],
            &history[0]["channel"],
            &history[0]["recordedBy"]
        ),
        (
            &json!(true),
            &json!("web"),
            &json!(format!("dev-client-{ada}"))
        )
    );
    assert_eq!(
        (
            &history[1]["granted"],
            &history[1]["channel"],
            &history[1]["recordedBy"]
        ),
        (&json!(false), &json!("phone"), &json!("dev-employee"))
    );
    assert_eq!(history[1]["noticeVersion"], "2025-03");
    assert!(history[0]["recordedAt"].as_str() <= history[1]["recordedAt"].as_str());
    assert_eq!(consents["current"][0]["latest"], history[1]);

    let read = app.get(&path, &app.admin("t1")).await;
    assert_eq!(read.expect_status(200).body, consents);
    let export = app
        .post(
            &format!("/customers/{ada}/gdpr/export"),
            &client,
            &json!({}),
        )
        .await;
    assert_eq!(export.expect_status(200).body["consents"], consents);

    let trail = app
        .get(&format!("/audit/gdpr/{ada}"), &app.admin("t1"))
        .await;
    let actions: Vec<&str> = trail.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .filter(|action| action.starts_with("consent.") && !action.ends_with(".read"))
        .collect();
    // The writes; employees' reads of the consents are entries of their own (`consent.read`).
    assert_eq!(actions, ["consent.withdraw", "consent.grant"]);
}

#[tokio::test]
async fn only_the_customer_and_customer_staff_of_the_tenant_manage_consents() {
    let app = ApiApp::start(&[]).await;
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let bob = id_of(
        &app.create_customer("t1", "Bob Builder", "bob@example.org")
            .await,
    );
    let grant = body(true, "app");
    let adas = format!("/customers/{ada}/consents");

    let bobs_client = app.client_of("t1", &bob);
    app.get(&adas, &bobs_client).await.expect_problem(404);
    app.put(&format!("{adas}/profiling"), &bobs_client, &grant)
        .await
        .expect_problem(404);
    let manager = app.employee("t1", &[Role::OrderManager]);
    app.put(&format!("{adas}/profiling"), &manager, &grant)
        .await
        .expect_problem(403);
    app.get(&adas, &app.admin("t2")).await.expect_problem(404);
    app.put(&format!("{adas}/profiling"), &app.admin("t2"), &grant)
        .await
        .expect_problem(404);
    app.put(
        "/customers/no-such-customer/consents/profiling",
        &app.admin("t1"),
        &grant,
    )
    .await
    .expect_problem(404);
    let untouched = app.get(&adas, &app.admin("t1")).await;
    assert_eq!(untouched.expect_status(200).body["history"], json!([]));

    app.put(&format!("{adas}/profiling"), &app.admin("t1"), &grant)
        .await
        .expect_status(200);
    let own = app
        .put(
            &format!("{adas}/marketing-sms"),
            &app.client_of("t1", &ada),
            &grant,
        )
        .await;
    assert_eq!(
        current(&own.expect_status(200).body),
        states(&[
            ("marketing-email", false),
            ("marketing-sms", true),
            ("profiling", true)
        ])
    );
}

#[tokio::test]
async fn unknown_purposes_channels_and_fields_are_refused() {
    let app = ApiApp::start(&[]).await;
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let admin = app.admin("t1");
    let path = format!("/customers/{ada}/consents");
    let unknown = app
        .put(&format!("{path}/newsletter"), &admin, &body(true, "web"))
        .await;
    unknown.expect_problem(400);
    assert_eq!(unknown.error_fields(), ["purpose"]);
    app.put(&format!("{path}/profiling"), &admin, &body(true, "fax"))
        .await
        .expect_problem(400);
    let blank = json!({"granted": true, "noticeVersion": "", "channel": "web"});
    let refused = app.put(&format!("{path}/profiling"), &admin, &blank).await;
    refused.expect_problem(400);
    assert_eq!(refused.error_fields(), ["noticeVersion"]);
    let extra = json!({"granted": true, "noticeVersion": "1", "channel": "web", "email": "x"});
    app.put(&format!("{path}/profiling"), &admin, &extra)
        .await
        .expect_problem(400);
    assert_eq!(app.get(&path, &admin).await.body["history"], json!([]));
}
