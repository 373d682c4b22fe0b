//! The PayPal adapter against a loopback fake of PayPal's REST API: the requests it sends
//! (paths, bearer token, `PayPal-Request-Id`, JSON bodies), how it reads PayPal's answers and
//! error bodies, amounts in minor units; webhook verification with a certificate made here.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use chrono::{TimeZone, Utc};
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{Keypair, SignatureEncoding, Signer};
use serde_json::{json, Value};
use sha2::Sha256;
use shared::outbound::{OutboundClient, Secret};
use shared::payments::paypal::types::{
    AuthorizationStatus, AuthorizeOutcome, AuthorizeRequest, CaptureStatus, RefundOutcome,
    RefundStatus,
};
use shared::payments::paypal::{
    Money, PayPalClient, PayPalError, WebhookConfig, WebhookError, WebhookEventKind,
    WebhookVerifier,
};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::EncodePem;

/// One request the fake received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    authorization: Option<String>,
    request_id: Option<String>,
    prefer: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Fake {
    seen: Mutex<Vec<Seen>>,
    cert_pem: Mutex<String>,
    cert_fetches: AtomicUsize,
}

impl Fake {
    fn api_calls(&self) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.path != "/v1/oauth2/token")
            .cloned()
            .collect()
    }
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn paypal(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if path == "/certs/paypal.pem" {
        fake.cert_fetches.fetch_add(1, Ordering::SeqCst);
        return fake.cert_pem.lock().unwrap().clone().into_response();
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_owned(),
        authorization: text(&headers, "authorization"),
        request_id: text(&headers, "paypal-request-id"),
        prefer: text(&headers, "prefer"),
        body: body.clone(),
    });
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["v1", "oauth2", "token"]) => Json(json!({
            "scope": "https://uri.paypal.com/services/payments/payment",
            "access_token": "A21AAtoken", "token_type": "Bearer", "app_id": "APP-1", "expires_in": 32400,
            "nonce": "n"
        }))
        .into_response(),
        ("POST", ["v2", "checkout", "orders"]) => create_order(&body),
        ("POST", ["v2", "payments", "authorizations", "AUTH-BAD", "capture"]) => paypal_error(
            400,
            "INVALID_REQUEST",
            "INVALID_PARAMETER_VALUE",
        ),
        ("POST", ["v2", "payments", "authorizations", id, "capture"]) => (
            StatusCode::CREATED,
            Json(json!({
                "id": "CAP-1", "status": "COMPLETED", "amount": body["amount"], "final_capture": true,
                "custom_id": "pay-1",
                "supplementary_data": {"related_ids": {"order_id": "ORDER-1", "authorization_id": id}}
            })),
        )
            .into_response(),
        ("POST", ["v2", "payments", "authorizations", _, "void"]) => StatusCode::NO_CONTENT.into_response(),
        ("POST", ["v2", "payments", "captures", "CAP-FULL", "refund"]) => {
            paypal_error(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
        }
        ("POST", ["v2", "payments", "captures", id, "refund"]) => (
            StatusCode::CREATED,
            Json(json!({
                "id": "REF-1", "status": "COMPLETED", "amount": body["amount"],
                "links": [{"href": format!("https://api.paypal.com/v2/payments/captures/{id}"), "rel": "up", "method": "GET"}]
            })),
        )
            .into_response(),
        ("GET", ["v2", "payments", "authorizations", id]) => Json(json!({
            "id": id, "status": "VOIDED", "amount": {"currency_code": "EUR", "value": "10.00"},
            "custom_id": "pay-1", "expiration_time": "2030-01-30T00:00:00Z",
            "supplementary_data": {"related_ids": {"order_id": "ORDER-1"}}
        }))
        .into_response(),
        ("GET", ["v2", "payments", "captures", id]) => Json(json!({
            "id": id, "status": "PENDING", "status_details": {"reason": "PENDING_REVIEW"},
            "amount": {"currency_code": "USD", "value": "7.5"}
        }))
        .into_response(),
        ("GET", ["v2", "payments", "refunds", id]) => Json(json!({
            "id": id, "status": "FAILED", "amount": {"currency_code": "USD", "value": "1.00"},
            "links": [{"href": "https://api.paypal.com/v2/payments/captures/CAP-9", "rel": "up", "method": "GET"}]
        }))
        .into_response(),
        ("GET", ["v2", "checkout", "orders", id]) => Json(json!({
            "id": id, "status": "COMPLETED",
            "purchase_units": [{"reference_id": "order-1", "payments": {
                "authorizations": [{"id": "AUTH-1", "status": "CAPTURED", "amount": {"currency_code": "USD", "value": "12.34"}}],
                "captures": [{"id": "CAP-1", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "12.34"}}]
            }}]
        }))
        .into_response(),
        ("GET", ["v1", "reporting", "transactions"]) => transactions_page(&uri),
        _ => paypal_error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID"),
    }
}

