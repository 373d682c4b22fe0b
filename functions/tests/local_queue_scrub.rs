//! An erasure scrubs local mode's embedded queue of messages about the customer, through the
//! scrubber local mode installs (`function_app::local::storage::LocalStorage`), over either store:
//! SQLite (the queue in the store's own database) and Cosmos DB (the in-memory emulator; the
//! queue in the local runtime's SQLite database). Moved here from the storage conformance
//! suite when the local queue's tables became the local runtime's own.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use serde_json::{json, Value};
use shared::config::{Settings, SettingsSource};
use shared::domain::audit::AuditEntry;
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::masking::Masker;
use shared::domain::tenant::TenantId;
use shared::erasure::{erase_customer, ErasureContext, ErasureOutcome};
use shared::store::cosmos::CosmosOptions;
use shared::store::sqlite::Db;
use shared::store::{ErasureStep, Store};

use function_app::local::storage::LocalStorage;

/// The records the store suites use (shared/tests/fixtures).
#[path = "../../shared/tests/fixtures/records.rs"]
mod records;
use records::customer;

/// A store under test, the database holding the embedded queue, and their folder.
struct Subject {
    store: Arc<dyn Store>,
    queue: Db,
    dir: tempfile::TempDir,
}

async fn sqlite() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("app.db")).unwrap();
    Subject {
        store: Arc::new(db.clone()),
        queue: db,
        dir,
    }
}

async fn cosmos() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let queue = Db::open(&dir.path().join("local.db")).unwrap();
    let cosmos = shared::store::cosmos::in_memory(CosmosOptions::for_emulator(), vec![])
        .await
        .unwrap();
    Subject {
        store: Arc::new(cosmos.store),
        queue,
        dir,
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn settings(dir: &Path) -> Settings {
    Settings::load(&SettingsSource::from_pairs([
        ("DATA_DIR".to_owned(), dir.display().to_string()),
        (
            "GDPR_PSEUDONYM_KEY".to_owned(),
            "a-test-key-that-is-long-enough-0001".to_owned(),
        ),
    ]))
    .unwrap()
}

fn erasure_record(id: &str, tenant: &str, customer: &str) -> ErasureRecord {
    let now = shared::domain::now();
    ErasureRecord {
        id: id.into(),
        tenant_id: tenant.into(),
        customer_id: customer.into(),
        requested_by: "actor-1".into(),
        status: ErasureStatus::Accepted,
        requested_at: now,
        updated_at: now,
        queued_at: None,
        report: None,
    }
}

/// Enqueues a message on the embedded queue (as the local runtime's queue does).
async fn enqueue(queue: &Db, entity: &str, body: Value) {
    let text = body.to_string();
    let entity = entity.to_owned();
    LocalStorage::new(queue.clone())
        .db()
        .await
        .unwrap()
        .write(move |conn| {
            conn.execute(
                "INSERT INTO local_queue_messages (entity, message_id, body, enqueued_at, visible_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                rusqlite::params![entity, uuid::Uuid::new_v4().to_string(), text, Utc::now().to_rfc3339()],
            )
        })
        .await
        .unwrap();
}

async fn queued_bodies(queue: &Db) -> Vec<Value> {
    queue
        .read(|conn| {
            let mut statement =
                conn.prepare("SELECT body FROM local_queue_messages ORDER BY sequence_number")?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text)))
        .collect()
}

async fn an_erasure_scrubs_the_embedded_queue_of_messages_about_the_customer(subject: Subject) {
    let t = tenant("t1");
    let store = subject.store.as_ref();
    for id in ["c-1", "c-2"] {
        let audit = AuditEntry::now("t1", "actor-1", "customer.create", "test", id, "corr-1");
        store
            .create_customer(&t, customer(id), audit)
            .await
            .unwrap();
    }
    let request = json!({ "requestId": "r-1", "tenantId": "t1", "customerId": "c-1", "requestedBy": "actor-1", "requestedAt": "2026-11-21T02:00:00Z" });
    enqueue(&subject.queue, "gdpr-requests", request.clone()).await;
    enqueue(&subject.queue, "order-events/notifications", json!({ "eventId": "e-1", "eventType": "created", "tenantId": "t1", "orderId": "o-1", "customerId": "c-1", "occurredAt": "2026-11-21T02:00:00Z" })).await;
    enqueue(&subject.queue, "order-events/notifications", json!({ "eventId": "e-2", "eventType": "created", "tenantId": "t1", "orderId": "o-2", "customerId": "c-2", "occurredAt": "2026-11-21T02:00:00Z" })).await;
    enqueue(&subject.queue, "order-events/notifications", json!({ "eventId": "e-3", "eventType": "created", "tenantId": "t2", "orderId": "o-3", "customerId": "c-1", "occurredAt": "2026-11-21T02:00:00Z" })).await;
    let erasure = ErasureContext::new(&settings(subject.dir.path()))
        .with_queued_messages(Arc::new(LocalStorage::new(subject.queue.clone())));
    let outcome = erase_customer(store, &erasure, &t, erasure_record("r-1", "t1", "c-1"), "c")
        .await
        .unwrap();
    let ErasureOutcome::Completed(record) = outcome else {
        panic!("expected the erasure to complete, got {outcome:?}");
    };
    let report = record.report.unwrap();
    assert_eq!(
        report["counts"][store.backend()]["queuedMessages"],
        1,
        "the one message about this customer of this tenant"
    );
    let left: Vec<Value> = queued_bodies(&subject.queue).await;
    assert_eq!(left.len(), 3);
    assert_eq!(
        left[0], request,
        "the request being processed stays (its delivery completes normally)"
    );
    assert!(left.iter().all(|body| body["eventId"] != "e-1"));
    // Run again (a redelivery after the queue step): nothing more, nothing counted twice.
    let masker = Masker::new(erasure.pseudonym_key().unwrap(), "t1", "c-1", &[]);
    let again = store
        .erase_batch(&t, "r-1", ErasureStep::QueuedMessages, &masker, 100)
        .await
        .unwrap();
    assert_eq!(again.counts()["queuedMessages"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_erasure_scrubs_the_embedded_queue_of_messages_about_the_customer() {
    an_erasure_scrubs_the_embedded_queue_of_messages_about_the_customer(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosmos_an_erasure_scrubs_the_embedded_queue_of_messages_about_the_customer() {
    an_erasure_scrubs_the_embedded_queue_of_messages_about_the_customer(cosmos().await).await;
}
