//! The SQLite adapter of the erasure port applies the masking rules batch by batch: with a
//! batch size of 1 every record is its own committed batch, the counts are exact, finished
//! steps and requests are no-ops, two deliveries erasing the same request at once count each
//! record once, and another customer's data is untouched.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use shared::domain::audit::AuditEntry;
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::masking::{Masker, PseudonymKey};
use shared::domain::tenant::TenantId;
use shared::store::sqlite::Db;
use shared::store::{ErasureProgress, ErasureStart, ErasureStep, ErasureStore};

const TENANT: &str = "t1";

fn seed(
    db_conn: &rusqlite::Connection,
    customer: &str,
    orders: usize,
    notifications: usize,
) -> rusqlite::Result<()> {
    let at = "2026-01-01T00:00:00.000000Z";
    db_conn.execute(
        "INSERT INTO customers VALUES (?1, ?2, 'Name Of Someone', ?3, '+4915112345678', NULL, '{\"inApp\":true,\"email\":true,\"sms\":false}', 'active', ?4, ?4, ?4, 'e')",
        rusqlite::params![TENANT, customer, format!("{customer}@example.org"), at],
    )?;
    for n in 0..orders {
        let id = format!("o-{customer}-{n}");
        db_conn.execute(
            "INSERT INTO orders VALUES (?1, ?2, ?3, 'pending', 100, 'EUR', '{\"line1\":\"1 Road\",\"city\":\"Town\",\"postalCode\":\"12345\",\"country\":\"DE\"}', ?4, ?4, 'e')",
            rusqlite::params![TENANT, id, customer, at],
        )?;
        db_conn.execute(
            "INSERT INTO order_status_history VALUES (?1, ?2, 1, 'pending', ?3, ?4, 'why')",
            rusqlite::params![TENANT, id, at, format!("dev-client-{customer}")],
        )?;
        db_conn.execute(
            "INSERT INTO idempotency_keys VALUES (?1, ?2, 'h', ?3, ?4)",
            rusqlite::params![TENANT, format!("k-{id}"), id, at],
        )?;
        db_conn.execute(
            "INSERT INTO audit_log (tenant_id, id, actor_id, action, target_type, target_id, customer_id, at, correlation_id) VALUES (?1, ?2, ?3, 'order.create', 'order', ?4, ?5, ?6, 'c')",
            rusqlite::params![
                TENANT,
                format!("a-{id}"),
                format!("dev-client-{customer}"),
                id,
                customer,
                at
            ],
        )?;
    }
    for n in 0..notifications {
        db_conn.execute(
            "INSERT INTO notifications (tenant_id, id, recipient_kind, recipient_id, category, title, message, created_at) VALUES (?1, ?2, 'customer', ?3, 'm', 't', 'text', ?4)",
            rusqlite::params![TENANT, format!("n-{customer}-{n}"), customer, at],
        )?;
    }
    Ok(())
}

async fn database(dir: &std::path::Path) -> Db {
    let db = Db::open(&dir.join("app.db")).unwrap();
    db.write(|conn| {
        seed(conn, "c-1", 5, 7)?;
        seed(conn, "c-2", 3, 4)
    })
    .await
    .unwrap();
    db
}

fn request(id: &str, customer: &str) -> ErasureRecord {
    ErasureRecord {
        id: id.into(),
        tenant_id: TENANT.into(),
        customer_id: customer.into(),
        requested_by: "operator:test".into(),
        status: ErasureStatus::Accepted,
        requested_at: Utc::now(),
        updated_at: Utc::now(),
        queued_at: None,
        report: None,
    }
}

fn masker(customer: &str) -> Masker {
    Masker::new(
        PseudonymKey::new("a-test-key-that-is-long-enough-0001").unwrap(),
        TENANT,
        customer,
        &[],
    )
}

