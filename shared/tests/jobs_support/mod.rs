//! Test data for the job tests: a SQLite database seeded with direct SQL (fast), what each job
//! should leave behind, and readers for the store and the archive.
//!
//! Shared by `shared/tests/jobs_*.rs` and `functions/tests/jobs_*.rs` (by path).

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rusqlite::{params, Connection};

pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - Duration::days(days)
}

/// How much of each kind to seed per tenant.
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    pub tenants: usize,
    /// Notifications 100-130 days old (half of them read): due for retention (90 days).
    pub old_notifications: usize,
    /// Read notifications 35-60 days old: due for the read cleanup (30 days) only.
    pub read_notifications: usize,
    /// Notifications 1-10 days old, half read: kept by every job.
    pub new_notifications: usize,
    /// Audit entries 11 years old, over several days: due for archival (10 years).
    pub old_audit: usize,
    /// Recent audit entries: kept.
    pub new_audit: usize,
}

impl Default for Seed {
    fn default() -> Self {
        Self {
            tenants: 3,
            old_notifications: 40,
            read_notifications: 30,
            new_notifications: 20,
            old_audit: 50,
            new_audit: 10,
        }
    }
}

pub fn tenant(index: usize) -> String {
    format!("t{}", index + 1)
}

/// Opens (creating and migrating) the app database under `data_dir`.
pub fn open_db(data_dir: &Path) -> shared::store::sqlite::Db {
    shared::store::sqlite::Db::open(&data_dir.join("app.db")).expect("open db")
}

pub fn connect(data_dir: &Path) -> Connection {
    let conn = Connection::open(data_dir.join("app.db")).expect("connect");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    conn
}

/// Seeds notifications and audit entries per `seed` (the database must be migrated).
pub fn seed(conn: &mut Connection, seed: Seed) {
    let tx = conn.transaction().expect("tx");
    {
        let mut notification = tx
            .prepare(
                "INSERT INTO notifications (tenant_id, id, recipient_kind, recipient_id, category, title, message, read_at, is_read, created_at)
                 VALUES (?1, ?2, 'role', 'admin', ?3, 'Title with content', 'Message with content', ?4, ?5, ?6)",
            )
            .expect("prepare");
        let mut audit = tx
            .prepare(
                "INSERT INTO audit_log (tenant_id, id, actor_id, action, target_type, target_id, customer_id, at, correlation_id)
                 VALUES (?1, ?2, 'user-1', 'order.create', 'order', ?3, ?4, ?5, 'corr-1')",
            )
            .expect("prepare");
        for t in 0..seed.tenants {
            let tenant = tenant(t);
            let categories = ["orderShipped", "orderCreated", "promotion"];
            let mut add = |kind: &str,
                           n: usize,
                           age: &dyn Fn(usize) -> Duration,
                           read: &dyn Fn(usize) -> bool| {
                for i in 0..n {
                    let created = Utc::now() - age(i);
                    let is_read = read(i);
                    let read_at = is_read.then(|| ts(created + Duration::hours(1)));
                    notification
                        .execute(params![
                            tenant,
                            format!("{kind}-{i:05}"),
                            categories[i % 3],
                            read_at,
                            is_read,
                            ts(created)
                        ])
                        .expect("notification");
                }
            };
            add(
                "old",
                seed.old_notifications,
                &|i| Duration::days(100 + (i % 30) as i64) + Duration::minutes(i as i64),
                &|i| i % 2 == 0,
            );
            add(
                "read",
                seed.read_notifications,
                &|i| Duration::days(35 + (i % 25) as i64) + Duration::minutes(i as i64),
                &|_| true,
            );
            add(
                "new",
                seed.new_notifications,
                &|i| Duration::days(1 + (i % 10) as i64) + Duration::minutes(i as i64),
                &|i| i % 2 == 0,
            );
            for i in 0..seed.old_audit {
                let at = Utc::now() - Duration::days(11 * 366 + (i % 7) as i64)
                    + Duration::seconds(i as i64);
                let customer = (i % 4 == 0).then(|| format!("cust-{i}"));
                audit
                    .execute(params![
                        tenant,
                        format!("old-audit-{i:05}"),
                        format!("order-{i}"),
                        customer,
                        ts(at)
                    ])
                    .expect("audit");
            }
            for i in 0..seed.new_audit {
                let at = Utc::now() - Duration::days(i as i64);
                audit
                    .execute(params![
                        tenant,
                        format!("new-audit-{i:05}"),
                        format!("order-{i}"),
                        Option::<String>::None,
                        ts(at)
                    ])
                    .expect("audit");
            }
        }
    }
    tx.commit().expect("commit");
}

