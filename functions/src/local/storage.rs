//! The local runtime's own storage: the embedded queue's messages (and the message ids its
//! duplicate detection remembers), the timers' status and the change feed's checkpoints.
//!
//! Its tables live in the same SQLite file as the app's data (`DATA_DIR`, [`Db`]), so one file
//! holds a laptop's whole state, but they are the local runtime's, with their own migrations
//! recorded in their own table (`local_runtime_migrations`; the store's are in
//! `schema_migrations`). They are created on first use by each handle ([`LocalStorage::db`]).
//! Their first migration is what the store's migration 1 used to create (`IF NOT EXISTS`, so a
//! database created by an earlier build keeps its tables and rows as they are).
//!
//! An erasure deletes the queued messages about its customer through this storage
//! ([`LocalStorage`] is the [`QueuedMessageScrubber`] local mode installs).

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use shared::domain::masking::{record_action, Entity, Masker, RecordAction};
use shared::erasure::QueuedMessageScrubber;
use shared::store::sqlite::{with_secure_delete, Db};
use shared::store::{StoreError, StoreResult};
use tokio::sync::OnceCell;

/// The local runtime's migrations, applied in order, each once, each in its own transaction.
/// Never edit a released migration: add a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "local runtime: durable queue and timer state",
        r#"
    CREATE TABLE IF NOT EXISTS local_queue_messages (
        sequence_number        INTEGER PRIMARY KEY AUTOINCREMENT,
        entity                 TEXT NOT NULL,
        message_id             TEXT NOT NULL,
        body                   TEXT NOT NULL,
        content_type           TEXT,
        correlation_id         TEXT,
        application_properties TEXT NOT NULL DEFAULT '{}',
        enqueued_at            TEXT NOT NULL,
        delivery_count         INTEGER NOT NULL DEFAULT 0,
        visible_at             TEXT NOT NULL,
        state                  TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'dead')),
        last_error             TEXT,
        dead_letter_reason     TEXT,
        dead_lettered_at       TEXT
    );
    CREATE INDEX IF NOT EXISTS local_queue_ready ON local_queue_messages (entity, state, visible_at, sequence_number);
    CREATE TABLE IF NOT EXISTS local_timer_status (
        function_name TEXT PRIMARY KEY,
        last          TEXT NOT NULL,
        next          TEXT NOT NULL,
        last_updated  TEXT NOT NULL
    );
    "#,
    ),
    (
        2,
        "local runtime: duplicate detection by MessageId, change-feed checkpoints",
        r#"
    CREATE TABLE IF NOT EXISTS local_queue_message_ids (
        target      TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        enqueued_at TEXT NOT NULL,
        PRIMARY KEY (target, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS local_queue_message_ids_by_time ON local_queue_message_ids (enqueued_at);
    CREATE TABLE IF NOT EXISTS local_change_feed_checkpoints (
        processor  TEXT PRIMARY KEY,
        checkpoint TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    ),
];

/// The local runtime's tables in the app's database; cheap to clone.
#[derive(Clone)]
pub struct LocalStorage {
    db: Db,
    /// Set once this handle has applied the migrations.
    migrated: Arc<OnceCell<()>>,
}

/// `erasure` that also scrubs the local queue kept in `db` (what `handler local` and
/// `handler jobs run` erase with).
pub fn scrubbing_local_queue(
    erasure: shared::erasure::ErasureContext,
    db: &Db,
) -> shared::erasure::ErasureContext {
    erasure.with_queued_messages(std::sync::Arc::new(LocalStorage::new(db.clone())))
}

impl LocalStorage {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            migrated: Arc::new(OnceCell::new()),
        }
    }

    /// The database, with the local runtime's tables created and migrated.
    pub async fn db(&self) -> StoreResult<&Db> {
        self.migrated
            .get_or_try_init(|| async {
                let path = self.db.path().display().to_string();
                self.db.write(move |conn| migrate(conn, &path)).await?
            })
            .await?;
        Ok(&self.db)
    }
}

/// Applies the local runtime's pending migrations.
fn migrate(conn: &mut Connection, path: &str) -> rusqlite::Result<StoreResult<()>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS local_runtime_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM local_runtime_migrations",
        [],
        |row| row.get(0),
    )?;
    let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if current > known {
        return Ok(Err(StoreError::Unavailable {
            backend: "sqlite",
            reason: format!("the local runtime's tables in {path} have schema version {current}, newer than this build knows ({known}); use a newer handler"),
        }));
    }
    for (version, name, sql) in MIGRATIONS
        .iter()
        .filter(|(version, _, _)| *version > current)
    {
        let transaction = conn.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.execute(
            "INSERT INTO local_runtime_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, chrono::Utc::now().to_rfc3339()],
        )?;
        transaction.commit()?;
        tracing::info!(version, name, "applied local runtime migration");
    }
    Ok(Ok(()))
}

impl LocalStorage {
    /// The change-feed processor's checkpoint: the position of the last outbox record it handed
    /// over successfully.
    pub async fn load_checkpoint(&self, processor: &str) -> StoreResult<Option<String>> {
        let processor = processor.to_owned();
        self.db()
            .await?
            .write(move |conn| {
                conn.query_row(
                    "SELECT checkpoint FROM local_change_feed_checkpoints WHERE processor = ?1",
                    params![processor],
                    |row| row.get(0),
                )
                .optional()
            })
            .await
    }

    pub async fn save_checkpoint(&self, processor: &str, checkpoint: &str) -> StoreResult<()> {
        let (processor, checkpoint) = (processor.to_owned(), checkpoint.to_owned());
        self.db()
            .await?
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO local_change_feed_checkpoints (processor, checkpoint, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (processor) DO UPDATE SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at",
                    params![processor, checkpoint, chrono::Utc::now().to_rfc3339()],
                )?;
                Ok(())
            })
            .await
    }
}

#[async_trait::async_trait]
impl QueuedMessageScrubber for LocalStorage {
    /// Local queue messages (any entity, active or dead-lettered) whose JSON body is about this
    /// customer of this tenant, except the erasure request being processed (its delivery
    /// completes normally). One statement, with full secure delete: the local queue is small.
    async fn scrub(&self, masker: &Masker, request_id: &str) -> StoreResult<u64> {
        debug_assert_eq!(record_action(Entity::QueuedMessage), RecordAction::Delete);
        let (tenant, customer, request_id) = (
            masker.tenant().to_owned(),
            masker.customer_id().to_owned(),
            request_id.to_owned(),
        );
        let deleted = self
            .db()
            .await?
            .write(move |conn| {
                with_secure_delete(conn, |conn| {
                    conn.execute(
                        "DELETE FROM local_queue_messages
                          WHERE CASE WHEN json_valid(body) AND json_type(body) = 'object'
                                     THEN json_extract(body, '$.tenantId') = ?1
                                      AND json_extract(body, '$.customerId') = ?2
                                      AND COALESCE(json_extract(body, '$.requestId'), '') <> ?3
                                     ELSE 0 END",
                        params![tenant, customer, request_id],
                    )
                })
            })
            .await?;
        Ok(deleted as u64)
    }
}
