//! GDPR erasure end to end, in local mode over loopback: `DELETE /api/v1/customers/{id}` queues
//! a request on `gdpr-requests`, the local queue delivers it to `GDPRDataAnonymization` through
//! the custom-handler protocol (host encodings), and the status URL ends `completed` with a
//! verifiable report.
//!
//! Proves: every store is erased by the masking rules (profile, orders keeping their
//! bookkeeping facts, notifications, notification preferences, audit pseudonyms, idempotency
//! keys, queued messages) and
//! a generic scan of every text column of every table finds none of the customer's former
//! personal data; the report's SHA-256 matches its canonical JSON; a duplicate message and a
//! request for an already erased customer have no second effect and no second report; an
//! operator-sent request without a record works; a malformed message and a request for an
//! unknown customer are dead-lettered with their reason; an erasure interrupted after some
//! committed batches resumes and ends with exact counts, and so does one whose `handler local`
//! process is killed with SIGKILL at a dozen different moments (each restart resumes it).

mod common;

use std::time::{Duration, Instant};

use common::Reply;
use function_app::local::LocalRuntime;
use function_app::startup::{AppState, Mode};
use serde_json::{json, Value};
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::masking::{sha256_of, Masker, RULES_VERSION};
use shared::domain::tenant::TenantId;
use shared::store::{ErasureStart, ErasureStep};

const TENANT: &str = "t1";
const NAME: &str = "Ada Lovelace-Testperson";
const EMAIL: &str = "ada.lovelace.unique@example.org";
const PHONE: &str = "+442079460001";
const HOME: &str = "12 Analytical Engine Road";
const SHIP_LINE: &str = "221B Baker Street";
const REASON: &str = "Changed my mind, call me";

/// The whole app in local mode with its Service Bus consumers running (unlike `ApiApp`, which
/// disables them), fast retries and three deliveries before dead-lettering.
struct App {
    base: String,
    runtime: LocalRuntime,
    dev: shared::auth::DevIssuer,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    common::jwks::install_dev_key(dir.path());
    let pairs = [
        ("LOCAL_QUEUE_RETRY_DELAY_MS", "0"),
        ("LOCAL_QUEUE_MAX_DELIVERY_COUNT", "3"),
    ];
    let state = AppState::open(common::settings(dir.path(), &pairs), Mode::Local).unwrap();
    let dev = shared::auth::DevIssuer::load_or_create(dir.path()).unwrap();
    let runtime = LocalRuntime::new(state);
    let address = common::spawn_local(runtime.clone()).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    App {
        base: format!("http://{address}"),
        runtime,
        dev,
        http,
        _dir: dir,
    }
}

impl App {
    fn token(&self, subject: shared::auth::DevSubject) -> String {
        self.dev
            .token(
                &TenantId::new(TENANT).unwrap(),
                subject,
                Duration::from_secs(3600),
            )
            .unwrap()
    }

    fn admin(&self, _tenant: &str) -> String {
        self.token(shared::auth::DevSubject::Employee {
            roles: [shared::auth::Role::Admin].into_iter().collect(),
        })
    }

    fn client_of(&self, _tenant: &str, customer: &str) -> String {
        self.token(shared::auth::DevSubject::Client {
            customer_id: customer.to_owned(),
        })
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        Reply::read(self.request(reqwest::Method::GET, path, Some(token))).await
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        Reply::read(
            self.request(reqwest::Method::POST, path, Some(token))
                .json(body),
        )
        .await
    }

    async fn put(&self, path: &str, token: &str, body: &Value) -> Reply {
        Reply::read(
            self.request(reqwest::Method::PUT, path, Some(token))
                .json(body),
        )
        .await
    }

    async fn delete(&self, path: &str, token: &str) -> Reply {
        Reply::read(self.request(reqwest::Method::DELETE, path, Some(token))).await
    }

