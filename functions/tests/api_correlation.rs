//! Correlation ids: every API response carries `x-correlation-id`, the caller's own when it
//! sent a usable one, and it is the id the request's audit entries carry.

mod common;

use common::ApiApp;

#[tokio::test]
async fn a_callers_correlation_id_is_echoed_and_audited() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let request = app
        .request(reqwest::Method::POST, "/customers", Some(&admin))
        .header("x-correlation-id", "apim.req:42-a")
        .json(&serde_json::json!({"name": "Corr Elation", "email": "corr@example.org"}));
    let reply = common::Reply::read(request).await;
    reply.expect_status(201);
    assert_eq!(reply.header("x-correlation-id"), Some("apim.req:42-a"));
    let audit = app.get("/audit/logs?action=customer.create", &admin).await;
    assert_eq!(audit.body["items"][0]["correlationId"], "apim.req:42-a");
}

#[tokio::test]
async fn without_one_a_new_id_is_given_and_it_is_the_audited_one() {
    let app = ApiApp::start(&[]).await;
    let admin = app.admin("t1");
    let reply = app
        .post(
            "/customers",
            &admin,
            &serde_json::json!({"name": "No Header", "email": "none@example.org"}),
        )
        .await;
    reply.expect_status(201);
    let given = reply
        .header("x-correlation-id")
        .expect("a correlation id is always echoed")
        .to_owned();
    assert!(given.len() >= 16, "{given}");
    let audit = app.get("/audit/logs?action=customer.create", &admin).await;
    assert_eq!(audit.body["items"][0]["correlationId"], given.as_str());
    // Refusals carry one too (no audit entry, but the caller can quote it).
    let refused = app.get("/customers", "not-a-token").await;
    assert_eq!(refused.status, 401);
    assert!(refused.header("x-correlation-id").is_some());
}