fn paypal_error(status: u16, name: &str, issue: &str) -> Response {
    let body = json!({
        "name": name, "message": "The requested action could not be performed.",
        "debug_id": "dbg-123", "details": [{"issue": issue, "description": "Card of ann@example.com"}]
    });
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

fn create_order(body: &Value) -> Response {
    let unit = &body["purchase_units"][0];
    match body["payment_source"]["card"]["vault_id"].as_str() {
        Some("vault-declined") => paypal_error(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED"),
        Some("vault-3ds") => (
            StatusCode::OK,
            Json(json!({"id": "ORDER-2", "status": "PAYER_ACTION_REQUIRED", "links": []})),
        )
            .into_response(),
        Some(vault) => {
            let status = if vault == "vault-denied" {
                "DENIED"
            } else {
                "CREATED"
            };
            let order = json!({
                "id": "ORDER-1", "status": "COMPLETED",
                "payer": {"name": {"given_name": "Ann", "surname": "Lee"}, "email_address": "ann@example.com"},
                "purchase_units": [{"reference_id": unit["reference_id"], "payments": {"authorizations": [{
                    "id": "AUTH-1", "status": status, "amount": unit["amount"],
                    "custom_id": unit["custom_id"], "expiration_time": "2030-01-30T00:00:00Z"
                }]}}]
            });
            (StatusCode::CREATED, Json(order)).into_response()
        }
        None => paypal_error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER"),
    }
}

fn transactions_page(uri: &Uri) -> Response {
    let query = uri.query().unwrap_or_default();
    let page: u32 = query
        .split('&')
        .find_map(|p| p.strip_prefix("page="))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let rows: Vec<Value> = (0..2)
        .map(|i| {
            json!({"transaction_info": {
                "transaction_id": format!("TX-{page}-{i}"), "transaction_event_code": "T0006",
                "transaction_status": "S", "invoice_id": "pay-1", "custom_field": "pay-1",
                "transaction_initiation_date": "2024-03-01T10:00:00+0000",
                "transaction_amount": {"currency_code": "USD", "value": if i == 0 { "12.34" } else { "-2.00" }}
            }})
        })
        .collect();
    Json(json!({"transaction_details": rows, "page": page, "total_pages": 3, "total_items": 6}))
        .into_response()
}

async fn start() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = Router::new().fallback(paypal).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, fake)
}

fn client(base: &str) -> PayPalClient {
    let config = PayPalClient::outbound_config(base, "client-id", Secret::new("client-secret"));
    PayPalClient::new(OutboundClient::new(config).unwrap())
}

fn authorize_request(vault_id: &str, amount_minor: i64, currency: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        idempotency_key: "idem-auth-1".into(),
        payment_id: "pay-1".into(),
        order_id: "order-1".into(),
        amount_minor,
        currency: currency.into(),
        vault_id: vault_id.into(),
    }
}

