//! GDPR for payments end to end, in local mode over loopback with the PayPal sandbox: a
//! customer pays an order (PayPal reports the payer) and gets part of it refunded; their data
//! export holds the payment as stored (payer, refund, status, amounts); `DELETE
//! /api/v1/customers/{id}` then queues the erasure, `GDPRDataAnonymization` runs it, and
//! afterwards the payment has no payer, no refund reason and a pseudonymised payment source,
//! keeps its ids, amounts, currency, status, dates and PayPal references, says under which
//! rules it was erased, and the report counts it; nothing of the payer is left in the database.

mod common;

use std::time::{Duration, Instant};

use common::Reply;
use function_app::local::sandbox::paypal::{PayPalSandbox, RunningSandbox, SandboxConfig};
use function_app::local::LocalRuntime;
use function_app::startup::{AppState, Mode, Outbound};
use serde_json::{json, Value};
use shared::auth::{DevIssuer, DevSubject, Role};
use shared::domain::masking::RULES_VERSION;
use shared::domain::tenant::TenantId;

const TENANT: &str = "t1";
/// What the PayPal sandbox reports as the payer's email.
const PAYER_EMAIL: &str = "sandbox-buyer@example.com";
const REFUND_REASON: &str = "Ada phoned: the parcel was damaged";

/// The app in local mode (queue consumers running) with payments going to the sandbox.
struct App {
    base: String,
    runtime: LocalRuntime,
    dev: DevIssuer,
    http: reqwest::Client,
    _sandbox: RunningSandbox,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    common::jwks::install_dev_key(dir.path());
    let sandbox = PayPalSandbox::start(SandboxConfig::generated())
        .await
        .unwrap();
    let pairs = [("LOCAL_QUEUE_RETRY_DELAY_MS", "0")];
    let mut state = AppState::open(common::settings(dir.path(), &pairs), Mode::Local).unwrap();
    let payments = sandbox.payment_settings(&state.settings.payments);
    state.parts_mut().outbound =
        Outbound::from_settings(&payments, vec![sandbox.base_url().to_owned()]).unwrap();
    let runtime = LocalRuntime::new(state);
    let address = common::spawn_local(runtime.clone()).await;
    App {
        base: format!("http://{address}"),
        runtime,
        dev: DevIssuer::load_or_create(dir.path()).unwrap(),
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        _sandbox: sandbox,
        _dir: dir,
    }
}

impl App {
    fn token(&self, subject: DevSubject) -> String {
        let tenant = TenantId::new(TENANT).unwrap();
        self.dev
            .token(&tenant, subject, Duration::from_secs(3600))
            .unwrap()
    }