/// Sorted `tenant/id` of every row of `table` matching `filter` (an SQL condition).
pub fn keys(conn: &Connection, table: &str, filter: &str) -> BTreeSet<String> {
    let id = if table == "idempotency_keys" {
        "key"
    } else if table == "order_items" {
        "order_id || '#' || line_no"
    } else {
        "id"
    };
    let sql = format!("SELECT tenant_id || '/' || {id} FROM {table} WHERE {filter}");
    let mut statement = conn.prepare(&sql).expect("prepare");
    let rows = statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("query");
    rows.map(|row| row.expect("row")).collect()
}

/// Audit entries, without those the jobs write about their own runs.
pub fn audit_keys(conn: &Connection) -> BTreeSet<String> {
    keys(conn, "audit_log", "actor_id NOT LIKE 'system:%'")
}

/// Every row of the domain tables, as text: what "changed nothing" compares.
pub fn snapshot(conn: &Connection) -> Vec<String> {
    let mut all = Vec::new();
    for table in [
        "notifications",
        "audit_log",
        "customers",
        "orders",
        "order_items",
        "idempotency_keys",
        "job_checkpoints",
        "job_runs",
    ] {
        let columns: Vec<String> = {
            let mut statement = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .expect("columns");
            let rows = statement
                .query_map([], |row| row.get::<_, String>(0))
                .expect("columns");
            rows.map(|c| c.expect("column")).collect()
        };
        let concat = columns
            .iter()
            .map(|c| format!("quote({c})"))
            .collect::<Vec<_>>()
            .join(" || ',' || ");
        let mut statement = conn
            .prepare(&format!("SELECT '{table}:' || {concat} FROM {table}"))
            .expect("snapshot");
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .expect("snapshot");
        all.extend(rows.map(|row| row.expect("row")));
    }
    all.sort();
    all
}

/// The seeded ids expected to remain / to be archived, as `tenant/id`.
pub fn seeded(seed: Seed, kind: &str, count: impl Fn(Seed) -> usize) -> BTreeSet<String> {
    (0..seed.tenants)
        .flat_map(|t| (0..count(seed)).map(move |i| format!("{}/{kind}-{i:05}", tenant(t))))
        .collect()
}

/// Every archived item under `root` (`audit`, `notification-summaries`), verified against its
/// manifest, with the manifest key it came from.
pub async fn archived(archive_dir: &Path, root: &str) -> Vec<(String, serde_json::Value)> {
    use shared::archive::{read_batch, ArchiveStore, FolderArchive};
    let archive = FolderArchive::new(archive_dir);
    let keys = archive.list(&format!("{root}/")).await.expect("list");
    let mut items = Vec::new();
    for key in &keys {
        if key.ends_with(".ndjson.gz") {
            let manifest = key.replace(".ndjson.gz", ".manifest.json");
            assert!(keys.contains(&manifest), "{key} has no manifest");
        }
    }
    for key in keys.iter().filter(|key| key.ends_with(".manifest.json")) {
        let (_, batch) = read_batch(&archive, key)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        items.extend(batch.into_iter().map(|item| (key.clone(), item)));
    }
    items
}

/// Archived audit ids as `tenant/id`, in archive order (duplicates kept, to be detected).
pub async fn archived_audit_ids(archive_dir: &Path) -> Vec<String> {
    archived(archive_dir, "audit")
        .await
        .into_iter()
        .map(|(_, item)| {
            format!(
                "{}/{}",
                item["tenantId"].as_str().unwrap_or("?"),
                item["id"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// Files in the archive folder that are not archive objects (leftovers).
pub fn stray_files(archive_dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !(name.ends_with(".ndjson.gz") || name.ends_with(".manifest.json")) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(archive_dir, &mut found);
    found
}

/// Seeds, per tenant, `inactive` customers with no activity for 8 years and `active` ones
/// active yesterday (ids `inactive-{i}` / `active-{i}`, emails `person-{i}@example.com`).
pub fn seed_customers(conn: &Connection, tenants: usize, inactive: usize, active: usize) {
    for t in 0..tenants {
        for (kind, count, at) in [
            ("inactive", inactive, days_ago(8 * 366)),
            ("active", active, days_ago(1)),
        ] {
            for i in 0..count {
                conn.execute(
                    "INSERT INTO customers (tenant_id, id, name, email, phone, address, preferences, status, created_at, updated_at, last_activity_at, etag)
                     VALUES (?1, ?2, ?3, ?4, '+15550100', NULL, '{\"inApp\":true,\"email\":true,\"sms\":false}', 'active', ?5, ?5, ?5, 'e')",
                    params![tenant(t), format!("{kind}-{i}"), format!("Person {kind} {i}"), format!("person-{kind}-{i}@example.com"), ts(at)],
                )
                .expect("customer");
            }
        }
    }
}

/// `tenant/id status email` of every customer.
pub fn customers(conn: &Connection) -> BTreeSet<String> {
    let mut statement = conn
        .prepare("SELECT tenant_id || '/' || id || ' ' || status || ' ' || email FROM customers")
        .expect("prepare");
    let rows = statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("query");
    rows.map(|row| row.expect("row")).collect()
}
