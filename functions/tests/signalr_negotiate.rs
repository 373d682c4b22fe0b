//! `POST /api/v1/notifications/negotiate` through the local host, as the Functions host runs
//! it: the `signalRConnectionInfo` binding resolved from the `x-ms-signalr-userid` header, the
//! envelope to the handler, the handler's check that the header is the token's own user id.
//! The official client's whole flow is `scripts/test-signalr`.

mod common;

use common::ApiApp;
use serde_json::Value;

const HEADER: &str = "x-ms-signalr-userid";

async fn negotiate(app: &ApiApp, token: &str, user_id: Option<&str>) -> common::Reply {
    let mut request = app.request(
        reqwest::Method::POST,
        "/notifications/negotiate",
        Some(token),
    );
    if let Some(user_id) = user_id {
        request = request.header(HEADER, user_id);
    }
    common::Reply::read(request).await
}

#[tokio::test]
async fn a_client_gets_a_connection_for_their_own_user_id_only() {
    let app = ApiApp::start(&[]).await;
    let ada = app.client_of("contoso", "c-ada");
    let reply = negotiate(&app, &ada, Some("contoso:customer:c-ada")).await;
    reply.expect_status(200);
    let url = reply.body["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("{}/signalr/client/?hub=notifications", app.base)
    );
    let token = reply.body["accessToken"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT");

    // The service's negotiate accepts that token for that URL.
    let service = app
        .http_at(
            reqwest::Method::POST,
            "/signalr/client/negotiate?hub=notifications&negotiateVersion=1",
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(service.status(), 200);
    let body: Value = service.json().await.unwrap();
    assert_eq!(body["negotiateVersion"], 1);
    assert_eq!(body["availableTransports"][0]["transport"], "WebSockets");
    assert!(body["connectionToken"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn a_spoofed_or_foreign_user_id_is_refused() {
    let app = ApiApp::start(&[]).await;
    let bob = app.client_of("contoso", "c-bob");
    for spoofed in [
        "contoso:customer:c-ada",
        "fabrikam:customer:c-bob",
        "contoso:employee:dev-employee",
    ] {
        negotiate(&app, &bob, Some(spoofed))
            .await
            .expect_problem(403);
    }
    let admin = app.admin("contoso");
    negotiate(&app, &admin, Some("contoso:customer:c-bob"))
        .await
        .expect_problem(403);
    negotiate(&app, &admin, Some("contoso:employee:dev-employee"))
        .await
        .expect_status(200);
}

#[tokio::test]
async fn without_the_header_the_binding_fails_and_without_a_token_the_caller_is_refused() {
    let app = ApiApp::start(&[]).await;
    let ada = app.client_of("contoso", "c-ada");
    let reply = negotiate(&app, &ada, None).await;
    let problem = reply.expect_problem(500);
    assert!(
        problem["detail"].as_str().unwrap().contains(HEADER),
        "{problem}"
    );

    let anonymous = common::Reply::read(
        app.request(reqwest::Method::POST, "/notifications/negotiate", None)
            .header(HEADER, "contoso:customer:c-ada"),
    )
    .await;
    anonymous.expect_problem(401);
}

#[tokio::test]
async fn the_service_refuses_tokens_it_did_not_mint() {
    let app = ApiApp::start(&[]).await;
    let not_its_own = app.client_of("contoso", "c-ada");
    let service = app
        .http_at(
            reqwest::Method::POST,
            "/signalr/client/negotiate?hub=notifications&negotiateVersion=1",
        )
        .bearer_auth(not_its_own)
        .send()
        .await
        .unwrap();
    assert_eq!(service.status(), 401);
}