    fn admin(&self) -> String {
        self.token(DevSubject::Employee {
            roles: [Role::Admin].into_iter().collect(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(self.admin())
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        Reply::read(self.request(reqwest::Method::POST, path).json(body)).await
    }

    async fn post_keyed(&self, path: &str, key: &str, body: &Value) -> Reply {
        let request = self
            .request(reqwest::Method::POST, path)
            .header("idempotency-key", key)
            .json(body);
        Reply::read(request).await
    }

    async fn get(&self, path: &str) -> Reply {
        Reply::read(self.request(reqwest::Method::GET, path)).await
    }

    /// A new resource's id from a `201`.
    async fn create(&self, path: &str, body: Value) -> String {
        let reply = self.post(path, &body).await;
        reply.expect_status(201).body["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The customer's export.
    async fn export(&self, customer: &str) -> Value {
        let reply = self
            .post(&format!("/customers/{customer}/gdpr/export"), &json!({}))
            .await;
        reply.expect_status(200).body.clone()
    }

    /// Polls the erasure's status URL until it completed; the record.
    async fn completed(&self, customer: &str, request: &str) -> Value {
        let path = format!("/customers/{customer}/gdpr/erasure/{request}");
        let started = Instant::now();
        loop {
            let record = self.get(&path).await;
            if record.status == 200 && record.body["status"] == "completed" {
                return record.body;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "not completed: {}",
                record.text
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Rows of any table with a text column containing `needle`, as `table.column`.
fn scan_database(path: &std::path::Path, needle: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut found = Vec::new();
    for table in tables {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for column in columns {
            let sql = format!(
                "SELECT COUNT(*) FROM \"{table}\" WHERE instr(CAST(\"{column}\" AS TEXT), ?1) > 0"
            );
            let hits: i64 = conn.query_row(&sql, [needle], |row| row.get(0)).unwrap();
            if hits > 0 {
                found.push(format!("{table}.{column}"));
            }
        }
    }
    found
}

/// A customer whose order of 2 × 12.50 EUR is paid through the sandbox and 5.00 EUR refunded:
/// (customer id, payment as answered).
async fn paid_and_partly_refunded(app: &App) -> (String, Value) {
    let customer = app
        .create(
            "/customers",
            json!({"name": "Ada Payer", "email": "ada.payer@example.org"}),
        )
        .await;
    let product = app
        .create(
            "/products",
            json!({"name": "Widget", "category": "tools", "priceCents": 1250, "currency": "EUR", "stock": 10}),
        )
        .await;
    let order = app
        .create(
            "/orders",
            json!({"customerId": customer, "items": [{"productId": product, "quantity": 2}]}),
        )
        .await;
    let body = json!({"orderId": order, "paymentSource": {"vaultId": "sandbox-ok"}});
    let paid = app.post_keyed("/payments", "pay-1", &body).await;
    let payment = paid.expect_status(201).body.clone();
    let id = payment["id"].as_str().unwrap().to_owned();
    let refund = json!({"amountCents": 500, "reason": REFUND_REASON});
    app.post_keyed(&format!("/payments/{id}/refund"), "refund-1", &refund)
        .await
        .expect_status(201);
    let payment = app.get(&format!("/payments/{id}")).await;
    (customer, payment.expect_status(200).body.clone())
}

#[tokio::test]
async fn export_shows_the_payment_and_erasure_strips_the_payer_but_keeps_the_money() {
    let app = app().await;
    let (customer, before) = paid_and_partly_refunded(&app).await;
    let id = before["id"].as_str().unwrap().to_owned();
    assert_eq!(before["payer"]["email"], PAYER_EMAIL, "{before}");
    assert_eq!(
        (&before["status"], &before["refundedCents"]),
        (&json!("partiallyRefunded"), &json!(500))
    );
    let db_path = app.runtime.state.db.path().to_owned();
    assert_eq!(scan_database(&db_path, PAYER_EMAIL), ["payments.doc"]);

    // The export holds the payment as stored.
    let export = app.export(&customer).await;
    let exported = &export["payments"];
    assert_eq!(exported.as_array().map(Vec::len), Some(1), "{export}");
    assert_eq!(
        exported[0], before,
        "the payment exactly as the API shows it"
    );
    assert_eq!(exported[0]["refunds"][0]["reason"], REFUND_REASON);

    // The erasure, through the API, the queue and GDPRDataAnonymization.
    let accepted =
        Reply::read(app.request(reqwest::Method::DELETE, &format!("/customers/{customer}"))).await;
    let request = accepted.expect_status(202).body["requestId"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = app.completed(&customer, &request).await;
    let report = &record["report"];
    assert_eq!(report["counts"]["sqlite"]["payments"], 1, "{report}");
    assert_eq!(report["rulesVersion"], RULES_VERSION);

    let after = app.get(&format!("/payments/{id}")).await;
    let after = after.expect_status(200).body.clone();
    assert!(after.get("payer").is_none(), "the payer is gone: {after}");
    assert!(after["refunds"][0].get("reason").is_none(), "{after}");
    assert_eq!(after["erasure"]["rulesVersion"], RULES_VERSION);
    assert!(after["erasure"]["erasedAt"].is_string(), "{after}");
    assert!(
        after["sourceId"].as_str().unwrap().starts_with("psn-"),
        "{after}"
    );
    for kept in [
        "id",
        "orderId",
        "customerId",
        "amountCents",
        "currency",
        "status",
        "capturedCents",
        "refundedCents",
        "gateway",
        "createdAt",
        "updatedAt",
    ] {
        assert_eq!(after[kept], before[kept], "{kept} is kept");
    }
    assert_eq!(after["amountCents"], 2500);
    assert_eq!(
        after["refunds"][0]["amountCents"], 500,
        "refund amounts are kept"
    );
    assert!(after["gateway"]["captureId"].is_string(), "{after}");

    // Nothing of the payer is left anywhere in the database, and the export says so too.
    for needle in [PAYER_EMAIL, REFUND_REASON, "Sandbox Buyer"] {
        assert_eq!(
            scan_database(&db_path, needle),
            Vec::<String>::new(),
            "{needle:?} is still stored"
        );
    }
    let export = app.export(&customer).await;
    assert_eq!(export["payments"][0], after);
}