#[tokio::test]
async fn authorize_sends_a_vaulted_card_order_and_reads_the_authorization() {
    let (base, fake) = start().await;
    let outcome = client(&base)
        .authorize(&authorize_request("vault-ok", 1234, "USD"))
        .await
        .unwrap();
    let AuthorizeOutcome::Authorized(authorized) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(authorized.paypal_order_id, "ORDER-1");
    assert_eq!(authorized.authorization.id, "AUTH-1");
    assert_eq!(
        authorized.authorization.status,
        AuthorizationStatus::Created
    );
    assert_eq!(
        authorized.authorization.amount,
        Some(Money::new(1234, "USD"))
    );
    assert_eq!(authorized.authorization.custom_id.as_deref(), Some("pay-1"));
    assert_eq!(
        authorized.authorization.expires_at,
        Some(Utc.with_ymd_and_hms(2030, 1, 30, 0, 0, 0).unwrap())
    );
    assert_eq!(authorized.payer.name.as_deref(), Some("Ann Lee"));
    assert_eq!(authorized.payer.email.as_deref(), Some("ann@example.com"));
    assert!(
        !format!("{authorized:?}").contains("ann@"),
        "payer data never in Debug"
    );

    let calls = fake.api_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("POST", "/v2/checkout/orders")
    );
    assert_eq!(call.authorization.as_deref(), Some("Bearer A21AAtoken"));
    assert_eq!(call.request_id.as_deref(), Some("idem-auth-1"));
    assert_eq!(call.prefer.as_deref(), Some("return=representation"));
    assert_eq!(
        call.body,
        json!({
            "intent": "AUTHORIZE",
            "purchase_units": [{"reference_id": "order-1", "custom_id": "pay-1", "invoice_id": "pay-1",
                "amount": {"currency_code": "USD", "value": "12.34"}}],
            "payment_source": {"card": {"vault_id": "vault-ok"}}
        })
    );
}

#[tokio::test]
async fn amounts_follow_the_currency_decimals() {
    let (base, fake) = start().await;
    let client = client(&base);
    let outcome = client
        .authorize(&authorize_request("vault-ok", 500, "JPY"))
        .await
        .unwrap();
    let AuthorizeOutcome::Authorized(authorized) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        authorized.authorization.amount,
        Some(Money::new(500, "JPY"))
    );
    client
        .authorize(&authorize_request("vault-ok", 5, "USD"))
        .await
        .unwrap();
    let values: Vec<Value> = fake
        .api_calls()
        .iter()
        .map(|c| c.body["purchase_units"][0]["amount"].clone())
        .collect();
    assert_eq!(values[0], json!({"currency_code": "JPY", "value": "500"}));
    assert_eq!(values[1], json!({"currency_code": "USD", "value": "0.05"}));

    // Not sendable: nothing reaches PayPal.
    let error = client
        .authorize(&authorize_request("vault-ok", 150, "HUF"))
        .await
        .unwrap_err();
    assert!(matches!(error, PayPalError::Amount(_)), "{error:?}");
    assert!(client
        .authorize(&authorize_request("vault-ok", 0, "USD"))
        .await
        .is_err());
    assert_eq!(fake.api_calls().len(), 2);
}

#[tokio::test]
async fn a_declined_card_and_a_denied_authorization_are_declines() {
    let (base, _fake) = start().await;
    let client = client(&base);
    let outcome = client
        .authorize(&authorize_request("vault-declined", 1000, "EUR"))
        .await
        .unwrap();
    let AuthorizeOutcome::Declined(refusal) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(refusal.issue, "INSTRUMENT_DECLINED");
    assert_eq!(refusal.debug_id.as_deref(), Some("dbg-123"));

    let outcome = client
        .authorize(&authorize_request("vault-denied", 1000, "EUR"))
        .await
        .unwrap();
    let AuthorizeOutcome::Declined(refusal) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(refusal.issue, "DENIED");
    assert_eq!(refusal.paypal_order_id.as_deref(), Some("ORDER-1"));
    assert_eq!(refusal.authorization_id.as_deref(), Some("AUTH-1"));

    // A saved card that would need the buyer (3-D Secure): nobody is there, so a decline.
    let outcome = client
        .authorize(&authorize_request("vault-3ds", 1000, "EUR"))
        .await
        .unwrap();
    let AuthorizeOutcome::Declined(refusal) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(refusal.issue, "PAYER_ACTION_REQUIRED");
    assert_eq!(refusal.paypal_order_id.as_deref(), Some("ORDER-2"));
}

