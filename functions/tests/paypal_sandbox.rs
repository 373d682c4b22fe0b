//! The local PayPal sandbox over real HTTP on loopback: OAuth and 401s, orders with vaulted
//! sources, captures, voids and refunds, `PayPal-Request-Id` replays and conflicts, the test
//! sources (decline, deny, flaky, timeout, slow), the transactions report, signed webhooks
//! verified independently of the sandbox (cert fetched from its URL, `rsa` + `x509-cert` +
//! `crc32fast`), and the outage drill.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use function_app::local::sandbox::paypal::{PayPalSandbox, RunningSandbox, SandboxConfig};
use reqwest::Client;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use x509_cert::der::{DecodePem, Encode};

const CLIENT_ID: &str = "test-client-id";
const CLIENT_SECRET: &str = "test-client-secret";

fn config() -> SandboxConfig {
    let mut config = SandboxConfig::new(CLIENT_ID, CLIENT_SECRET);
    config.timeout_reply_delay = Duration::from_secs(3);
    config.slow_capture_delay = Duration::from_millis(300);
    config.webhook_retry_delay = Duration::from_millis(100);
    config.webhook_max_attempts = 3;
    config
}

async fn start(config: SandboxConfig) -> RunningSandbox {
    PayPalSandbox::start(config).await.expect("sandbox starts")
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("JSON body")
    };
    (status, body)
}