/// Runs every step to the end in batches of `size`; the final progress.
async fn run_all(db: &Db, request_id: &str, customer: &str, size: usize) -> ErasureProgress {
    let tenant = TenantId::new(TENANT).unwrap();
    let masker = masker(customer);
    let mut progress = None;
    for step in ErasureStep::ALL {
        loop {
            let now = db
                .erase_batch(&tenant, request_id, step, &masker, size)
                .await
                .unwrap();
            let done = now.is_done(step);
            progress = Some(now);
            if done {
                break;
            }
        }
    }
    progress.unwrap()
}

fn expected_counts() -> serde_json::Value {
    json!({"auditEntries": 5, "consents": 0, "customers": 1, "idempotencyKeys": 5, "notifications": 7, "orderStatusHistory": 5, "orders": 5, "payments": 0, "processedEvents": 0, "queuedMessages": 0, "shipments": 0})
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    db.read(move |conn| conn.query_row(sql, [], |row| row.get(0)))
        .await
        .unwrap()
}

#[tokio::test]
async fn one_record_per_batch_counts_exactly_and_spares_other_customers() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let tenant = TenantId::new(TENANT).unwrap();
    assert!(matches!(
        db.start_erasure(&tenant, request("r-1", "c-1"))
            .await
            .unwrap(),
        ErasureStart::Run { .. }
    ));
    let progress = run_all(&db, "r-1", "c-1", 1).await;
    assert_eq!(
        serde_json::to_value(progress.counts()).unwrap(),
        expected_counts()
    );
    assert_eq!(
        progress.steps[&ErasureStep::Notifications].batches,
        8,
        "seven deletes and one that found nothing"
    );

    // Running a finished step again changes nothing.
    let again = db
        .erase_batch(
            &tenant,
            "r-1",
            ErasureStep::Notifications,
            &masker("c-1"),
            1,
        )
        .await
        .unwrap();
    assert_eq!(again.counts(), progress.counts());

    // c-2 keeps everything.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM notifications WHERE recipient_id = 'c-2'"
        )
        .await,
        4
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM audit_log WHERE customer_id = 'c-2'"
        )
        .await,
        3
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM customers WHERE id = 'c-2' AND status = 'active' AND name = 'Name Of Someone'").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM orders WHERE customer_id = 'c-2' AND shipping_address LIKE '%1 Road%'").await, 3);
    // c-1 keeps its bookkeeping facts.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM orders WHERE customer_id = 'c-1' AND total_cents = 100 AND shipping_address NOT LIKE '%1 Road%'").await, 5);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM order_status_history WHERE actor_id LIKE 'psn-%' AND reason IS NULL").await, 5);
}

#[tokio::test]
async fn finishing_twice_writes_one_report_and_one_audit_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let tenant = TenantId::new(TENANT).unwrap();
    db.start_erasure(&tenant, request("r-1", "c-1"))
        .await
        .unwrap();
    run_all(&db, "r-1", "c-1", 100).await;
    let audit = || {
        AuditEntry::now(
            TENANT,
            "system:test",
            "gdpr.erasure.completed",
            "erasureRequest",
            "r-1",
            "c",
        )
    };
    let (first, written) = db
        .finish_erasure(&tenant, "r-1", json!({"n": 1}), audit())
        .await
        .unwrap();
    assert!(written);
    assert_eq!(first.status, ErasureStatus::Completed);
    let (second, written) = db
        .finish_erasure(&tenant, "r-1", json!({"n": 2}), audit())
        .await
        .unwrap();
    assert!(!written);
    assert_eq!(second.report, Some(json!({"n": 1})));
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'gdpr.erasure.completed'"
        )
        .await,
        1
    );
    assert!(matches!(
        db.start_erasure(&tenant, request("r-1", "c-1"))
            .await
            .unwrap(),
        ErasureStart::AlreadyCompleted(_)
    ));
    assert!(
        matches!(db.start_erasure(&tenant, request("r-other", "c-1")).await.unwrap(), ErasureStart::CustomerAlreadyErased { erased_by: Some(id) } if id == "r-1")
    );
}