#[tokio::test]
async fn capture_void_and_refund_send_what_paypal_documents() {
    let (base, fake) = start().await;
    let client = client(&base);
    let capture = client
        .capture("AUTH-1", &Money::new(1234, "USD"), "idem-cap", true)
        .await
        .unwrap();
    assert_eq!(capture.id, "CAP-1");
    assert_eq!(capture.status, CaptureStatus::Completed);
    assert_eq!(capture.amount, Some(Money::new(1234, "USD")));
    assert_eq!(capture.authorization_id.as_deref(), Some("AUTH-1"));

    client.void("AUTH-2", "idem-void").await.unwrap();

    let outcome = client
        .refund("CAP-1", &Money::new(200, "USD"), "idem-ref")
        .await
        .unwrap();
    let RefundOutcome::Refunded(refund) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (refund.id.as_str(), refund.status.clone()),
        ("REF-1", RefundStatus::Completed)
    );
    assert_eq!(refund.capture_id.as_deref(), Some("CAP-1"));
    assert_eq!(refund.amount, Some(Money::new(200, "USD")));

    let calls = fake.api_calls();
    let summary: Vec<(&str, Option<&str>)> = calls
        .iter()
        .map(|c| (c.path.as_str(), c.request_id.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "/v2/payments/authorizations/AUTH-1/capture",
                Some("idem-cap")
            ),
            ("/v2/payments/authorizations/AUTH-2/void", Some("idem-void")),
            ("/v2/payments/captures/CAP-1/refund", Some("idem-ref")),
        ]
    );
    assert_eq!(
        calls[0].body,
        json!({"amount": {"currency_code": "USD", "value": "12.34"}, "final_capture": true})
    );
    assert_eq!(
        calls[2].body,
        json!({"amount": {"currency_code": "USD", "value": "2.00"}})
    );
    assert!(calls
        .iter()
        .all(|c| c.authorization.as_deref() == Some("Bearer A21AAtoken")));
}

#[tokio::test]
async fn a_refund_beyond_the_captured_amount_is_refused() {
    let (base, _fake) = start().await;
    let outcome = client(&base)
        .refund("CAP-FULL", &Money::new(99_999, "USD"), "idem")
        .await
        .unwrap();
    let RefundOutcome::Refused(refusal) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(refusal.issue, "REFUND_AMOUNT_EXCEEDED");
}

#[tokio::test]
async fn other_paypal_errors_carry_name_issue_and_debug_id_only() {
    let (base, fake) = start().await;
    let error = client(&base)
        .capture("AUTH-BAD", &Money::new(100, "USD"), "k", true)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PayPalError::Api { status: 400, .. }),
        "{error:?}"
    );
    assert_eq!(error.issue(), Some("INVALID_PARAMETER_VALUE"));
    let shown = error.to_string();
    assert!(
        shown.contains("INVALID_REQUEST") && shown.contains("dbg-123"),
        "{shown}"
    );
    assert!(
        !shown.contains("ann@") && !format!("{error:?}").contains("ann@"),
        "{shown}"
    );
    assert_eq!(fake.api_calls().len(), 1, "a 400 is not retried");

    let error = client(&base).get_capture("../orders").await.unwrap_err();
    assert!(matches!(error, PayPalError::InvalidId(_)), "{error:?}");
}

#[tokio::test]
async fn reads_for_reconciliation() {
    let (base, fake) = start().await;
    let client = client(&base);
    let order = client.get_order("ORDER-1").await.unwrap();
    assert_eq!(order.reference_id.as_deref(), Some("order-1"));
    assert_eq!(
        order.authorizations[0].status,
        AuthorizationStatus::Captured
    );
    assert_eq!(order.captures[0].amount, Some(Money::new(1234, "USD")));
    let authorization = client.get_authorization("AUTH-1").await.unwrap();
    assert_eq!(authorization.status, AuthorizationStatus::Voided);
    assert_eq!(authorization.order_id.as_deref(), Some("ORDER-1"));
    let capture = client.get_capture("CAP-2").await.unwrap();
    assert_eq!(capture.status_reason.as_deref(), Some("PENDING_REVIEW"));
    assert_eq!(capture.amount, Some(Money::new(750, "USD")));
    let refund = client.get_refund("REF-2").await.unwrap();
    assert_eq!(refund.status, RefundStatus::Failed);
    assert_eq!(refund.capture_id.as_deref(), Some("CAP-9"));
    assert!(fake
        .api_calls()
        .iter()
        .all(|c| c.method == Method::GET && c.request_id.is_none()));
}

