//! Notification preferences (`GET`/`PUT /api/v1/customers/{id}/preferences`) over real HTTP on
//! loopback, through the local runtime.
//!
//! Proves: a customer who never set any gets the defaults (every channel of every event type
//! on, ETag `"defaults"`, no `updatedAt`); a `PUT` replaces the whole document (what it leaves
//! out is on) and a `GET` answers it back with its new ETag; `If-Match` is checked (`412`);
//! unknown event types and channels are `400` naming the allowed ones, a non-boolean or an
//! unknown field too; a client manages only their own (another customer's is `404`), any
//! employee reads, only `admin` and `customer-service` change them (`403`), another tenant's
//! customer is `404`; an employee's read is in the customer's GDPR trail; the export carries
//! the preferences; a customer whose erasure was requested cannot change them (`409`).

mod common;

use common::{ApiApp, Reply};
use serde_json::{json, Value};
use shared::auth::Role;
use shared::domain::preferences::EventType;

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn customer(app: &ApiApp, name: &str) -> String {
    let email = format!("{}@example.org", name.to_lowercase().replace(' ', "."));
    id_of(&app.create_customer("t1", name, &email).await)
}

/// A `PUT` with `If-Match: if_match` (none when `None`).
async fn put_matching(
    app: &ApiApp,
    path: &str,
    token: &str,
    if_match: Option<&str>,
    body: &Value,
) -> Reply {
    let mut request = app
        .request(reqwest::Method::PUT, path, Some(token))
        .json(body);
    if let Some(tag) = if_match {
        request = request.header("If-Match", tag);
    }
    Reply::read(request).await
}

fn all_on() -> Value {
    json!({"realtime": true, "email": true, "sms": true})
}

#[tokio::test]
async fn defaults_then_a_put_is_read_back_with_its_etag() {
    let app = ApiApp::start(&[]).await;
    let ada = customer(&app, "Ada Lovelace").await;
    let client = app.client_of("t1", &ada);
    let path = format!("/customers/{ada}/preferences");

    let defaults = app.get(&path, &client).await;
    defaults.expect_status(200);
    assert_eq!(defaults.header("etag"), Some("\"defaults\""));
    assert_eq!(defaults.body["customerId"], ada.as_str());
    assert!(
        defaults.body.get("updatedAt").is_none(),
        "{}",
        defaults.text
    );
    let event_types = defaults.body["eventTypes"].as_object().expect("eventTypes");
    assert_eq!(event_types.len(), EventType::ALL.len());
    for kind in EventType::ALL {
        assert_eq!(event_types[kind.as_str()], all_on(), "{}", kind.as_str());
    }

    let body = json!({"eventTypes": {
        "order.shipped": {"realtime": false, "email": true, "sms": false},
        "marketing": {"email": false}
    }});
    let put = put_matching(&app, &path, &client, Some("\"defaults\""), &body).await;
    put.expect_status(200);
    let etag = put.header("etag").expect("an ETag").to_owned();
    assert_ne!(etag, "\"defaults\"");
    let set = put.body.clone();
    assert_eq!(
        set["eventTypes"]["order.shipped"],
        json!({"realtime": false, "email": true, "sms": false})
    );
    assert_eq!(
        set["eventTypes"]["marketing"],
        json!({"realtime": true, "email": false, "sms": true}),
        "channels left out are on"
    );
    assert_eq!(
        set["eventTypes"]["payment.failed"],
        all_on(),
        "event types left out are on"
    );
    assert!(set["updatedAt"].is_string());

    let read = app.get(&path, &client).await;
    assert_eq!(read.expect_status(200).body, set);
    assert_eq!(read.header("etag"), Some(etag.as_str()));

    let stale = put_matching(
        &app,
        &path,
        &client,
        Some("\"defaults\""),
        &json!({"eventTypes": {}}),
    )
    .await;
    stale.expect_problem(412);
    assert_eq!(
        app.get(&path, &client).await.body,
        set,
        "a stale write changed nothing"
    );
    let reset = put_matching(
        &app,
        &path,
        &client,
        Some(&etag),
        &json!({"eventTypes": {}}),
    )
    .await;
    assert_eq!(
        reset.expect_status(200).body["eventTypes"]["order.shipped"],
        all_on(),
        "the whole document is replaced"
    );
}