    async fn create_product(&self, _tenant: &str, name: &str, category: &str, stock: i64) -> Value {
        let body = json!({"name": name, "category": category, "priceCents": 1250, "currency": "EUR", "stock": stock});
        self.post("/products", &self.admin(TENANT), &body)
            .await
            .expect_status(201)
            .body
            .clone()
    }

    async fn create_customer(&self, _tenant: &str, name: &str, email: &str) -> Value {
        self.post(
            "/customers",
            &self.admin(TENANT),
            &json!({"name": name, "email": email}),
        )
        .await
        .expect_status(201)
        .body
        .clone()
    }

    /// Active and dead-lettered messages of `entity`, bodies as JSON.
    async fn messages_on(&self, entity: &str) -> Vec<Value> {
        let queue = self.runtime.host.queue();
        let mut messages = queue.peek(entity).await.unwrap();
        messages.extend(queue.dead_letters(Some(entity)).await.unwrap());
        messages
            .iter()
            .map(|message| serde_json::from_str(&message.body).unwrap())
            .collect()
    }
}

/// A customer with a full profile, two orders (one with its own shipping address and an
/// Idempotency-Key, one cancelled by the client with a reason), a staff message, and the order
/// events' notifications and outbound messages. Returns the customer id.
async fn seed(app: &App) -> String {
    let admin = app.admin(TENANT);
    let product = app.create_product(TENANT, "Widget", "tools", 100).await;
    let profile = json!({
        "name": NAME, "email": EMAIL, "phone": PHONE,
        "address": {"line1": HOME, "city": "London", "postalCode": "NW1 6XE", "country": "GB"},
        "preferences": {"inApp": true, "email": true, "sms": true}
    });
    let customer = app
        .post("/customers", &admin, &profile)
        .await
        .expect_status(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = app.client_of(TENANT, &customer);
    let line = json!([{"productId": product["id"], "quantity": 2}]);
    let shipped_to = json!({"line1": SHIP_LINE, "line2": "Flat B", "city": "London", "postalCode": "NW1 6XE", "country": "GB"});
    let first = app
        .request(reqwest::Method::POST, "/orders", Some(&client))
        .header("Idempotency-Key", "ada-key-1")
        .json(&json!({"items": line, "shippingAddress": shipped_to}));
    assert_eq!(
        Reply::read(first).await.expect_status(201).body["totalCents"],
        2500
    );
    let second = app
        .post("/orders", &client, &json!({"items": line}))
        .await
        .expect_status(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.put(
        &format!("/orders/{second}/status"),
        &client,
        &json!({"status": "cancelled", "reason": format!("{REASON} {PHONE}")}),
    )
    .await
    .expect_status(200);
    app.post("/notifications", &admin, &json!({"customerId": customer, "title": "Hello", "message": format!("Dear {NAME}, we will call {PHONE}")})).await.expect_status(201);
    let quiet = json!({"eventTypes": {"marketing": {"sms": false}}});
    app.put(
        &format!("/customers/{customer}/preferences"),
        &client,
        &quiet,
    )
    .await
    .expect_status(200);
    // Three order events (two created, one cancelled), each an email and an SMS message.
    wait_until(|| async { app.messages_on("notifications-outbound").await.len() == 6 }).await;
    customer
}

async fn wait_until<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "gave up waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Requests erasure through the API; the request id.
async fn request_erasure(app: &App, customer: &str) -> String {
    let accepted = app
        .delete(&format!("/customers/{customer}"), &app.admin(TENANT))
        .await;
    accepted.expect_status(202);
    accepted.body["requestId"].as_str().unwrap().to_owned()
}

/// Polls the status URL until the request completed; the record.
async fn completed(app: &App, customer: &str, request: &str) -> Value {
    let path = format!("/customers/{customer}/gdpr/erasure/{request}");
    let started = Instant::now();
    loop {
        let record = app.get(&path, &app.admin(TENANT)).await;
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

async fn queue_empty(app: &App, entity: &str) {
    wait_until(|| async {
        app.runtime
            .host
            .queue()
            .peek(entity)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
}

async fn audit(app: &App, query: &str) -> Vec<Value> {
    app.get(
        &format!("/audit/logs?limit=100&{query}"),
        &app.admin(TENANT),
    )
    .await
    .expect_status(200)
    .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Every text value of every column of every table containing `needle`, as `table.column`.
fn scan_database(path: &std::path::Path, needle: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 10, "the scan sees every table: {tables:?}");
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
            let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE instr(lower(CAST(\"{column}\" AS TEXT)), lower(?1)) > 0");
            let hits: i64 = conn.query_row(&sql, [needle], |row| row.get(0)).unwrap();
            if hits > 0 {
                found.push(format!("{table}.{column}"));
            }
        }
    }
    found
}

#[tokio::test]
async fn delete_erases_the_customer_everywhere_and_reports_verifiably() {
    let app = app().await;
    let customer = seed(&app).await;
    let db_path = app.runtime.state.db.path().to_owned();
    assert_eq!(
        scan_database(&db_path, EMAIL),
        vec!["customers.email"],
        "the scan finds personal data where it is"
    );
    assert!(!scan_database(&db_path, SHIP_LINE).is_empty());

    let request = request_erasure(&app, &customer).await;
    let record = completed(&app, &customer, &request).await;
    let report = &record["report"];

    // The report: rule version, counts per store and table, timings, a hash that verifies.
    assert_eq!(report["rulesVersion"], RULES_VERSION);
    let counts = &report["counts"]["sqlite"];
    assert_eq!(counts["customers"], 1, "{report}");
    assert_eq!(counts["orders"], 2, "{report}");
    assert_eq!(
        counts["orderStatusHistory"], 3,
        "the client's three status changes: {report}"
    );
    assert_eq!(
        counts["notifications"], 4,
        "three order notifications and the staff message: {report}"
    );
    assert_eq!(counts["idempotencyKeys"], 1, "{report}");
    assert_eq!(counts["notificationPreferences"], 1, "{report}");
    assert_eq!(counts["processedEvents"], 3, "{report}");
    assert_eq!(
        counts["queuedMessages"], 6,
        "the unsent email and SMS messages: {report}"
    );
    assert!(counts["auditEntries"].as_u64().unwrap() >= 8, "{report}");
    assert!(
        report["durationMs"].as_i64().is_some()
            && report["steps"]["orders"]["elapsedMs"].as_f64().is_some(),
        "{report}"
    );
    let mut unsigned = report.clone();
    let claimed = unsigned.as_object_mut().unwrap().remove("sha256").unwrap();
    assert_eq!(
        claimed,
        sha256_of(&unsigned),
        "the report's SHA-256 is of its canonical JSON"
    );

    // Profile: personal fields gone, status erased.
    let admin = app.admin(TENANT);
    let profile = app
        .get(&format!("/customers/{customer}"), &admin)
        .await
        .expect_status(200)
        .body
        .clone();
    assert_eq!(profile["status"], "erased");
    assert_eq!(profile["name"], "Erased customer");
    let preferences = app
        .get(&format!("/customers/{customer}/preferences"), &admin)
        .await;
    assert_eq!(
        preferences.expect_status(200).header("etag"),
        Some("\"defaults\""),
        "the preferences were deleted: {}",
        preferences.text
    );
    assert!(
        profile.get("phone").is_none() && profile.get("address").is_none(),
        "{profile}"
    );

    // Orders: bookkeeping facts kept, the address reduced to what tax needs.
    let orders = app
        .get(&format!("/orders?customerId={customer}"), &admin)
        .await
        .expect_status(200)
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(orders.len(), 2);
    for order in &orders {
        assert_eq!(order["totalCents"], 2500);
        assert_eq!(order["items"][0]["quantity"], 2);
        assert_eq!(
            order["shippingAddress"],
            json!({"line1": "[erased]", "city": "[erased]", "postalCode": "NW", "country": "GB"})
        );
    }
    let cancelled = orders
        .iter()
        .find(|order| order["status"] == "cancelled")
        .unwrap();
    let history = app
        .get(
            &format!("/orders/{}/history", cancelled["id"].as_str().unwrap()),
            &admin,
        )
        .await
        .expect_status(200)
        .body
        .clone();
    assert!(
        history.to_string().contains("psn-")
            && !history
                .to_string()
                .contains(&format!("dev-client-{customer}")),
        "{history}"
    );

    // Audit: nothing names the customer any more; the completion entry carries the pseudonym.
    assert!(audit(&app, &format!("customerId={customer}"))
        .await
        .is_empty());
    assert!(audit(&app, &format!("targetId={customer}"))
        .await
        .is_empty());
    let done = audit(&app, "action=gdpr.erasure.completed").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["customerId"], report["customerPseudonym"]);
    assert_eq!(done[0]["targetId"], json!(request));
    let trail = audit(
        &app,
        &format!(
            "customerId={}",
            report["customerPseudonym"].as_str().unwrap()
        ),
    )
    .await;
    assert!(
        trail.len() >= 8,
        "the trail stays countable under the pseudonym: {}",
        trail.len()
    );

    // Nothing personal is left anywhere in the database.
    for needle in [
        NAME,
        EMAIL,
        PHONE,
        &PHONE[1..],
        HOME,
        SHIP_LINE,
        "Flat B",
        REASON,
        "NW1 6XE",
    ] {
        assert_eq!(
            scan_database(&db_path, needle),
            Vec::<String>::new(),
            "{needle:?} is still stored"
        );
    }
    assert!(app.messages_on("notifications-outbound").await.is_empty());
    assert!(
        app.messages_on("gdpr-requests").await.is_empty(),
        "the request itself completed"
    );

    // Nor in the bytes of the database and WAL files (no old row versions in free space).
    for suffix in ["", "-wal"] {
        let file = format!("{}{suffix}", db_path.display());
        let bytes = std::fs::read(&file).unwrap_or_default();
        for needle in [NAME, EMAIL, SHIP_LINE, HOME] {
            assert!(
                !bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes()),
                "{needle:?} is in the bytes of {file}"
            );
        }
    }
}

#[tokio::test]
async fn a_duplicate_request_and_a_request_for_an_erased_customer_have_no_second_effect() {
    let app = app().await;
    let customer = seed(&app).await;
    let request = request_erasure(&app, &customer).await;
    let first = completed(&app, &customer, &request).await;

    // The same message again (Service Bus delivers at least once).
    let again = json!({"requestId": request, "tenantId": TENANT, "customerId": customer, "requestedBy": "dev-employee", "requestedAt": "2026-11-21T02:00:00Z"});
    let reply = app
        .runtime
        .invoke_now("GDPRDataAnonymization", Some(again.to_string()))
        .await
        .unwrap();
    assert_eq!(
        reply.return_value["result"], "alreadyCompleted",
        "{:?}",
        reply.return_value
    );
    // Another request (an operator's) for the customer already erased.
    let other = json!({"requestId": "op-req-2", "tenantId": TENANT, "customerId": customer, "requestedBy": "operator:ops-1", "requestedAt": "2026-11-21T02:00:00Z"});
    let reply = app
        .runtime
        .invoke_now("GDPRDataAnonymization", Some(other.to_string()))
        .await
        .unwrap();
    assert_eq!(
        reply.return_value["result"], "customerAlreadyErased",
        "{:?}",
        reply.return_value
    );
    // And a repeated DELETE through the API: answered with the completed request, nothing queued.
    let repeated = app
        .delete(&format!("/customers/{customer}"), &app.admin(TENANT))
        .await;
    assert_eq!(
        repeated.body["requestId"],
        json!(request),
        "{}",
        repeated.text
    );
    queue_empty(&app, "gdpr-requests").await;

    let after = completed(&app, &customer, &request).await;
    assert_eq!(after["report"], first["report"], "one report, unchanged");
    assert_eq!(
        audit(&app, "action=gdpr.erasure.completed").await.len(),
        1,
        "one completion in the trail"
    );
    app.get(
        &format!("/customers/{customer}/gdpr/erasure/op-req-2"),
        &app.admin(TENANT),
    )
    .await
    .expect_status(404);
}

#[tokio::test]
async fn an_operator_request_without_a_record_creates_it_and_completes() {
    let app = app().await;
    let customer = app.create_customer(TENANT, NAME, EMAIL).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"requestId": "op-req-1", "tenantId": TENANT, "customerId": customer, "requestedBy": "operator:ops-1", "requestedAt": "2026-11-21T02:00:00Z"});
    let sent = common::client()
        .post(format!("{}/admin/queues/gdpr-requests/messages", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    let record = completed(&app, &customer, "op-req-1").await;
    assert_eq!(record["requestedBy"], "operator:ops-1");
    assert_eq!(record["report"]["counts"]["sqlite"]["customers"], 1);
    assert!(scan_database(app.runtime.state.db.path(), EMAIL).is_empty());
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_with_their_reason() {
    let app = app().await;
    let admin_queue = format!("{}/admin/queues/gdpr-requests/messages", app.base);
    let malformed = json!({"requestId": "r-1", "customer": "c-1"});
    let unknown = json!({"requestId": "r-2", "tenantId": TENANT, "customerId": "nobody-here", "requestedBy": "u", "requestedAt": "2026-11-21T02:00:00Z"});
    for body in [&malformed, &unknown] {
        assert_eq!(
            common::client()
                .post(&admin_queue)
                .json(body)
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
    }
    wait_until(|| async {
        app.runtime
            .host
            .queue()
            .dead_letters(Some("gdpr-requests"))
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    let dead = app
        .runtime
        .host
        .queue()
        .dead_letters(Some("gdpr-requests"))
        .await
        .unwrap();
    for letter in &dead {
        assert_eq!(letter.delivery_count, 3);
        assert_eq!(
            letter.dead_letter_reason.as_deref(),
            Some("MaxDeliveryCountExceeded")
        );
        assert!(
            letter
                .last_error
                .as_deref()
                .unwrap()
                .contains("HTTP 400: bad input"),
            "{letter:?}"
        );
    }
    let errors: Vec<&str> = dead
        .iter()
        .map(|letter| letter.last_error.as_deref().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|error| error.contains("ErasureRequest") && error.contains("customer")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|error| error.contains("customer nobody-here does not exist")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn an_interrupted_erasure_resumes_and_counts_each_record_once() {
    let app = app().await;
    let customer = seed(&app).await;
    // The first attempt commits a few batches, then "crashes": what survives is the progress
    // marker of the committed batches.
    let tenant = TenantId::new(TENANT).unwrap();
    let key = shared::erasure::pseudonym_key(&app.runtime.state.settings).unwrap();
    let masker = Masker::new(key, TENANT, &customer, &[]);
    let request = ErasureRecord {
        id: "crash-req".into(),
        tenant_id: TENANT.into(),
        customer_id: customer.clone(),
        requested_by: "operator:ops-1".into(),
        status: ErasureStatus::Accepted,
        requested_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        queued_at: None,
        report: None,
    };
    let store = &app.runtime.state.store;
    assert!(matches!(
        store.start_erasure(&tenant, request).await.unwrap(),
        ErasureStart::Run { .. }
    ));
    let partial = store
        .erase_batch(&tenant, "crash-req", ErasureStep::Orders, &masker, 1)
        .await
        .unwrap();
    assert!(
        !partial.is_done(ErasureStep::Orders),
        "one of two orders done"
    );
    for _ in 0..3 {
        store
            .erase_batch(&tenant, "crash-req", ErasureStep::Notifications, &masker, 1)
            .await
            .unwrap();
    }
    let status = app
        .get(
            &format!("/customers/{customer}/gdpr/erasure/crash-req"),
            &app.admin(TENANT),
        )
        .await
        .expect_status(200)
        .body
        .clone();
    assert_eq!(status["status"], "inProgress");

    // The redelivery resumes and finishes.
    let body = json!({"requestId": "crash-req", "tenantId": TENANT, "customerId": customer, "requestedBy": "operator:ops-1", "requestedAt": "2026-11-21T02:00:00Z"});
    let reply = app
        .runtime
        .invoke_now("GDPRDataAnonymization", Some(body.to_string()))
        .await
        .unwrap();
    assert_eq!(
        reply.return_value["result"], "completed",
        "{:?}",
        reply.return_value
    );
    let record = completed(&app, &customer, "crash-req").await;
    let report = &record["report"];
    assert_eq!(report["attempts"], 2, "{report}");
    let counts = &report["counts"]["sqlite"];
    assert_eq!(
        (
            counts["orders"].as_u64(),
            counts["orderStatusHistory"].as_u64(),
            counts["notifications"].as_u64()
        ),
        (Some(2), Some(3), Some(4)),
        "{report}"
    );
    for needle in [NAME, EMAIL, PHONE, SHIP_LINE] {
        assert!(
            scan_database(app.runtime.state.db.path(), needle).is_empty(),
            "{needle}"
        );
    }
}

/// One customer's data straight into the database (as the benchmark seeds it): `orders`
/// orders with two status changes (the first by the client) and an idempotency key each,
/// `notifications` notifications, an audit entry per order and per notification.
fn seed_large(path: &std::path::Path, customer: &str, orders: usize, notifications: usize) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    let at = "2026-01-01T00:00:00.000000Z";
    tx.execute(
        "INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5, NULL, '{\"inApp\":true,\"email\":true,\"sms\":false}', 'active', ?6, ?6, ?6, 'e')",
        rusqlite::params![TENANT, customer, NAME, EMAIL, PHONE, at],
    )
    .unwrap();
    let address = format!("{{\"line1\":\"{SHIP_LINE}\",\"city\":\"London\",\"postalCode\":\"NW1 6XE\",\"country\":\"GB\"}}");
    for n in 0..orders {
        let id = format!("o-{n:05}");
        tx.execute(
            "INSERT INTO orders VALUES (?1, ?2, ?3, 'delivered', 2500, 'EUR', ?4, ?5, ?5, 'e')",
            rusqlite::params![TENANT, id, customer, address, at],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO order_status_history VALUES (?1, ?2, 1, 'pending', ?3, ?4, NULL)",
            rusqlite::params![TENANT, id, at, format!("dev-client-{customer}")],
        )
        .unwrap();
        tx.execute("INSERT INTO order_status_history VALUES (?1, ?2, 2, 'delivered', ?3, 'dev-employee', NULL)", rusqlite::params![TENANT, id, at]).unwrap();
        tx.execute(
            "INSERT INTO idempotency_keys VALUES (?1, ?2, 'h', ?3, ?4)",
            rusqlite::params![TENANT, format!("k-{id}"), id, at],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO audit_log (tenant_id, id, actor_id, action, target_type, target_id, customer_id, at, correlation_id) VALUES (?1, ?2, ?3, 'order.create', 'order', ?4, ?5, ?6, 'c')",
            rusqlite::params![
                TENANT,
                format!("a-{id}"),
                format!("dev-client-{customer}"),
                id,
                customer,
                at
            ],
        )
        .unwrap();
    }
    for n in 0..notifications {
        let id = format!("n-{n:06}");
        tx.execute(
            "INSERT INTO notifications (tenant_id, id, recipient_kind, recipient_id, category, title, message, created_at) VALUES (?1, ?2, 'customer', ?3, 'message', 'Hi', ?4, ?5)",
            rusqlite::params![TENANT, id, customer, format!("Dear {NAME}"), at],
        )
        .unwrap();
        tx.execute("INSERT INTO audit_log (tenant_id, id, actor_id, action, target_type, target_id, customer_id, at, correlation_id) VALUES (?1, ?2, 'system:NotificationDispatch', 'notification.dispatch', 'notification', ?3, ?4, ?5, 'c')", rusqlite::params![TENANT, format!("a-{id}"), id, customer, at]).unwrap();
    }
    tx.commit().unwrap();
}

/// `(status, progress)` of an erasure request, read from the database file; `absent` before
/// the function first ran (an operator's request gets its record then).
fn erasure_state(path: &std::path::Path, request: &str) -> (String, Value) {
    use rusqlite::OptionalExtension;
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT status, COALESCE(progress, 'null'), COALESCE(report, 'null') FROM erasure_requests WHERE id = ?1", [request], |row| {
        let (status, progress, report): (String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        Ok((status, json!({"progress": serde_json::from_str::<Value>(&progress).unwrap(), "report": serde_json::from_str::<Value>(&report).unwrap()})))
    })
    .optional()
    .unwrap()
    .unwrap_or_else(|| ("absent".to_owned(), Value::Null))
}

/// `handler local` as a real process on `port`, killed with SIGKILL when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_local(data: &std::path::Path, port: u16) -> Process {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .arg("local")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data)
        .env("LOCAL_PORT", port.to_string())
        .env("LOCAL_TIMERS", "off")
        .env("LOCAL_QUEUE_LOCK_SECONDS", "1")
        .env("LOCAL_QUEUE_RETRY_DELAY_MS", "0")
        .env("LOCAL_QUEUE_MAX_DELIVERY_COUNT", "100")
        .env("JOB_BATCH_SIZE", "100")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let process = Process(child);
    let started = Instant::now();
    while common::client()
        .get(format!("http://127.0.0.1:{port}/api/health/live"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "handler local did not come up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    process
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_at_many_moments_the_erasure_resumes_and_ends_exact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::jwks::install_dev_key(&{
        std::fs::create_dir_all(&data).unwrap();
        data.clone()
    });
    let state = AppState::open(common::settings(&data, &[]), Mode::Local).unwrap();
    let db_path = state.db.path().to_owned();
    drop(state);
    seed_large(&db_path, "c-big", 500, 5000);
    let body = json!({"requestId": "kill-req", "tenantId": TENANT, "customerId": "c-big", "requestedBy": "operator:ops", "requestedAt": "2026-11-21T02:00:00Z"});
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    // Kill -9 at growing moments after start-up until the request completes on its own.
    let (mut killed_mid_way, mut runs) = (0, 0);
    let mut sent = false;
    for delay_ms in (0..60).map(|n| 10 + n * 6) {
        let process = start_local(&data, port).await;
        runs += 1;
        if !sent {
            let url = format!("http://127.0.0.1:{port}/admin/queues/gdpr-requests/messages");
            assert_eq!(
                common::client()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status(),
                201
            );
            sent = true;
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        drop(process); // SIGKILL
        let (status, _) = erasure_state(&db_path, "kill-req");
        if status == "completed" {
            break;
        }
        killed_mid_way += usize::from(status == "inProgress");
        tokio::time::sleep(Duration::from_millis(1100)).await; // the dead delivery's lock expires
    }
    // Once more, without a kill: a kill may have landed after the erasure completed but before
    // the queue message was acknowledged. That message is then delivered again, found complete
    // and acknowledged; it must not be dead-lettered.
    let _process = start_local(&data, port).await;
    let queued = || {
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        conn.query_row("SELECT COUNT(*) FROM local_queue_messages", [], |row| {
            row.get::<_, i64>(0)
        })
        .unwrap()
    };
    let started = Instant::now();
    while erasure_state(&db_path, "kill-req").0 != "completed" || queued() != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the erasure never completed, or its message stayed queued (dead-lettered?)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("{killed_mid_way} of {runs} kills landed mid-erasure");
    assert!(
        killed_mid_way >= 5,
        "only {killed_mid_way} of {runs} kills landed mid-erasure"
    );

    let (_, state) = erasure_state(&db_path, "kill-req");
    let counts = &state["report"]["counts"]["sqlite"];
    let expected = json!({"auditEntries": 5500, "consents": 0, "customers": 1, "idempotencyKeys": 500, "notifications": 5000, "orderStatusHistory": 500, "orders": 500, "payments": 0, "processedEvents": 0, "queuedMessages": 0, "shipments": 0});
    assert_eq!(
        counts, &expected,
        "each record counted once: {}",
        state["report"]
    );
    assert!(
        state["report"]["attempts"].as_u64().unwrap() >= 2,
        "{}",
        state["report"]
    );
    for needle in [NAME, EMAIL, PHONE, SHIP_LINE] {
        assert_eq!(
            scan_database(&db_path, needle),
            Vec::<String>::new(),
            "{needle}"
        );
    }
    let conn = rusqlite::Connection::open(&db_path).unwrap();
    let completions: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'gdpr.erasure.completed'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(completions, 1);
}

#[test]
fn under_the_host_start_up_needs_a_usable_pseudonym_key() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = [
        (
            "AUTH_ENTRA_ISSUER",
            "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0",
        ),
        ("AUTH_ENTRA_AUDIENCE", "api://platform"),
    ];
    let open = |key: Option<&str>| {
        let mut pairs = issuer.to_vec();
        pairs.extend(key.map(|key| ("GDPR_PSEUDONYM_KEY", key)));
        AppState::open(common::settings(dir.path(), &pairs), Mode::Azure)
            .err()
            .map(|error| error.to_string())
    };
    for (key, expected) in [
        (None, "not set"),
        (Some("short"), "at least 16"),
        (
            Some("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/k)"),
            "not resolved",
        ),
    ] {
        let error = open(key).unwrap_or_else(|| panic!("{key:?} was accepted"));
        assert!(
            error.starts_with("invalid setting GDPR_PSEUDONYM_KEY") && error.contains(expected),
            "{error}"
        );
    }
    assert_eq!(open(Some("a-proper-secret-of-32-characters")), None);
    // Local mode needs none: it generates one in DATA_DIR on first use.
    assert!(AppState::open(common::settings(dir.path(), &[]), Mode::Local).is_ok());
}

// --- retention eraser test ---
#[tokio::test]
async fn retention_erases_inactive_customers_with_the_same_erasure() {
    use shared::erasure::{erase_inactive_customer, ErasureOutcome};
    let app = app().await;
    let customer = seed(&app).await;
    let state = &app.runtime.state;
    let erase = || {
        let tenant = TenantId::new(TENANT).unwrap();
        let (state, customer) = (state.clone(), customer.clone());
        async move {
            erase_inactive_customer(
                state.store.as_ref(),
                &state.erasure,
                &tenant,
                &customer,
                "retention-1",
            )
            .await
        }
    };
    assert!(matches!(erase().await, Ok(ErasureOutcome::Completed(_))));
    assert!(matches!(
        erase().await,
        Ok(ErasureOutcome::AlreadyCompleted(_))
    ));
    let record = completed(&app, &customer, "retention-1").await;
    assert_eq!(record["requestedBy"], "system:DataRetentionCleanup");
    assert_eq!(record["report"]["counts"]["sqlite"]["orders"], 2);
    assert!(scan_database(state.db.path(), EMAIL).is_empty());
}
// --- end retention eraser test ---