async fn token(client: &Client, base: &str) -> String {
    let response = client
        .post(format!("{base}/v1/oauth2/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token request");
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

fn order_body(intent: &str, vault_id: &str, invoice_id: &str, value: &str) -> Value {
    json!({
        "intent": intent,
        "purchase_units": [{
            "reference_id": "order-1",
            "custom_id": "tenant-a:order-1",
            "invoice_id": invoice_id,
            "amount": {"currency_code": "USD", "value": value},
        }],
        "payment_source": {"card": {"vault_id": vault_id}},
    })
}

/// A client of one sandbox with a token.
struct Api {
    client: Client,
    base: String,
    token: String,
}

impl Api {
    async fn new(sandbox: &RunningSandbox) -> Self {
        let client = Client::new();
        let base = sandbox.base_url().to_owned();
        let token = token(&client, &base).await;
        Self {
            client,
            base,
            token,
        }
    }

    async fn post(&self, path: &str, request_id: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("PayPal-Request-Id", request_id)
            .json(body)
            .send()
            .await
            .expect("POST");
        read(response).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        read(response).await
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("admin POST");
        read(response).await.1
    }

    async fn state(&self) -> Value {
        let response = self
            .client
            .get(format!("{}/sandbox/state", self.base))
            .send()
            .await
            .expect("state");
        read(response).await.1
    }

    async fn authorize(&self, vault_id: &str, invoice_id: &str) -> Value {
        let body = order_body("AUTHORIZE", vault_id, invoice_id, "12.34");
        let (status, order) = self
            .post(
                "/v2/checkout/orders",
                &format!("create-{invoice_id}"),
                &body,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        order
    }
}

fn authorization_id(order: &Value) -> String {
    order["purchase_units"][0]["payments"]["authorizations"][0]["id"]
        .as_str()
        .expect("authorization id")
        .to_owned()
}

#[tokio::test]
async fn tokens_are_issued_for_the_right_credentials_and_required_everywhere() {
    let sandbox = start(config()).await;
    let base = sandbox.base_url().to_owned();
    let client = Client::new();

    let wrong = client
        .post(format!("{base}/v1/oauth2/token"))
        .basic_auth(CLIENT_ID, Some("wrong"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let (status, body) = read(wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": "invalid_client", "error_description": "Client Authentication failed"})
    );

    let no_grant = client
        .post(format!("{base}/v1/oauth2/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .send()
        .await
        .unwrap();
    let (status, body) = read(no_grant).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");

    let granted = client
        .post(format!("{base}/v1/oauth2/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let (status, body) = read(granted).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["access_token"].as_str().unwrap().starts_with("A21"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 32400);
    assert!(body["app_id"].as_str().unwrap().starts_with("APP-"));
    assert!(body["scope"]
        .as_str()
        .unwrap()
        .contains("https://uri.paypal.com/services/"));
    assert!(body["nonce"].is_string());
    let good = body["access_token"].as_str().unwrap().to_owned();

    let orders = format!("{base}/v2/checkout/orders/ABCDEFGHIJ1234567");
    let (status, body) = read(client.get(&orders).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["name"], "AUTHENTICATION_FAILURE");

    let (status, body) = read(
        client
            .get(&orders)
            .bearer_auth("A21AAnotatoken")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": "invalid_token", "error_description": "Token signature verification failed"})
    );

    let (status, body) = read(client.get(&orders).bearer_auth(&good).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["name"], "RESOURCE_NOT_FOUND");
    assert_eq!(body["details"][0]["issue"], "INVALID_RESOURCE_ID");
    assert!(body["debug_id"].is_string());

    let api = Api {
        client: client.clone(),
        base: base.clone(),
        token: good,
    };
    assert_eq!(
        api.admin("/sandbox/token-lifetime", json!({"seconds": 0}))
            .await["seconds"],
        0
    );
    let expired = token(&client, &base).await;
    let (status, body) = read(
        client
            .get(&orders)
            .bearer_auth(&expired)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "Access Token not found in cache");
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn authorize_capture_and_refund_in_full_and_in_parts() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;

    let order = api.authorize("sandbox-ok", "INV-1").await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(order_id.len(), 17);
    assert_eq!(order["status"], "COMPLETED");
    assert_eq!(order["intent"], "AUTHORIZE");
    assert_eq!(order["payment_source"]["card"]["last_digits"], "1111");
    assert_eq!(order["payment_source"]["card"]["brand"], "VISA");
    assert!(order["payer"]["payer_id"].is_string());
    let unit = &order["purchase_units"][0];
    assert_eq!(unit["reference_id"], "order-1");
    assert_eq!(unit["custom_id"], "tenant-a:order-1");
    assert_eq!(unit["invoice_id"], "INV-1");
    let auth = &unit["payments"]["authorizations"][0];
    assert_eq!(auth["status"], "CREATED");
    assert_eq!(
        auth["amount"],
        json!({"currency_code": "USD", "value": "12.34"})
    );
    assert_eq!(auth["custom_id"], "tenant-a:order-1");
    assert!(auth["expiration_time"].is_string());
    let auth_id = authorization_id(&order);

    let (status, fetched) = api.get(&format!("/v2/checkout/orders/{order_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(authorization_id(&fetched), auth_id);

    let capture_path = format!("/v2/payments/authorizations/{auth_id}/capture");
    let (status, capture) = api
        .post(
            &capture_path,
            "cap-1",
            &json!({"final_capture": true, "invoice_id": "INV-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{capture}");
    assert_eq!(capture["status"], "COMPLETED");
    assert_eq!(capture["amount"]["value"], "12.34");
    assert_eq!(capture["final_capture"], true);
    assert_eq!(capture["custom_id"], "tenant-a:order-1");
    assert_eq!(capture["invoice_id"], "INV-1");
    let capture_id = capture["id"].as_str().unwrap().to_owned();

    let (_, auth) = api
        .get(&format!("/v2/payments/authorizations/{auth_id}"))
        .await;
    assert_eq!(auth["status"], "CAPTURED");
    assert_eq!(
        auth["supplementary_data"]["related_ids"]["order_id"],
        order_id
    );

    let (status, again) = api
        .post(&capture_path, "cap-2", &json!({"final_capture": true}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again["name"], "UNPROCESSABLE_ENTITY");
    assert_eq!(
        again["details"][0]["issue"],
        "AUTHORIZATION_ALREADY_CAPTURED"
    );
    let (status, void) = api
        .post(
            &format!("/v2/payments/authorizations/{auth_id}/void"),
            "void-1",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(void["details"][0]["issue"], "PREVIOUSLY_CAPTURED");

    let refund_path = format!("/v2/payments/captures/{capture_id}/refund");
    let five = json!({"amount": {"currency_code": "USD", "value": "5.00"}});
    let (status, partial) = api.post(&refund_path, "ref-1", &five).await;
    assert_eq!(status, StatusCode::CREATED, "{partial}");
    assert_eq!(partial["status"], "COMPLETED");
    assert_eq!(partial["amount"]["value"], "5.00");
    let (_, capture) = api
        .get(&format!("/v2/payments/captures/{capture_id}"))
        .await;
    assert_eq!(capture["status"], "PARTIALLY_REFUNDED");

    let (status, rest) = api.post(&refund_path, "ref-2", &json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(rest["amount"]["value"], "7.34");
    let (_, refund) = api
        .get(&format!(
            "/v2/payments/refunds/{}",
            rest["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(refund["status"], "COMPLETED");
    assert_eq!(refund["amount"]["value"], "7.34");

    let (status, full) = api.post(&refund_path, "ref-3", &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(full["details"][0]["issue"], "CAPTURE_FULLY_REFUNDED");
    let (_, capture) = api
        .get(&format!("/v2/payments/captures/{capture_id}"))
        .await;
    assert_eq!(capture["status"], "REFUNDED");

    let (status, missing) = api.get("/v2/payments/captures/NOSUCHCAPTURE0000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["details"][0]["issue"], "INVALID_RESOURCE_ID");
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn intent_capture_completes_at_once_and_refunds_check_amounts() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let body = order_body("CAPTURE", "sandbox-ok", "INV-C", "20.00");
    let (status, order) = api.post("/v2/checkout/orders", "create-c", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let capture = &order["purchase_units"][0]["payments"]["captures"][0];
    assert_eq!(capture["status"], "COMPLETED");
    let refund_path = format!(
        "/v2/payments/captures/{}/refund",
        capture["id"].as_str().unwrap()
    );

    let too_much = json!({"amount": {"currency_code": "USD", "value": "20.01"}});
    let (status, body) = api.post(&refund_path, "r-1", &too_much).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["issue"], "REFUND_AMOUNT_EXCEEDED");
    assert!(body["links"][0]["href"]
        .as_str()
        .unwrap()
        .contains("#error-REFUND_AMOUNT_EXCEEDED"));

    let euros = json!({"amount": {"currency_code": "EUR", "value": "1.00"}});
    let (status, body) = api.post(&refund_path, "r-2", &euros).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["details"][0]["issue"],
        "REFUND_CAPTURE_CURRENCY_MISMATCH"
    );

    let denied = order_body("CAPTURE", "sandbox-deny", "INV-C2", "3.00");
    let (status, order) = api.post("/v2/checkout/orders", "create-c2", &denied).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        order["purchase_units"][0]["payments"]["captures"][0]["status"],
        "DECLINED"
    );
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn partial_captures_stay_within_the_authorization_and_minimal_answers_are_short() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let auth_id = authorization_id(&api.authorize("sandbox-ok", "INV-P").await);
    let capture = format!("{}/v2/payments/authorizations/{auth_id}/capture", api.base);
    let two = json!({"amount": {"currency_code": "USD", "value": "2.00"}, "final_capture": false});
    let response = api
        .client
        .post(&capture)
        .bearer_auth(&api.token)
        .header("PayPal-Request-Id", "part-1")
        .header("Prefer", "return=minimal")
        .json(&two)
        .send()
        .await
        .unwrap();
    let (status, minimal) = read(response).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut keys: Vec<&String> = minimal.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["id", "links", "status"]);
    let (_, auth) = api
        .get(&format!("/v2/payments/authorizations/{auth_id}"))
        .await;
    assert_eq!(auth["status"], "PARTIALLY_CAPTURED");

    let path = format!("/v2/payments/authorizations/{auth_id}/capture");
    let over = json!({"amount": {"currency_code": "USD", "value": "10.35"}});
    let (status, body) = api.post(&path, "part-2", &over).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["issue"], "MAX_CAPTURE_AMOUNT_EXCEEDED");
    let (status, rest) = api.post(&path, "part-3", &json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(rest["amount"]["value"], "10.34");
    let (_, auth) = api
        .get(&format!("/v2/payments/authorizations/{auth_id}"))
        .await;
    assert_eq!(auth["status"], "CAPTURED");
    assert_eq!(api.state().await["captures"], 2);
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn request_ids_replay_the_same_order_and_refuse_another_body() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let body = order_body("AUTHORIZE", "sandbox-ok", "INV-R", "12.34");
    let (first_status, first) = api.post("/v2/checkout/orders", "same-id", &body).await;
    let (second_status, second) = api.post("/v2/checkout/orders", "same-id", &body).await;
    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(second_status, StatusCode::OK);
    assert_eq!(first["id"], second["id"]);
    assert_eq!(authorization_id(&first), authorization_id(&second));

    let other = order_body("AUTHORIZE", "sandbox-ok", "INV-R", "99.00");
    let (status, refused) = api.post("/v2/checkout/orders", "same-id", &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["details"][0]["issue"],
        "PAYPAL_REQUEST_ID_PREVIOUSLY_USED"
    );
    let (status, duplicate) = api.post("/v2/checkout/orders", "other-id", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(duplicate["details"][0]["issue"], "DUPLICATE_INVOICE_ID");

    let state = api.state().await;
    assert_eq!(state["orders"], 1);
    assert_eq!(state["authorizations"], 1);
    assert_eq!(state["request_attempts"]["same-id"], 3);
    assert_eq!(state["request_attempts"]["other-id"], 1);

    let without_id = api
        .client
        .post(format!("{}/v2/checkout/orders", api.base))
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, body) = read(without_id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"][0]["issue"], "PAYPAL_REQUEST_ID_REQUIRED");
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_bodies_get_paypal_validation_errors() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let (status, body) = api
        .post(
            "/v2/checkout/orders",
            "v-1",
            &order_body("AUTHORIZE", "sandbox-ok", "INV-V", "12,34"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["name"], "INVALID_REQUEST");
    assert_eq!(
        body["message"],
        "Request is not well-formed, syntactically incorrect, or violates schema."
    );
    let detail = &body["details"][0];
    assert_eq!(detail["field"], "/purchase_units/0/amount/value");
    assert_eq!(detail["value"], "12,34");
    assert_eq!(detail["location"], "body");
    assert_eq!(detail["issue"], "INVALID_PARAMETER_SYNTAX");
    assert_eq!(body["links"][0]["rel"], "information_link");

    let (status, body) = api
        .post(
            "/v2/checkout/orders",
            "v-2",
            &order_body("AUTHORIZE", "sandbox-ok", "INV-V", "1.234"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["issue"], "DECIMAL_PRECISION");

    let mut no_intent = order_body("AUTHORIZE", "sandbox-ok", "INV-V", "1.00");
    no_intent.as_object_mut().unwrap().remove("intent");
    let (status, body) = api.post("/v2/checkout/orders", "v-3", &no_intent).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"][0]["field"], "/intent");
    assert_eq!(body["details"][0]["issue"], "MISSING_REQUIRED_PARAMETER");

    let malformed = api
        .client
        .post(format!("{}/v2/checkout/orders", api.base))
        .bearer_auth(&api.token)
        .header("PayPal-Request-Id", "v-4")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = read(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"][0]["issue"], "MALFORMED_REQUEST_JSON");
    assert_eq!(api.state().await["orders"], 0);
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn declined_denied_and_unknown_sources() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let (status, body) = api
        .post(
            "/v2/checkout/orders",
            "d-1",
            &order_body("AUTHORIZE", "sandbox-decline", "INV-D1", "5.00"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["name"], "UNPROCESSABLE_ENTITY");
    assert_eq!(body["details"][0]["issue"], "INSTRUMENT_DECLINED");

    let denied = api.authorize("sandbox-deny", "INV-D2").await;
    assert_eq!(
        denied["purchase_units"][0]["payments"]["authorizations"][0]["status"],
        "DENIED"
    );
    let capture = format!(
        "/v2/payments/authorizations/{}/capture",
        authorization_id(&denied)
    );
    let (status, body) = api.post(&capture, "d-3", &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["issue"], "AUTHORIZATION_DENIED");

    let (status, body) = api
        .post(
            "/v2/checkout/orders",
            "d-4",
            &order_body("AUTHORIZE", "no-such-vault", "INV-D4", "5.00"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["issue"], "INVALID_RESOURCE_ID");
    assert_eq!(body["details"][0]["field"], "/payment_source/card/vault_id");
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn capture_decline_source_refuses_the_capture_and_leaves_the_authorization_voidable() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let order = api.authorize("sandbox-capture-decline", "INV-CD").await;
    let auth_id = authorization_id(&order);
    assert_eq!(
        order["purchase_units"][0]["payments"]["authorizations"][0]["status"], "CREATED",
        "the funds are held: {order}"
    );
    let capture = format!("/v2/payments/authorizations/{auth_id}/capture");
    let (status, body) = api.post(&capture, "cd-cap", &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["name"], "UNPROCESSABLE_ENTITY", "{body}");
    assert_eq!(body["details"][0]["issue"], "INSTRUMENT_DECLINED");
    assert!(
        body["debug_id"].is_string() && body["links"].is_array(),
        "{body}"
    );
    assert_eq!(api.state().await["captures"], 0, "no capture was made");
    let (_, auth) = api
        .get(&format!("/v2/payments/authorizations/{auth_id}"))
        .await;
    assert_eq!(auth["status"], "CREATED", "still voidable: {auth}");
    let (status, _) = api
        .post(
            &format!("/v2/payments/authorizations/{auth_id}/void"),
            "cd-void",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, auth) = api
        .get(&format!("/v2/payments/authorizations/{auth_id}"))
        .await;
    assert_eq!(auth["status"], "VOIDED");
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn flaky_source_fails_twice_per_request_id_then_succeeds() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let body = order_body("AUTHORIZE", "sandbox-flaky", "INV-F", "8.00");
    for _ in 0..2 {
        let (status, unavailable) = api.post("/v2/checkout/orders", "flaky-1", &body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable["name"], "SERVICE_UNAVAILABLE");
    }
    assert_eq!(api.state().await["orders"], 0);
    let (status, order) = api.post("/v2/checkout/orders", "flaky-1", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");

    let capture = format!(
        "/v2/payments/authorizations/{}/capture",
        authorization_id(&order)
    );
    let statuses = [
        api.post(&capture, "flaky-cap", &json!({})).await.0,
        api.post(&capture, "flaky-cap", &json!({})).await.0,
        api.post(&capture, "flaky-cap", &json!({})).await.0,
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::CREATED
        ]
    );
    let state = api.state().await;
    assert_eq!(state["request_attempts"]["flaky-1"], 3);
    assert_eq!(state["captures"], 1);
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn timeout_source_answers_late_once_and_a_retry_gets_the_stored_result() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let body = order_body("AUTHORIZE", "sandbox-timeout", "INV-T", "9.99");
    let impatient = api
        .client
        .post(format!("{}/v2/checkout/orders", api.base))
        .bearer_auth(&api.token)
        .header("PayPal-Request-Id", "slow-1")
        .json(&body)
        .timeout(Duration::from_millis(800))
        .send()
        .await;
    assert!(impatient.is_err_and(|error| error.is_timeout()));
    assert_eq!(
        api.state().await["orders"],
        1,
        "processed although the answer was late"
    );

    let started = Instant::now();
    let (status, order) = api.post("/v2/checkout/orders", "slow-1", &body).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the retry is answered at once"
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order["purchase_units"][0]["invoice_id"], "INV-T");
    assert_eq!(api.state().await["orders"], 1);
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn voided_authorization_cannot_be_captured() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let auth_id = authorization_id(&api.authorize("sandbox-ok", "INV-VOID").await);
    let void = format!("/v2/payments/authorizations/{auth_id}/void");
    let response = api
        .client
        .post(format!("{}{void}", api.base))
        .bearer_auth(&api.token)
        .header("PayPal-Request-Id", "void-a")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let (_, auth) = api
        .get(&format!("/v2/payments/authorizations/{auth_id}"))
        .await;
    assert_eq!(auth["status"], "VOIDED");
    let (status, body) = api
        .post(
            &format!("/v2/payments/authorizations/{auth_id}/capture"),
            "cap-v",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["issue"], "AUTHORIZATION_VOIDED");
    let (status, body) = api.post(&void, "void-b", &json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["issue"], "PREVIOUSLY_VOIDED");
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn transactions_report_lists_the_days_captures_and_refunds() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let auth_id = authorization_id(&api.authorize("sandbox-ok", "INV-REP").await);
    let (_, capture) = api
        .post(
            &format!("/v2/payments/authorizations/{auth_id}/capture"),
            "rep-c",
            &json!({}),
        )
        .await;
    let capture_id = capture["id"].as_str().unwrap().to_owned();
    let two = json!({"amount": {"currency_code": "USD", "value": "2.00"}});
    let (_, refund) = api
        .post(
            &format!("/v2/payments/captures/{capture_id}/refund"),
            "rep-r",
            &two,
        )
        .await;

    let now = chrono::Utc::now();
    let start_date = (now - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S%z")
        .to_string();
    let end_date = (now + chrono::Duration::hours(1)).to_rfc3339();
    let response = api
        .client
        .get(format!("{}/v1/reporting/transactions", api.base))
        .bearer_auth(&api.token)
        .query(&[
            ("start_date", start_date.as_str()),
            ("end_date", end_date.as_str()),
            ("fields", "all"),
            ("page_size", "100"),
            ("page", "1"),
        ])
        .send()
        .await
        .unwrap();
    let (status, report) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["total_items"], 2);
    assert_eq!(report["page"], 1);
    assert_eq!(report["total_pages"], 1);
    let rows = report["transaction_details"].as_array().unwrap();
    let info = |id: &str| {
        rows.iter()
            .map(|row| &row["transaction_info"])
            .find(|info| info["transaction_id"] == id)
            .cloned()
            .expect("row")
    };
    let captured = info(&capture_id);
    assert_eq!(captured["transaction_event_code"], "T0006");
    assert_eq!(
        captured["transaction_amount"],
        json!({"currency_code": "USD", "value": "12.34"})
    );
    assert_eq!(captured["transaction_status"], "S");
    assert_eq!(captured["invoice_id"], "INV-REP");
    assert_eq!(captured["custom_field"], "tenant-a:order-1");
    let refunded = info(refund["id"].as_str().unwrap());
    assert_eq!(refunded["transaction_event_code"], "T1107");
    assert_eq!(refunded["transaction_amount"]["value"], "-2.00");
    assert_eq!(refunded["paypal_reference_id"], capture_id.as_str());

    let far = (now - chrono::Duration::days(40)).to_rfc3339();
    let response = api
        .client
        .get(format!("{}/v1/reporting/transactions", api.base))
        .bearer_auth(&api.token)
        .query(&[
            ("start_date", far.as_str()),
            ("end_date", end_date.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["name"], "INVALID_REQUEST");
    sandbox.shutdown().await.unwrap();
}

/// One webhook as the receiver got it.
struct Delivery {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A loopback webhook receiver that answers 500 to the first `failures` deliveries.
async fn receiver(failures: usize) -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let (sender, received) = mpsc::unbounded_channel();
    let seen = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/webhooks/paypal",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let sender = sender.clone();
            let seen = seen.clone();
            async move {
                let _ = sender.send(Delivery {
                    headers,
                    body: body.to_vec(),
                });
                if seen.fetch_add(1, Ordering::SeqCst) < failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/webhooks/paypal"), received)
}

async fn next(received: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("a webhook in time")
        .expect("receiver open")
}

fn header<'a>(delivery: &'a Delivery, name: &str) -> &'a str {
    delivery
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .expect(name)
}

/// Verifies a delivery as an app would, without the sandbox's code: the certificate from
/// `PAYPAL-CERT-URL`, and `transmission_id|time|webhook_id|crc32(body)`.
async fn verify(client: &Client, delivery: &Delivery, webhook_id: &str, body: &[u8]) -> bool {
    let pem = client
        .get(header(delivery, "paypal-cert-url"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let certificate = x509_cert::Certificate::from_pem(pem.as_bytes()).expect("PEM certificate");
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    let key = rsa::RsaPublicKey::from_public_key_der(&spki).expect("RSA key");
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key);
    let message = format!(
        "{}|{}|{}|{}",
        header(delivery, "paypal-transmission-id"),
        header(delivery, "paypal-transmission-time"),
        webhook_id,
        crc32fast::hash(body)
    );
    let signature = base64::engine::general_purpose::STANDARD
        .decode(header(delivery, "paypal-transmission-sig"))
        .unwrap();
    let signature = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
    verifier.verify(message.as_bytes(), &signature).is_ok()
}

#[tokio::test]
async fn webhooks_are_signed_as_paypal_signs_them_retried_and_replayable() {
    let (url, mut received) = receiver(1).await;
    let mut config = config();
    config.webhook_url = Some(url);
    config.webhook_id = "WEBHOOK-ID-1".into();
    let sandbox = start(config).await;
    let api = Api::new(&sandbox).await;
    let order = api.authorize("sandbox-ok", "INV-W").await;

    let first = next(&mut received).await;
    let retry = next(&mut received).await;
    let event: Value = serde_json::from_slice(&retry.body).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&first.body).unwrap()["id"],
        event["id"]
    );
    assert!(event["id"].as_str().unwrap().starts_with("WH-"));
    assert_eq!(event["event_type"], "PAYMENT.AUTHORIZATION.CREATED");
    assert_eq!(event["resource_type"], "authorization");
    assert_eq!(event["event_version"], "1.0");
    assert_eq!(event["resource_version"], "2.0");
    let resource = &event["resource"];
    assert_eq!(resource["id"], authorization_id(&order).as_str());
    assert_eq!(resource["custom_id"], "tenant-a:order-1");
    assert_eq!(resource["invoice_id"], "INV-W");
    assert_eq!(resource["amount"]["value"], "12.34");
    assert_eq!(
        resource["supplementary_data"]["related_ids"]["order_id"],
        order["id"]
    );

    assert_eq!(header(&retry, "paypal-auth-algo"), "SHA256withRSA");
    assert_eq!(header(&retry, "paypal-auth-version"), "v2");
    assert!(uuid::Uuid::parse_str(header(&retry, "paypal-transmission-id")).is_ok());
    assert!(
        chrono::DateTime::parse_from_rfc3339(header(&retry, "paypal-transmission-time")).is_ok()
    );
    assert!(header(&retry, "paypal-cert-url")
        .starts_with(&format!("{}/v1/notifications/certs/CERT-", api.base)));
    assert!(verify(&api.client, &retry, "WEBHOOK-ID-1", &retry.body).await);
    assert!(verify(&api.client, &first, "WEBHOOK-ID-1", &first.body).await);
    assert!(!verify(&api.client, &retry, "OTHER-WEBHOOK", &retry.body).await);
    let mut tampered = retry.body.clone();
    tampered.push(b' ');
    assert!(!verify(&api.client, &retry, "WEBHOOK-ID-1", &tampered).await);

    let event_id = event["id"].as_str().unwrap();
    let replayed = api
        .admin(&format!("/sandbox/webhooks/replay/{event_id}"), json!({}))
        .await;
    assert_eq!(replayed["replayed"], event_id);
    let duplicate = next(&mut received).await;
    assert_eq!(duplicate.body, retry.body, "the same event, byte for byte");
    assert_ne!(
        header(&duplicate, "paypal-transmission-id"),
        header(&retry, "paypal-transmission-id")
    );
    assert!(verify(&api.client, &duplicate, "WEBHOOK-ID-1", &duplicate.body).await);

    let void = format!(
        "/v2/payments/authorizations/{}/void",
        authorization_id(&order)
    );
    assert_eq!(
        api.post(&void, "void-w", &json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    let voided: Value = serde_json::from_slice(&next(&mut received).await.body).unwrap();
    assert_eq!(voided["event_type"], "PAYMENT.AUTHORIZATION.VOIDED");
    assert_eq!(voided["resource"]["status"], "VOIDED");
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn slow_source_captures_pending_then_completed_with_webhooks() {
    let (url, mut received) = receiver(0).await;
    let mut config = config();
    config.webhook_url = Some(url);
    let sandbox = start(config).await;
    let api = Api::new(&sandbox).await;
    let auth_id = authorization_id(&api.authorize("sandbox-slow", "INV-S").await);
    let created: Value = serde_json::from_slice(&next(&mut received).await.body).unwrap();
    assert_eq!(created["event_type"], "PAYMENT.AUTHORIZATION.CREATED");

    let (status, capture) = api
        .post(
            &format!("/v2/payments/authorizations/{auth_id}/capture"),
            "slow-cap",
            &json!({"final_capture": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(capture["status"], "PENDING");
    let capture_id = capture["id"].as_str().unwrap();
    let pending: Value = serde_json::from_slice(&next(&mut received).await.body).unwrap();
    assert_eq!(pending["event_type"], "PAYMENT.CAPTURE.PENDING");
    let completed: Value = serde_json::from_slice(&next(&mut received).await.body).unwrap();
    assert_eq!(completed["event_type"], "PAYMENT.CAPTURE.COMPLETED");
    assert_eq!(completed["resource"]["id"], capture_id);
    assert_eq!(completed["resource"]["status"], "COMPLETED");
    assert_eq!(
        completed["resource"]["supplementary_data"]["related_ids"]["authorization_id"],
        auth_id.as_str()
    );
    let (_, fetched) = api
        .get(&format!("/v2/payments/captures/{capture_id}"))
        .await;
    assert_eq!(fetched["status"], "COMPLETED");

    let refund = format!("/v2/payments/captures/{capture_id}/refund");
    let (status, refund) = api.post(&refund, "slow-ref", &json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let refunded: Value = serde_json::from_slice(&next(&mut received).await.body).unwrap();
    assert_eq!(refunded["event_type"], "PAYMENT.CAPTURE.REFUNDED");
    assert_eq!(refunded["resource_type"], "refund");
    assert_eq!(refunded["resource"]["id"], refund["id"]);
    assert_eq!(refunded["resource"]["amount"]["value"], "12.34");
    assert_eq!(refunded["resource"]["invoice_id"], "INV-S");
    assert_eq!(
        refunded["resource"]["supplementary_data"]["related_ids"]["capture_id"],
        capture_id
    );
    sandbox.shutdown().await.unwrap();
}

#[tokio::test]
async fn outage_modes_answer_503_or_drop_connections_until_lifted() {
    let sandbox = start(config()).await;
    let api = Api::new(&sandbox).await;
    let order = "/v2/checkout/orders/ABCDEFGHIJ1234567";

    assert_eq!(
        api.admin("/sandbox/outage", json!({"mode": "unavailable"}))
            .await["mode"],
        "unavailable"
    );
    let (status, body) = api.get(order).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["name"], "SERVICE_UNAVAILABLE");
    let token = api
        .client
        .post(format!("{}/v1/oauth2/token", api.base))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(token.status().as_u16(), 503);

    api.admin("/sandbox/outage", json!({"mode": "refuse"}))
        .await;
    let dropped = api
        .client
        .get(format!("{}{order}", api.base))
        .bearer_auth(&api.token)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let error = dropped.expect_err("the connection is dropped, no HTTP answer");
    assert!(!error.is_timeout(), "dropped at once, not hung: {error}");
    assert_eq!(
        api.state().await["outage"],
        "refuse",
        "the admin routes stay reachable"
    );

    assert_eq!(
        api.admin("/sandbox/outage", json!({"mode": "none"})).await["mode"],
        "none"
    );
    let (status, body) = api.get(order).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "served again: {body}");
    sandbox.shutdown().await.unwrap();
}