#[tokio::test]
async fn unknown_event_types_channels_and_fields_are_refused_naming_the_allowed_ones() {
    let app = ApiApp::start(&[]).await;
    let ada = customer(&app, "Ada Lovelace").await;
    let admin = app.admin("t1");
    let path = format!("/customers/{ada}/preferences");

    let unknown = put_matching(
        &app,
        &path,
        &admin,
        None,
        &json!({"eventTypes": {"order.lost": {"email": false}, "order.shipped": {"pigeon": true}}}),
    )
    .await;
    unknown.expect_problem(400);
    assert_eq!(
        unknown.error_fields(),
        ["eventTypes.order.lost", "eventTypes.order.shipped.pigeon"]
    );
    let messages = unknown.body["errors"].to_string();
    assert!(
        messages.contains("order.created") && messages.contains("message"),
        "{messages}"
    );
    assert!(messages.contains("realtime, email, sms"), "{messages}");

    for body in [
        json!({"eventTypes": {"order.shipped": {"sms": "no"}}}),
        json!({"eventTypes": {}, "channels": {}}),
        json!({}),
    ] {
        put_matching(&app, &path, &admin, None, &body)
            .await
            .expect_problem(400);
    }
    let untouched = app.get(&path, &admin).await;
    assert_eq!(
        untouched.header("etag"),
        Some("\"defaults\""),
        "nothing was stored"
    );
}

#[tokio::test]
async fn only_the_customer_and_staff_of_the_tenant_see_and_change_them() {
    let app = ApiApp::start(&[]).await;
    let ada = customer(&app, "Ada Lovelace").await;
    let bob = customer(&app, "Bob Builder").await;
    let adas = format!("/customers/{ada}/preferences");
    let quiet = json!({"eventTypes": {"order.created": {"sms": false}}});

    let bobs_client = app.client_of("t1", &bob);
    app.get(&adas, &bobs_client).await.expect_problem(404);
    put_matching(&app, &adas, &bobs_client, None, &quiet)
        .await
        .expect_problem(404);
    app.get(&adas, &app.admin("t2")).await.expect_problem(404);
    put_matching(&app, &adas, &app.admin("t2"), None, &quiet)
        .await
        .expect_problem(404);
    app.get("/customers/no-such-customer/preferences", &app.admin("t1"))
        .await
        .expect_problem(404);

    let manager = app.employee("t1", &[Role::OrderManager]);
    app.get(&adas, &manager).await.expect_status(200);
    put_matching(&app, &adas, &manager, None, &quiet)
        .await
        .expect_problem(403);
    let service = app.employee("t1", &[Role::CustomerService]);
    let changed = put_matching(&app, &adas, &service, None, &quiet).await;
    assert_eq!(
        changed.expect_status(200).body["eventTypes"]["order.created"]["sms"],
        false
    );

    let trail = app
        .get(&format!("/audit/gdpr/{ada}"), &app.admin("t1"))
        .await;
    let actions: Vec<&str> = trail.expect_status(200).body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|entry| entry["action"].as_str())
        .filter(|action| action.starts_with("preferences."))
        .collect();
    assert_eq!(
        actions,
        ["preferences.update", "preferences.read"],
        "the employee's read is in the GDPR trail, the client's 404s are not"
    );
}

#[tokio::test]
async fn the_export_carries_them_and_an_erasure_request_freezes_them() {
    let app = ApiApp::start(&[]).await;
    let ada = customer(&app, "Ada Lovelace").await;
    let client = app.client_of("t1", &ada);
    let path = format!("/customers/{ada}/preferences");
    let set = put_matching(
        &app,
        &path,
        &client,
        None,
        &json!({"eventTypes": {"payment.refunded": {"realtime": false}}}),
    )
    .await
    .expect_status(200)
    .body
    .clone();
    let export = app
        .post(
            &format!("/customers/{ada}/gdpr/export"),
            &client,
            &json!({}),
        )
        .await;
    assert_eq!(export.expect_status(200).body["preferences"], set);

    app.delete(&format!("/customers/{ada}"), &client)
        .await
        .expect_status(202);
    put_matching(&app, &path, &client, None, &json!({"eventTypes": {}}))
        .await
        .expect_problem(409);
}