#[tokio::test]
async fn transaction_search_follows_every_page() {
    let (base, fake) = start().await;
    let start = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2024, 3, 2, 0, 0, 0).unwrap();
    let rows = client(&base).transactions(start, end).await.unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0].id, "TX-1-0");
    assert_eq!(rows[5].id, "TX-3-1");
    assert_eq!(rows[0].amount, Some(Money::new(1234, "USD")));
    assert_eq!(rows[1].amount, Some(Money::new(-200, "USD")));
    assert_eq!(rows[0].custom_field.as_deref(), Some("pay-1"));
    assert_eq!(
        rows[0].initiated_at,
        Some(Utc.with_ymd_and_hms(2024, 3, 1, 10, 0, 0).unwrap())
    );
    let queries: Vec<String> = fake.api_calls().into_iter().map(|c| c.query).collect();
    assert_eq!(queries.len(), 3);
    assert_eq!(
        queries[0],
        "start_date=2024-03-01T00%3A00%3A00Z&end_date=2024-03-02T00%3A00%3A00Z&fields=transaction_info&page_size=500&page=1"
    );
    assert!(queries[2].ends_with("&page=3"));

    let error = client(&base)
        .transactions(start, start + chrono::Duration::days(40))
        .await
        .unwrap_err();
    assert!(matches!(error, PayPalError::InvalidRange(_)));
}

// ---- Webhooks ----

/// One RSA key and its self-signed certificate (PEM) for all webhook tests.
fn signing() -> &'static (SigningKey<Sha256>, String) {
    static KEY: OnceLock<(SigningKey<Sha256>, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let signer = SigningKey::<Sha256>::new(key);
        let spki =
            x509_cert::spki::SubjectPublicKeyInfoOwned::from_key(signer.verifying_key()).unwrap();
        let validity = x509_cert::time::Validity::from_now(Duration::from_secs(3600)).unwrap();
        let subject =
            x509_cert::name::Name::from_str("CN=messageverificationcerts.paypal.com").unwrap();
        let serial = x509_cert::serial_number::SerialNumber::from(7u32);
        let builder =
            CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &signer)
                .unwrap();
        let cert = builder.build::<rsa::pkcs1v15::Signature>().unwrap();
        let pem = cert.to_pem(x509_cert::der::pem::LineEnding::LF).unwrap();
        (signer, pem)
    })
}

const EVENT: &str = r#"{"id":"WH-1","event_version":"1.0","create_time":"2024-03-01T10:00:00Z","resource_type":"capture","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{"id":"CAP-1","status":"COMPLETED","amount":{"currency_code":"USD","value":"12.34"},"custom_id":"pay-1","invoice_id":"pay-1","supplementary_data":{"related_ids":{"order_id":"ORDER-1","authorization_id":"AUTH-1"}}}}"#;

/// The headers PayPal sends with `body`, signed for `webhook_id` at `time`.
fn signed_headers(
    cert_url: &str,
    webhook_id: &str,
    time: chrono::DateTime<Utc>,
    body: &[u8],
) -> HeaderMap {
    let time = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let transmission_id = "b7c2f9a0-d7f1-11ee-9f0e-0f1b2c3d4e5f";
    let text = format!(
        "{transmission_id}|{time}|{webhook_id}|{}",
        crc32fast::hash(body)
    );
    let signature = signing().0.sign(text.as_bytes());
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, value.parse().unwrap());
    };
    set("paypal-transmission-id", transmission_id.into());
    set("paypal-transmission-time", time);
    set(
        "paypal-transmission-sig",
        base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
    );
    set("paypal-cert-url", cert_url.into());
    set("paypal-auth-algo", "SHA256withRSA".into());
    headers
}

async fn webhook_setup(webhook_ids: &[&str]) -> (WebhookVerifier, String, Arc<Fake>) {
    let (base, fake) = start().await;
    *fake.cert_pem.lock().unwrap() = signing().1.clone();
    let mut config = WebhookConfig::new(webhook_ids.iter().map(|id| (*id).to_owned()).collect());
    config.extra_cert_origins.push(base.clone());
    let verifier = WebhookVerifier::new(reqwest::Client::new(), config);
    (verifier, format!("{base}/certs/paypal.pem"), fake)
}

