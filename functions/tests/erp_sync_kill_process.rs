//! `ErpInventorySync` as a real process (`handler jobs run ErpInventorySync`) killed with
//! SIGKILL mid-sync, twice, then run to its end: the checkpoint (the ERP's `nextToken`) is
//! saved with every applied page, each restart resumes after the last applied page instead of
//! starting over, and the end state is exactly the ERP's last stock levels less what open
//! orders reserve. The fake ERP runs in the test over loopback HTTP; the store is a real SQLite
//! file the test reads while the process writes it.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use function_app::local::sandbox::erp::{ErpSandbox, ErpSandboxConfig, RunningErp};
use serde_json::{json, Value};
use shared::domain::audit::AuditEntry;
use shared::domain::order::{OrderInput, OrderLineInput};
use shared::domain::product::Product;
use shared::domain::tenant::TenantId;
use shared::store::sqlite::Db;
use shared::store::{CustomerStore, NewOrder, OrderStore, ProductStore};

const TENANT: &str = "contoso";
const SKUS: [&str; 5] = ["KET-001", "MUG-002", "TEA-003", "LMP-004", "TST-005"];
/// Warehouse bookings made at the ERP before the sync (200 per SKU: a page each, so the sync
/// lasts a few seconds and a test thread starved by a busy machine still sees it mid-way).
const ROUNDS: i64 = 200;

fn audit(action: &str, target: &str) -> AuditEntry {
    AuditEntry::now(TENANT, "actor-1", action, "test", target, "corr-1")
}

/// Products linked to the five seeded SKUs, a customer, and an open order of 3 kettles.
async fn seed(data: &Path) {
    let db = Db::open(&data.join("app.db")).expect("the store opens");
    let tenant = TenantId::new(TENANT).unwrap();
    let now = shared::domain::now();
    for (index, sku) in SKUS.iter().enumerate() {
        let product = Product {
            id: format!("p-{index}"),
            tenant_id: String::new(),
            name: format!("Product {sku}"),
            category: "kitchen".into(),
            description: None,
            price_cents: 100,
            currency: "EUR".into(),
            stock: 50,
            active: true,
            sku: Some((*sku).into()),
            erp_on_hand: None,
            reserved: 0,
            created_at: now,
            updated_at: now,
            etag: String::new(),
        };
        db.create_product(&tenant, product, audit("product.create", sku))
            .await
            .unwrap();
    }
    let customer = records::customer("c-1");
    db.create_customer(&tenant, customer, audit("customer.create", "c-1"))
        .await
        .unwrap();
    let order = NewOrder {
        id: "o-1".into(),
        customer_id: "c-1".into(),
        input: OrderInput {
            customer_id: Some("c-1".into()),
            items: vec![OrderLineInput {
                product_id: "p-0".into(),
                quantity: 3,
            }],
            shipping_address: None,
        },
        actor_id: "actor-1".into(),
        idempotency: None,
    };
    db.create_order(&tenant, order, audit("order.create", "o-1"))
        .await
        .unwrap();
}

#[path = "../../shared/tests/fixtures/records.rs"]
mod records;

/// Books `ROUNDS` stock changes per SKU at the ERP; the last on-hand of each.
async fn book_changes(erp: &RunningErp) -> Vec<(String, i64)> {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut last = Vec::new();
    for sku in SKUS {
        let mut on_hand = 0;
        for round in 0..ROUNDS {
            on_hand = 20 + (round * 7 + sku.len() as i64) % 40;
            let response = http
                .post(format!("{}/sandbox/stock", erp.base_url()))
                .json(&json!({"sku": sku, "onHand": on_hand}))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
        }
        last.push((sku.to_owned(), on_hand));
    }
    last
}

fn sync(dir: &Path, erp: &RunningErp) -> Command {
    let mut command = common::process::handler(dir);
    command
        .env("ERP_BASE_URL", erp.endpoint())
        .env("ERP_USERNAME", &erp.credentials().username)
        .env("ERP_PASSWORD", erp.credentials().password.expose())
        .env("ERP_TENANTS", TENANT)
        .env("ERP_STOCK_PAGE_SIZE", "1")
        .env("RUST_LOG", "error")
        .args(["jobs", "run", "ErpInventorySync"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The sequence number the job's checkpoint names (0 before the first page).
fn checkpoint(data: &Path) -> u64 {
    let conn = rusqlite::Connection::open(data.join("app.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let state: Option<String> = conn
        .query_row(
            "SELECT state FROM job_checkpoints WHERE job = 'ErpInventorySync'",
            [],
            |row| row.get(0),
        )
        .ok();
    state
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|value| value["token"].as_str().and_then(|t| t.parse().ok()))
        .unwrap_or(0)
}

/// Starts a sync and kills it (SIGKILL) once its checkpoint passed `past`; the checkpoint
/// then.
fn kill_after(dir: &Path, erp: &RunningErp, past: u64) -> u64 {
    let mut child: Child = sync(dir, erp).spawn().unwrap();
    let started = Instant::now();
    while checkpoint(&dir.join("data")) <= past {
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            panic!(
                "the sync ended before it could be killed past {past} (at {}): {}{}",
                checkpoint(&dir.join("data")),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    checkpoint(&dir.join("data"))
}

fn product_row(data: &Path, sku: &str) -> (i64, i64, i64) {
    let conn = rusqlite::Connection::open(data.join("app.db")).unwrap();
    conn.query_row(
        "SELECT erp_on_hand, reserved, stock FROM products WHERE tenant_id = ?1 AND sku = ?2",
        [TENANT, sku],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_mid_way_resumes_after_its_last_applied_page_and_ends_exact() {
    let erp = ErpSandbox::start(ErpSandboxConfig::generated())
        .await
        .unwrap();
    let last = book_changes(&erp).await;
    let total = SKUS.len() as u64 * (ROUNDS as u64 + 1);
    let case = tempfile::tempdir().unwrap();
    let dir = case.path().to_owned();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    seed(&dir.join("data")).await;

    let at_first_kill = kill_after(&dir, &erp, 20);
    assert!(
        at_first_kill > 20 && at_first_kill < total,
        "killed mid-sync at {at_first_kill} of {total}"
    );
    let at_second_kill = kill_after(&dir, &erp, at_first_kill + 40);
    assert!(
        at_second_kill > at_first_kill + 40 && at_second_kill < total,
        "the second run resumed after {at_first_kill} and was killed at {at_second_kill} of {total}"
    );

    let output = sync(&dir, &erp).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcome"], "finished", "{report}");
    assert_eq!(
        report["findings"]["pagesApplied"].as_u64(),
        Some(total - at_second_kill),
        "the last run applied only the pages after the checkpoint: {report}"
    );
    assert_eq!(
        checkpoint(&dir.join("data")),
        total,
        "the checkpoint stays at the ERP's last change"
    );
    for (sku, on_hand) in last {
        let reserved = if sku == "KET-001" { 3 } else { 0 };
        assert_eq!(
            product_row(&dir.join("data"), &sku),
            (on_hand, reserved, on_hand - reserved),
            "{sku}: the ERP's last level less the open order's reservation"
        );
    }
}
