//! Employees' reads in the GDPR trail and breach detection, over real HTTP on loopback through
//! the local runtime, with low thresholds (`SECURITY_*` settings).
//!
//! Proves: an employee's reads of a customer's data (customer, their orders, consents, an
//! order) show in `GET /audit/gdpr/{customerId}` with the employee's id and roles, a client's
//! reads of their own data do not; each rule (many distinct customers read, a burst of 404s,
//! a burst of token failures, many exports, a refused export or erasure of someone else's data)
//! fires at its threshold and not below it, once per window; each finding is listed to admins
//! only at `GET /audit/security-events`, is in the audit trail and on the `security-alerts`
//! topic; no event, message or log line holds a name, an email address or a customer id.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::ApiApp;
use serde_json::Value;
use shared::auth::Role;

const THRESHOLDS: &[(&str, &str)] = &[
    ("SECURITY_WINDOW_SECONDS", "600"),
    ("SECURITY_READS_ADMIN", "10"),
    ("SECURITY_READS_CUSTOMER_SERVICE", "3"),
    ("SECURITY_READS_ORDER_MANAGER", "2"),
    ("SECURITY_FAILURES", "4"),
    ("SECURITY_EXPORTS", "2"),
];

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn customers(app: &ApiApp, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let customer = app
            .create_customer(
                "t1",
                &format!("Grace Hopper {n}"),
                &format!("grace{n}@example.org"),
            )
            .await;
        ids.push(id_of(&customer));
    }
    ids
}

async fn security_events(app: &ApiApp) -> Vec<Value> {
    let reply = app.get("/audit/security-events", &app.admin("t1")).await;
    reply.expect_status(200).body["items"]
        .as_array()
        .expect("items")
        .clone()
}

fn rules(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["rule"].as_str().expect("rule"))
        .collect()
}

#[tokio::test]
async fn an_employees_reads_show_in_the_gdpr_trail_and_a_clients_own_do_not() {
    let app = ApiApp::start(THRESHOLDS).await;
    let ada = id_of(
        &app.create_customer("t1", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let product = id_of(&app.create_product("t1", "Lamp", "home", 5).await);
    let order = app
        .post(
            "/orders",
            &app.admin("t1"),
            &serde_json::json!({"customerId": ada, "items": [{"productId": product, "quantity": 1}]}),
        )
        .await
        .expect_status(201)
        .body
        .clone();
    let order_id = id_of(&order);

    let client = app.client_of("t1", &ada);
    for path in [
        format!("/customers/{ada}"),
        format!("/customers/{ada}/orders"),
        format!("/orders/{order_id}"),
    ] {
        app.get(&path, &client).await.expect_status(200);
    }
    let service = app.employee("t1", &[Role::CustomerService]);
    for path in [
        format!("/customers/{ada}"),
        format!("/customers/{ada}/orders"),
        format!("/customers/{ada}/consents"),
        format!("/orders/{order_id}"),
        format!("/orders/{order_id}/history"),
    ] {
        app.get(&path, &service).await.expect_status(200);
    }

    let trail = app
        .get(&format!("/audit/gdpr/{ada}?limit=100"), &app.admin("t1"))
        .await;
    let reads: Vec<&Value> = trail.expect_status(200).body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|entry| {
            entry["action"]
                .as_str()
                .is_some_and(|a| a.ends_with(".read"))
        })
        .collect();
    let mut actions: Vec<&str> = reads
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "consent.read",
            "customer.orders.read",
            "customer.read",
            "order.history.read",
            "order.read"
        ],
        "the employee's five reads, none of the client's"
    );
    for entry in reads {
        assert_eq!(entry["actorId"], "dev-employee");
        assert_eq!(entry["actorRole"], "customer-service");
        assert_eq!(entry["customerId"], ada.as_str());
        assert!(entry["correlationId"]
            .as_str()
            .is_some_and(|id| !id.is_empty()));
    }
}