#[tokio::test]
async fn a_signed_webhook_verifies_and_parses() {
    let (verifier, cert_url, fake) = webhook_setup(&["WH-ID-1"]).await;
    let headers = signed_headers(&cert_url, "WH-ID-1", Utc::now(), EVENT.as_bytes());
    let event = verifier.verify(&headers, EVENT.as_bytes()).await.unwrap();
    assert_eq!(event.id, "WH-1");
    assert_eq!(event.kind, WebhookEventKind::CaptureCompleted);
    assert_eq!(event.event_type, "PAYMENT.CAPTURE.COMPLETED");
    assert_eq!(event.resource_id.as_deref(), Some("CAP-1"));
    assert_eq!(event.custom_id.as_deref(), Some("pay-1"));
    assert_eq!(event.amount, Some(Money::new(1234, "USD")));
    assert_eq!(event.authorization_id.as_deref(), Some("AUTH-1"));
    assert_eq!(event.order_id.as_deref(), Some("ORDER-1"));

    // The certificate is fetched once, then cached.
    verifier.verify(&headers, EVENT.as_bytes()).await.unwrap();
    assert_eq!(fake.cert_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_webhook_signed_for_another_webhook_id_is_refused() {
    let (verifier, cert_url, _fake) = webhook_setup(&["WH-ID-1"]).await;
    let headers = signed_headers(&cert_url, "WH-ID-OTHER", Utc::now(), EVENT.as_bytes());
    let error = verifier
        .verify(&headers, EVENT.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(error, WebhookError::BadSignature), "{error:?}");
}

#[tokio::test]
async fn during_a_rotation_either_webhook_id_is_accepted() {
    let (verifier, cert_url, _fake) = webhook_setup(&["WH-OLD", "WH-NEW"]).await;
    for id in ["WH-OLD", "WH-NEW"] {
        let headers = signed_headers(&cert_url, id, Utc::now(), EVENT.as_bytes());
        assert!(
            verifier.verify(&headers, EVENT.as_bytes()).await.is_ok(),
            "{id}"
        );
    }
}

#[tokio::test]
async fn a_transmission_time_outside_the_tolerance_is_refused() {
    let (verifier, cert_url, _fake) = webhook_setup(&["WH-ID-1"]).await;
    for skew in [-10i64, 10] {
        let time = Utc::now() + chrono::Duration::minutes(skew);
        let headers = signed_headers(&cert_url, "WH-ID-1", time, EVENT.as_bytes());
        let error = verifier
            .verify(&headers, EVENT.as_bytes())
            .await
            .unwrap_err();
        assert!(matches!(error, WebhookError::StaleTime { .. }), "{error:?}");
    }
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let (verifier, cert_url, _fake) = webhook_setup(&["WH-ID-1"]).await;
    let headers = signed_headers(&cert_url, "WH-ID-1", Utc::now(), EVENT.as_bytes());
    let tampered = EVENT.replace("12.34", "1234.00");
    let error = verifier
        .verify(&headers, tampered.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(error, WebhookError::BadSignature), "{error:?}");
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_place_is_never_fetched() {
    let (base, fake) = start().await;
    *fake.cert_pem.lock().unwrap() = signing().1.clone();
    // The loopback origin is not added: only PayPal's https hosts are trusted.
    let verifier = WebhookVerifier::new(
        reqwest::Client::new(),
        WebhookConfig::new(vec!["WH-ID-1".into()]),
    );
    for url in [
        format!("{base}/certs/paypal.pem"),
        "https://api.paypal.com.evil.example/cert.pem".to_owned(),
        "http://api.paypal.com/cert.pem".to_owned(),
        "https://user@api.paypal.com/cert.pem".to_owned(),
    ] {
        let headers = signed_headers(&url, "WH-ID-1", Utc::now(), EVENT.as_bytes());
        let error = verifier
            .verify(&headers, EVENT.as_bytes())
            .await
            .unwrap_err();
        assert!(
            matches!(error, WebhookError::UntrustedCertUrl(_)),
            "{url}: {error:?}"
        );
    }
    assert_eq!(fake.cert_fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn missing_headers_and_unfetchable_certificates_are_told_apart() {
    let (verifier, cert_url, _fake) = webhook_setup(&["WH-ID-1"]).await;
    let mut headers = signed_headers(&cert_url, "WH-ID-1", Utc::now(), EVENT.as_bytes());
    headers.remove("paypal-transmission-sig");
    let error = verifier
        .verify(&headers, EVENT.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            WebhookError::MissingHeader("paypal-transmission-sig")
        ),
        "{error:?}"
    );

    let missing = cert_url.replace("paypal.pem", "gone.pem");
    let headers = signed_headers(&missing, "WH-ID-1", Utc::now(), EVENT.as_bytes());
    let error = verifier
        .verify(&headers, EVENT.as_bytes())
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
}