#[tokio::test]
async fn two_deliveries_erasing_at_once_count_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(database(dir.path()).await);
    let tenant = TenantId::new(TENANT).unwrap();
    db.start_erasure(&tenant, request("r-1", "c-1"))
        .await
        .unwrap();
    db.start_erasure(&tenant, request("r-1", "c-1"))
        .await
        .unwrap();
    let (a, b) = tokio::join!(run_all(&db, "r-1", "c-1", 1), run_all(&db, "r-1", "c-1", 2));
    let last = if a.steps.values().map(|s| s.batches).sum::<u64>()
        >= b.steps.values().map(|s| s.batches).sum::<u64>()
    {
        a
    } else {
        b
    };
    assert_eq!(
        serde_json::to_value(last.counts()).unwrap(),
        expected_counts()
    );
    assert_eq!(last.attempts, 2);
}

#[tokio::test]
async fn a_request_naming_another_customer_or_a_missing_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let tenant = TenantId::new(TENANT).unwrap();
    db.start_erasure(&tenant, request("r-1", "c-1"))
        .await
        .unwrap();
    assert!(matches!(
        db.start_erasure(&tenant, request("r-1", "c-2")).await,
        Err(shared::store::StoreError::Conflict(_))
    ));
    assert!(matches!(
        db.start_erasure(&tenant, request("r-9", "nobody")).await,
        Err(shared::store::StoreError::NotFound)
    ));
    let other_tenant = TenantId::new("t2").unwrap();
    assert!(
        matches!(
            db.start_erasure(&other_tenant, request("r-8", "c-1")).await,
            Err(shared::store::StoreError::NotFound)
        ),
        "tenant scoped"
    );
}

/// Holds the database's write lock from another connection (as another process's job lease or
/// start-up would) for `hold`, from a thread; the join handle releases it.
fn hold_write_lock(
    path: std::path::PathBuf,
    hold: std::time::Duration,
) -> std::thread::JoinHandle<()> {
    let (locked, is_locked) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let other = rusqlite::Connection::open(path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked.send(()).unwrap();
        std::thread::sleep(hold);
        other.execute_batch("COMMIT").unwrap();
    });
    is_locked.recv().unwrap();
    handle
}

/// An erasure's writes wait for another connection's write lock (the busy timeout) instead of
/// failing at once with "database is locked": a transaction that read first and then wrote
/// could not take the lock, which left a customer `erasureRequested` with data unmasked when
/// two job processes overlapped.
#[tokio::test]
async fn erasure_writes_wait_for_another_processes_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path()).await;
    let path = dir.path().join("app.db");
    let tenant = TenantId::new(TENANT).unwrap();
    let hold = std::time::Duration::from_millis(300);

    let other = hold_write_lock(path.clone(), hold);
    db.start_erasure(&tenant, request("r-1", "c-1"))
        .await
        .expect("start waits for the lock");
    other.join().unwrap();

    let masker = masker("c-1");
    for step in ErasureStep::ALL {
        loop {
            let other = hold_write_lock(path.clone(), std::time::Duration::from_millis(50));
            let progress = db
                .erase_batch(&tenant, "r-1", step, &masker, 2)
                .await
                .unwrap_or_else(|error| panic!("{step:?} waits for the lock: {error}"));
            other.join().unwrap();
            if progress.is_done(step) {
                break;
            }
        }
    }

    let other = hold_write_lock(path, hold);
    let audit = AuditEntry::now(
        TENANT,
        "system:test",
        "gdpr.erasure.completed",
        "erasureRequest",
        "r-1",
        "c",
    );
    let (record, _) = db
        .finish_erasure(&tenant, "r-1", json!({"n": 1}), audit)
        .await
        .expect("finish waits for the lock");
    other.join().unwrap();
    assert_eq!(record.status, ErasureStatus::Completed);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM customers WHERE id = 'c-1' AND email LIKE '%@example.org'"
        )
        .await,
        0,
        "the email is masked"
    );
}