#[tokio::test]
async fn reading_many_customers_fires_at_the_role_threshold_and_not_below() {
    let app = ApiApp::start(THRESHOLDS).await;
    let ids = customers(&app, 4).await;
    let service = app.employee("t1", &[Role::CustomerService]);
    for id in &ids[..2] {
        app.get(&format!("/customers/{id}"), &service)
            .await
            .expect_status(200);
        app.get(&format!("/customers/{id}/consents"), &service)
            .await
            .expect_status(200);
    }
    assert!(
        security_events(&app).await.is_empty(),
        "2 distinct customers: below 3"
    );

    app.get(&format!("/customers/{}", ids[2]), &service)
        .await
        .expect_status(200);
    let events = security_events(&app).await;
    assert_eq!(rules(&events), ["bulk-read"]);
    let event = &events[0];
    assert_eq!(event["principalId"], "dev-employee");
    assert_eq!(event["role"], "customer-service");
    assert_eq!(
        (event["count"].as_u64(), event["threshold"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(event["windowSeconds"], 600);

    // Once per window: a fourth customer raises nothing new.
    app.get(&format!("/customers/{}", ids[3]), &service)
        .await
        .expect_status(200);
    assert_eq!(security_events(&app).await.len(), 1);

    // In the audit trail and on the topic, ids only.
    let audit = app
        .get("/audit/logs?action=security.bulk-read", &app.admin("t1"))
        .await;
    let entries = audit.expect_status(200).body["items"]
        .as_array()
        .expect("items")
        .clone();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["targetId"], "dev-employee");
    let messages = app.messages_on("security-alerts").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], event["id"]);
    let text = serde_json::to_string(&(events, messages, entries)).expect("json");
    for id in &ids {
        assert!(
            !text.contains(id.as_str()),
            "no customer id in security events"
        );
    }
    assert!(!text.contains("Grace") && !text.contains("example.org"));
}

#[tokio::test]
async fn an_admin_reads_under_the_admin_threshold() {
    let app = ApiApp::start(THRESHOLDS).await;
    let ids = customers(&app, 3).await;
    for id in &ids {
        app.get(&format!("/customers/{id}"), &app.admin("t1"))
            .await
            .expect_status(200);
    }
    assert!(
        security_events(&app).await.is_empty(),
        "3 of the admin's 10"
    );
}

#[tokio::test]
async fn a_burst_of_not_found_fires_at_the_threshold_and_not_below() {
    let app = ApiApp::start(THRESHOLDS).await;
    let other_tenant = id_of(
        &app.create_customer("t2", "Ada Lovelace", "ada@example.org")
            .await,
    );
    let manager = app.employee("t1", &[Role::OrderManager]);
    for _ in 0..3 {
        app.get(&format!("/customers/{other_tenant}"), &manager)
            .await
            .expect_problem(404);
    }
    assert!(security_events(&app).await.is_empty(), "3 of 4");
    app.get("/orders/no-such-order", &manager)
        .await
        .expect_problem(404);
    let events = security_events(&app).await;
    assert_eq!(rules(&events), ["failure-burst"]);
    assert_eq!(events[0]["count"], 4);
    assert!(!serde_json::to_string(&events)
        .unwrap()
        .contains(&other_tenant));
}

#[tokio::test]
async fn a_burst_of_token_failures_fires_at_the_threshold_and_not_below() {
    let app = ApiApp::start(THRESHOLDS).await;
    let bad = |n: usize| {
        app.request(
            reqwest::Method::GET,
            "/customers",
            Some(&format!("not-a-token-{n}")),
        )
        .header("x-client-address", "203.0.113.9")
    };
    let platform_events = || async {
        app.runtime
            .state
            .ports
            .security
            .list_security_events(
                &shared::domain::tenant::TenantId::new("_platform").unwrap(),
                shared::store::PageRequest::new(10, None),
            )
            .await
            .expect("events")
            .items
    };
    for n in 0..3 {
        assert_eq!(bad(n).send().await.expect("reply").status(), 401);
    }
    assert!(platform_events().await.is_empty(), "3 of 4");
    assert_eq!(bad(3).send().await.expect("reply").status(), 401);
    let events = platform_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].rule, shared::security::Rule::FailureBurst);
    assert!(
        events[0].principal_id.starts_with("psn-"),
        "the address, pseudonymised"
    );
    assert!(!serde_json::to_string(&events)
        .unwrap()
        .contains("203.0.113.9"));
}

