//! `handler local` on the Azure backends, as real processes: `STORE=cosmos` on the SDK's
//! in-memory emulator (`COSMOS_ENDPOINT=memory:`) and `ARCHIVE=blob` on Azurite. The API flow
//! of the README (product, customer, order moved to shipped, the customer's notifications)
//! and one retention run work end to end, and readiness names both backends.
//!
//! Needs `AZURITE_BLOB_ENDPOINT` (exported by `scripts/test`); without it the test fails under
//! CI and is skipped with a printed reason otherwise.

#[path = "../../shared/tests/support/azurite.rs"]
mod azurite;
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{client, free_port, Running};
use serde_json::{json, Value};
use shared::archive::{BlobArchive, BlobArchiveOptions, BlobAuth};

/// The Blob container of this test's app, created on Azurite (in Azure, Bicep creates it).
fn create_container(blob_endpoint: &str) -> String {
    let container = format!("local-{}", uuid::Uuid::new_v4().simple());
    let options = BlobArchiveOptions {
        call_timeout: Duration::from_secs(20),
        retries: false,
        ..Default::default()
    };
    let archive = BlobArchive::new(
        blob_endpoint,
        &container,
        BlobAuth::Sas(azurite::account_sas()),
        options,
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(archive.create_container_if_missing())
        .unwrap();
    container
}

fn handler(dir: &Path, blob_endpoint: &str, container: &str) -> Command {
    let mut command = common::process::handler(dir);
    command
        .env("STORE", "cosmos")
        .env("COSMOS_ENDPOINT", "memory:")
        .env("ARCHIVE", "blob")
        .env("ARCHIVE_BLOB_ENDPOINT", blob_endpoint)
        .env("ARCHIVE_BLOB_SAS", azurite::account_sas())
        .env("ARCHIVE_CONTAINER", container)
        .env("LOCAL_TIMERS", "off")
        .env("RUST_LOG", "warn");
    command
}

/// Readiness once every backend answers (30 s at most).
fn wait_until_ready(base: &str) -> Value {
    let (_, body) = common::process::wait_for(
        &format!("{base}/api/health/ready"),
        Duration::from_secs(30),
        |status| (200..300).contains(&status),
    );
    serde_json::from_str(&body).unwrap()
}

fn dev_token(dir: &Path, blob_endpoint: &str, args: &[&str]) -> String {
    let output = handler(dir, blob_endpoint, "unused")
        .arg("dev-token")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Sends `body` (if any) with `token`; the status and JSON answer.
fn call(method: reqwest::Method, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client().request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn the_api_flow_and_a_retention_run_work_on_cosmos_and_blob() {
    let Some(blob_endpoint) = azurite::azurite_endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let container = create_container(&blob_endpoint);
    let _app = Running::spawn(
        handler(dir.path(), &blob_endpoint, &container)
            .env("LOCAL_PORT", port.to_string())
            .arg("local")
            .stdout(Stdio::null()),
    );
    let ready = wait_until_ready(&base);
    assert_eq!(ready["checks"]["cosmos"], "ok", "{ready}");
    assert_eq!(ready["checks"]["blob"], "ok", "{ready}");

    let admin = dev_token(
        dir.path(),
        &blob_endpoint,
        &["--tenant", "contoso", "--role", "admin"],
    );
    let (status, product) = call(
        reqwest::Method::POST,
        &format!("{base}/api/v1/products"),
        &admin,
        Some(
            json!({"name": "Kettle", "category": "kitchen", "priceCents": 2999, "currency": "EUR", "stock": 10}),
        ),
    );
    assert_eq!(status, 201, "{product}");
    let (status, customer) = call(
        reqwest::Method::POST,
        &format!("{base}/api/v1/customers"),
        &admin,
        Some(json!({"name": "Ada Lovelace", "email": "ada@example.org"})),
    );
    assert_eq!(status, 201, "{customer}");
    let customer_id = customer["id"].as_str().unwrap();
    let order_body =
        json!({"customerId": customer_id, "items": [{"productId": product["id"], "quantity": 2}]});
    let (status, order) = call(
        reqwest::Method::POST,
        &format!("{base}/api/v1/orders"),
        &admin,
        Some(order_body),
    );
    assert_eq!(status, 201, "{order}");
    let order_id = order["id"].as_str().unwrap();
    let (_, stocked) = call(
        reqwest::Method::GET,
        &format!("{base}/api/v1/products/{}", product["id"].as_str().unwrap()),
        &admin,
        None,
    );
    assert_eq!(stocked["stock"], 8, "stock was reserved: {stocked}");
    for next in ["confirmed", "shipped"] {
        let (status, moved) = call(
            reqwest::Method::PUT,
            &format!("{base}/api/v1/orders/{order_id}/status"),
            &admin,
            Some(json!({"status": next})),
        );
        assert_eq!(
            (status, moved["status"].as_str()),
            (200, Some(next)),
            "{moved}"
        );
    }

    // The order events reach NotificationDispatch through the embedded queue.
    let client_token = dev_token(
        dir.path(),
        &blob_endpoint,
        &["--tenant", "contoso", "--customer", customer_id],
    );
    let started = Instant::now();
    let notifications = loop {
        let (status, listed) = call(
            reqwest::Method::GET,
            &format!("{base}/api/v1/notifications"),
            &client_token,
            None,
        );
        assert_eq!(status, 200, "{listed}");
        if listed["items"]
            .as_array()
            .is_some_and(|items| items.len() >= 3)
        {
            break listed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "notifications never arrived: {listed}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        notifications["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["recipient"]["id"] == customer_id),
        "{notifications}"
    );
    let (status, own_orders) = call(
        reqwest::Method::GET,
        &format!("{base}/api/v1/orders"),
        &client_token,
        None,
    );
    assert_eq!(
        (status, own_orders["items"][0]["id"].as_str()),
        (200, Some(order_id)),
        "{own_orders}"
    );

    // One retention run, in the same process (the emulator's data lives there).
    let response = client()
        .post(format!("{base}/admin/functions/DataRetentionCleanup"))
        .json(&json!({"input": ""}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let invoked: Value = response.json().unwrap();
    assert_eq!(invoked["status"], "succeeded", "{invoked}");
    let report = &invoked["reply"]["ReturnValue"];
    assert_eq!(
        (report["job"].as_str(), report["outcome"].as_str()),
        (Some("DataRetentionCleanup"), Some("finished")),
        "{invoked}"
    );
    // Everything is new, so nothing is due: the run scanned the tenant's data on Cosmos DB and
    // left it alone (the archive path itself is covered by blob_archive_process.rs).
    let (_, still_there) = call(
        reqwest::Method::GET,
        &format!("{base}/api/v1/notifications"),
        &client_token,
        None,
    );
    assert_eq!(
        still_there["items"], notifications["items"],
        "a retention run removed recent notifications"
    );
}
