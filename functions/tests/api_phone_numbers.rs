//! Customers' phone numbers through the API: written as people write them, stored in E.164,
//! and refused with a message saying what was expected.

mod common;

use common::ApiApp;
use serde_json::json;
use shared::auth::Role;

#[tokio::test]
async fn a_formatted_number_is_accepted_and_stored_in_e164_on_create_and_update() {
    let app = ApiApp::start(&[]).await;
    let staff = app.employee("t1", &[Role::CustomerService]);
    let created = app
        .post(
            "/customers",
            &staff,
            &json!({"name": "Ada", "email": "ada@example.org", "phone": "+44 20 7946 0001"}),
        )
        .await;
    created.expect_status(201);
    assert_eq!(created.body["phone"], "+442079460001");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let read = app.get(&format!("/customers/{id}"), &staff).await;
    read.expect_status(200);
    assert_eq!(read.body["phone"], "+442079460001", "stored normalised");

    let etag = read.header("etag").unwrap().to_owned();
    let updated = common::Reply::read(
        app.request(
            reqwest::Method::PUT,
            &format!("/customers/{id}"),
            Some(&staff),
        )
        .header("if-match", &etag)
        .json(&json!({"name": "Ada", "email": "ada@example.org", "phone": "+1 (202) 555-0143"})),
    )
    .await;
    updated.expect_status(200);
    assert_eq!(updated.body["phone"], "+12025550143");
}

#[tokio::test]
async fn a_number_without_country_code_is_refused_saying_what_was_expected() {
    let app = ApiApp::start(&[]).await;
    let staff = app.employee("t1", &[Role::CustomerService]);
    for (phone, expected) in [
        ("020 7946 0001", "must start with + and the country code"),
        ("+44 20 7946 0001 ext. 2", "no letters or extensions"),
        ("+44 12", "like +44 20 7946 0001"),
    ] {
        let refused = app
            .post(
                "/customers",
                &staff,
                &json!({"name": "Ada", "email": "ada@example.org", "phone": phone}),
            )
            .await;
        let problem = refused.expect_problem(400);
        assert_eq!(refused.error_fields(), ["phone"], "{phone}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{phone}: {message}");
    }
}