#[tokio::test]
async fn exporting_many_customers_fires_at_the_threshold_and_not_below() {
    let app = ApiApp::start(THRESHOLDS).await;
    let ids = customers(&app, 2).await;
    let service = app.employee("t1", &[Role::CustomerService]);
    let export = |id: &str| format!("/customers/{id}/gdpr/export");
    app.post(&export(&ids[0]), &service, &serde_json::json!({}))
        .await
        .expect_status(200);
    app.post(&export(&ids[0]), &service, &serde_json::json!({}))
        .await
        .expect_status(200);
    assert!(
        security_events(&app).await.is_empty(),
        "one customer twice: 1 of 2"
    );
    app.post(&export(&ids[1]), &service, &serde_json::json!({}))
        .await
        .expect_status(200);
    assert_eq!(rules(&security_events(&app).await), ["bulk-export"]);
}

#[tokio::test]
async fn a_refused_export_or_erasure_of_someone_elses_data_is_a_finding() {
    let app = ApiApp::start(THRESHOLDS).await;
    let ids = customers(&app, 2).await;
    let own = app.client_of("t1", &ids[0]);
    app.post(
        &format!("/customers/{}/gdpr/export", ids[0]),
        &own,
        &serde_json::json!({}),
    )
    .await
    .expect_status(200);
    assert!(
        security_events(&app).await.is_empty(),
        "their own export is no finding"
    );

    app.delete(&format!("/customers/{}", ids[1]), &own)
        .await
        .expect_problem(404);
    let events = security_events(&app).await;
    assert_eq!(rules(&events), ["refused-gdpr-request"]);
    assert_eq!(events[0]["principalId"], format!("dev-client-{}", ids[0]));
    assert!(events[0].get("role").is_none());

    // An employee whose role may not export: refused, a finding of its own.
    let manager = app.employee("t1", &[Role::OrderManager]);
    app.post(
        &format!("/customers/{}/gdpr/export", ids[1]),
        &manager,
        &serde_json::json!({}),
    )
    .await
    .expect_problem(403);
    assert_eq!(security_events(&app).await.len(), 2);
}

#[tokio::test]
async fn only_admins_see_security_events() {
    let app = ApiApp::start(THRESHOLDS).await;
    for roles in [&[Role::CustomerService][..], &[Role::OrderManager]] {
        app.get("/audit/security-events", &app.employee("t1", roles))
            .await
            .expect_problem(403);
    }
    let client = app.client_of("t1", "c-1");
    app.get("/audit/security-events", &client)
        .await
        .expect_problem(403);
    app.get("/audit/security-events?limit=0", &app.admin("t1"))
        .await
        .expect_problem(400);
}

/// The log lines of every test of this binary (one global subscriber: a per-thread one misses
/// events whose callsites another thread registered first).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lines").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_lines() -> Lines {
    static LINES: std::sync::OnceLock<Lines> = std::sync::OnceLock::new();
    LINES
        .get_or_init(|| {
            let lines = Lines::default();
            let writer = lines.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
            lines
        })
        .clone()
}

#[tokio::test]
async fn log_lines_of_findings_hold_no_personal_data() {
    let lines = captured_lines();
    let app = ApiApp::start(THRESHOLDS).await;
    let tenant = "t-logs";
    let mut ids = Vec::new();
    for n in 0..3 {
        let body = serde_json::json!({"name": format!("Grace Hopper {n}"), "email": format!("grace{n}@example.org")});
        let customer = app.post("/customers", &app.admin(tenant), &body).await;
        ids.push(id_of(&customer.expect_status(201).body));
    }
    let service = app.employee(tenant, &[Role::CustomerService]);
    for id in &ids {
        app.get(&format!("/customers/{id}"), &service)
            .await
            .expect_status(200);
    }
    let own = app.client_of(tenant, &ids[0]);
    app.delete(&format!("/customers/{}", ids[1]), &own)
        .await
        .expect_problem(404);

    let text = String::from_utf8(lines.0.lock().expect("lines").clone()).expect("utf-8");
    let findings: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.contains("api::security: security event") && line.contains("tenant=t-logs")
        })
        .collect();
    assert_eq!(findings.len(), 2, "one log line per finding: {findings:#?}");
    for id in &ids[1..] {
        assert!(
            !text.contains(id.as_str()),
            "no customer id but the client's own in any line"
        );
    }
    assert!(!text.contains("Grace Hopper") && !text.contains("example.org"));
}
