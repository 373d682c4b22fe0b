//! The embedded SQLite store: one database file in `DATA_DIR`, WAL mode, migrated at start-up.
//!
//! [`Db`] owns one writer connection and a few reader connections (WAL lets readers run while
//! the writer writes; a reader keeps its snapshot between reads while nothing changed, see
//! [`snapshot`]); writes run on tokio's blocking pool so they never stall the async runtime. The
//! same file also holds the local runtime's queue and timer tables, which the local runtime
//! creates and migrates itself (`functions/src/local/storage.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{HealthCheck, StoreError};

mod audit;
mod audit_batch;
mod consents;
mod customers;
mod dispatch;
mod erasure;
mod erp;
mod jobs;
mod notifications;
mod orders;
mod outbox;
mod payments;
mod preferences;
mod products;
mod security;
mod shipments;
mod snapshot;
mod support;

pub use erasure::with_secure_delete;
pub use outbox::FeedEntry;
use snapshot::ReaderConnection;

/// Schema versions, applied in order, each once, each in its own transaction.
/// Never edit a released migration: add a new one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    // Version 1 created the local runtime's queue and timer tables; they are the local
    // runtime's now (`functions/src/local/storage.rs`, its own migrations, `IF NOT EXISTS`), so
    // the store's version 1 does nothing: databases of every age agree on the numbering.
    (1, "local runtime tables (now the local runtime's own)", ""),
    (
        2,
        "domain: customers, products, orders, notifications, audit, idempotency, erasure requests",
        include_str!("migrations/0002_domain.sql"),
    ),
    (
        3,
        "events: erasure progress, processed events, erasure lookup indexes",
        include_str!("migrations/0003_events.sql"),
    ),
    (
        4,
        "jobs: leases, checkpoints, run reports, retention indexes",
        include_str!("migrations/0004_jobs.sql"),
    ),
    (
        5,
        "outbox: messages written with their change; erasure requests' queued time",
        include_str!("migrations/0005_outbox.sql"),
    ),
    (
        6,
        "payments: payments with their refunds, applied webhook events",
        include_str!("migrations/0006_payments.sql"),
    ),
    (
        7,
        "consents: every grant and withdrawal per customer and purpose",
        include_str!("migrations/0007_consents.sql"),
    ),
    (
        8,
        "security: the role of an employee's read in the audit trail; security events",
        include_str!("migrations/0008_security.sql"),
    ),
    (
        9,
        "erp: product SKUs, the ERP's stock on hand, units reserved by open orders",
        include_str!("migrations/0009_erp.sql"),
    ),
    (
        10,
        "shipments: one per order, its label, tracking number and tracking status",
        include_str!("migrations/0010_shipments.sql"),
    ),
    (
        11,
        "notification preferences: per customer, event type and channel",
        include_str!("migrations/0011_preferences.sql"),
    ),
    (
        12,
        "outbox: commit numbers without the AUTOINCREMENT counter (a floor table instead)",
        include_str!("migrations/0012_outbox_floor.sql"),
    ),
];

/// How many reader connections a database keeps.
const READERS: usize = 4;

/// Compiled statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// A handle on the SQLite database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<ReaderConnection>>,
    next_reader: AtomicUsize,
    /// Writes of this process started and not finished; readers keep no snapshot meanwhile, so
    /// the checkpoint at the end of a write is not held back by reads made during it.
    writes_in_progress: AtomicUsize,
    /// How long outbox records live unacknowledged (`OUTBOX_TTL_SECONDS`).
    outbox_ttl_seconds: AtomicU64,
    /// Audit entries waiting to be written together ([`audit_batch`]).
    audit_queue: audit_batch::AuditQueue,
}

impl DbInner {
    /// Lets go of the snapshots idle readers hold, so the next checkpoint is not held back.
    fn release_idle_snapshots(&self, release: fn(&mut ReaderConnection)) {
        for reader in &self.readers {
            if let Some(mut reader) = try_lock(reader) {
                release(&mut reader);
            }
        }
    }

    /// Whether a read may keep its snapshot afterwards (no write of this process is under way).
    fn reads_may_keep_snapshots(&self) -> bool {
        self.writes_in_progress.load(Ordering::Acquire) == 0
    }
}

/// Counts one write in [`DbInner::writes_in_progress`] for as long as it lives (panics too).
struct WriteInProgress<'a>(&'a AtomicUsize);

impl<'a> WriteInProgress<'a> {
    fn start(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }
}

impl Drop for WriteInProgress<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Opening or migrating the database failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the SQLite database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("migration {version} ({name}) failed on {path}: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the database {path} has schema version {found}, newer than this build knows ({known}); use a newer handler")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let display = path.display().to_string();
        let open_error = |source| OpenError::Open {
            path: display.clone(),
            source,
        };
        let mut writer = open_connection(path, false).map_err(open_error)?;
        migrate(&mut writer, &display)?;
        let readers = (0..READERS)
            .map(|_| {
                open_connection(path, true)
                    .map(|connection| Mutex::new(ReaderConnection::new(connection)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(open_error)?;
        let inner = Arc::new(DbInner {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            writes_in_progress: AtomicUsize::new(0),
            outbox_ttl_seconds: AtomicU64::new(crate::outbox::DEFAULT_TTL.as_secs()),
            audit_queue: audit_batch::AuditQueue::default(),
        });
        if !start_snapshot_sweeper(Arc::downgrade(&inner)) {
            // Without the sweeper an idle reader would hold its snapshot indefinitely.
            for reader in &inner.readers {
                lock(reader).disable_snapshots();
            }
        }
        Ok(Self { inner })
    }

    /// Whether reader connections keep their snapshots between reads (see [`snapshot`]).
    #[cfg(test)]
    fn keeps_read_snapshots(&self) -> bool {
        self.inner
            .readers
            .iter()
            .all(|reader| lock(reader).keeps_snapshots())
    }

    /// Sets how long outbox records written from now on live unacknowledged.
    pub fn set_outbox_ttl(&self, ttl: std::time::Duration) {
        self.inner
            .outbox_ttl_seconds
            .store(ttl.as_secs(), Ordering::Relaxed);
    }

    fn outbox_ttl(&self) -> chrono::Duration {
        let seconds = self.inner.outbox_ttl_seconds.load(Ordering::Relaxed);
        chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 1000))
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` on the writer connection, off the async runtime.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            let _counted = WriteInProgress::start(&inner.writes_in_progress);
            let mut connection = lock(&inner.writer);
            inner.release_idle_snapshots(ReaderConnection::release);
            work(&mut connection)
        })
        .await
    }

    /// Runs `work` on a reader connection (read-only), off the async runtime.
    ///
    /// Reads are meant to be bounded (a point read, a page of at most a few hundred rows): in WAL
    /// mode they never wait for the writer, so a free reader connection runs `work` right here on
    /// the async worker, sparing the hand-off to the blocking pool (a thread switch per call,
    /// which dominated the API's read path). When every reader is busy, the call waits on the
    /// blocking pool instead of stalling the runtime. Long scans use [`Db::read_long`].
    pub async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let readers = &self.inner.readers;
        let start = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        for offset in 0..readers.len() {
            if let Some(mut reader) = try_lock(&readers[(start + offset) % readers.len()]) {
                return reader
                    .run(self.inner.reads_may_keep_snapshots(), work)
                    .map_err(sqlite_error);
            }
        }
        self.read_long(work).await
    }

    /// Runs `work` on a reader connection on the blocking pool: for reads that may take long.
    pub(crate) async fn read_long<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        run_blocking(move || {
            let index = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            lock(&inner.readers[index]).run(inner.reads_may_keep_snapshots(), work)
        })
        .await
    }
}

/// Locks `mutex`, taking over a poisoned one: a connection whose user panicked is still usable
/// (a `Transaction` rolls back when dropped; a reader's open snapshot is ended by its next use or
/// by the sweeper).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`lock`] without waiting: `None` while another thread holds `mutex`.
fn try_lock<T>(mutex: &Mutex<T>) -> Option<std::sync::MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Starts the thread that lets go of snapshots idle readers hold (see [`snapshot`]); it stops
/// once the database is dropped. `false` when no thread could be started.
fn start_snapshot_sweeper(inner: Weak<DbInner>) -> bool {
    std::thread::Builder::new()
        .name("sqlite-snapshots".to_owned())
        .spawn(move || loop {
            std::thread::sleep(snapshot::SWEEP_EVERY);
            let Some(inner) = inner.upgrade() else { return };
            inner.release_idle_snapshots(ReaderConnection::release_if_stale);
        })
        .is_ok()
}

async fn run_blocking<T, F>(work: F) -> Result<T, StoreError>
where
    F: FnOnce() -> rusqlite::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(sqlite_error),
        Err(join_error) => Err(StoreError::Unavailable {
            backend: "sqlite",
            reason: format!("the database task stopped: {join_error}"),
        }),
    }
}

/// Maps a SQLite error to the store's terms.
pub(crate) fn sqlite_error(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        rusqlite::Error::SqliteFailure(code, _)
            if code.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(error.to_string())
        }
        _ => StoreError::Unavailable {
            backend: "sqlite",
            reason: error.to_string(),
        },
    }
}

fn open_connection(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    };
    let mut connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    // Statements are compiled once per connection and kept (`prepare_cached`): the app has
    // more distinct statements than rusqlite's default cache of 16, and a create-order alone
    // runs eleven, so a smaller cache would compile them again on every request.
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if !read_only {
        // Writer transactions take the write lock when they begin. A deferred one that reads
        // first and then writes gets SQLITE_BUSY at once, without the busy timeout, when
        // another process wrote in between (it cannot upgrade a stale read snapshot).
        connection.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        // auto_vacuum must be chosen before the first table exists; afterwards it changes
        // nothing, though SQLite still runs it as a (short) write transaction.
        connection.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
    }
    // Freed space inside pages is zeroed (no extra I/O), so an old version of an updated row
    // does not linger in the file; erasure turns on full secure delete for its own writes.
    connection.pragma_update(None, "secure_delete", "FAST")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(connection)
}

fn migrate(connection: &mut Connection, path: &str) -> Result<(), OpenError> {
    migrate_with(connection, path, MIGRATIONS)
}

/// Applies every migration of `migrations` not recorded yet, in version order. Versions are
/// numbered ahead of time (work in parallel takes numbers before the ones below it land), so a
/// database may hold a higher version while a lower one is still missing: each is applied
/// by whether it is recorded, not by the highest version recorded.
fn migrate_with(
    connection: &mut Connection,
    path: &str,
    migrations: &[(i64, &'static str, &str)],
) -> Result<(), OpenError> {
    let failed = |version, name, source| OpenError::Migration {
        version,
        name,
        path: path.to_owned(),
        source,
    };
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .map_err(|source| failed(0, "schema_migrations", source))?;
    let applied =
        applied_versions(connection).map_err(|source| failed(0, "schema_migrations", source))?;
    let current = applied.iter().copied().max().unwrap_or(0);
    let known = migrations.last().map_or(0, |(version, _, _)| *version);
    if current > known {
        return Err(OpenError::TooNew {
            path: path.to_owned(),
            found: current,
            known,
        });
    }
    for (version, name, sql) in migrations
        .iter()
        .filter(|(version, _, _)| !applied.contains(version))
    {
        let apply = |connection: &mut Connection| -> rusqlite::Result<()> {
            let transaction = connection.transaction()?;
            transaction.execute_batch(sql)?;
            transaction.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![version, name, chrono::Utc::now().to_rfc3339()],
            )?;
            transaction.commit()
        };
        apply(connection).map_err(|source| failed(*version, name, source))?;
        tracing::info!(version, name, "applied database migration");
    }
    Ok(())
}

/// The versions recorded in `schema_migrations`.
fn applied_versions(connection: &Connection) -> rusqlite::Result<std::collections::BTreeSet<i64>> {
    let mut statement = connection.prepare("SELECT version FROM schema_migrations")?;
    let versions = statement.query_map([], |row| row.get(0))?;
    versions.collect()
}

#[async_trait::async_trait]
impl HealthCheck for Db {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |row| {
                row.get::<_, i64>(0)
            })
        })
        .await?;
        Ok(())
    }
}

/// What only the tests ask of the database.
#[cfg(test)]
impl Db {
    /// The schema version the database is at.
    async fn schema_version(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |row| row.get(0),
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table for the tests to write to, shaped like the local runtime's timer table (which
    /// these tests used before it moved to the local runtime's own migrations).
    const SCRATCH_TABLE: &str = "CREATE TABLE local_timer_status (function_name TEXT PRIMARY KEY, last TEXT NOT NULL, next TEXT NOT NULL, last_updated TEXT NOT NULL)";

    #[tokio::test]
    async fn opens_migrates_and_reopens_keeping_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("app.db");
        let db = Db::open(&path).unwrap();
        let latest = MIGRATIONS.last().map(|(version, _, _)| *version);
        assert_eq!(Some(db.schema_version().await.unwrap()), latest);
        db.write(|conn| {
            conn.execute_batch(SCRATCH_TABLE)?;
            conn.execute(
                "INSERT INTO local_timer_status VALUES ('T', 'a', 'b', 'c')",
                [],
            )
        })
        .await
        .unwrap();
        drop(db);
        let reopened = Db::open(&path).unwrap();
        let next: String = reopened
            .read(|conn| {
                conn.query_row(
                    "SELECT next FROM local_timer_status WHERE function_name = 'T'",
                    [],
                    |r| r.get(0),
                )
            })
            .await
            .unwrap();
        assert_eq!(next, "b");
        reopened.ping().await.unwrap();
    }

    #[test]
    fn a_migration_numbered_below_one_already_applied_is_still_applied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gap.db");
        let mut connection = Connection::open(&path).unwrap();
        let early: &[(i64, &str, &str)] = &[
            (1, "one", "CREATE TABLE one (x INTEGER)"),
            (3, "three", "CREATE TABLE three (x INTEGER)"),
        ];
        migrate_with(&mut connection, "gap.db", early).unwrap();
        let merged: &[(i64, &str, &str)] = &[
            (1, "one", "CREATE TABLE one (x INTEGER)"),
            (2, "two", "CREATE TABLE two (x INTEGER)"),
            (3, "three", "CREATE TABLE three (x INTEGER)"),
        ];
        migrate_with(&mut connection, "gap.db", merged).unwrap();
        connection
            .execute("INSERT INTO two (x) VALUES (2)", [])
            .unwrap();
        let applied = applied_versions(&connection).unwrap();
        assert_eq!(applied.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
        migrate_with(&mut connection, "gap.db", merged).unwrap();
        let too_new = migrate_with(&mut connection, "gap.db", &merged[..2]);
        assert!(matches!(
            too_new,
            Err(OpenError::TooNew {
                found: 3,
                known: 2,
                ..
            })
        ));
    }

    #[test]
    fn the_outbox_keeps_its_rows_and_commit_numbers_across_the_floor_migration() {
        let dir = tempfile::tempdir().unwrap();
        let mut connection = Connection::open(dir.path().join("old.db")).unwrap();
        let before_floor: Vec<_> = MIGRATIONS
            .iter()
            .copied()
            .filter(|(version, _, _)| *version < 12)
            .collect();
        migrate_with(&mut connection, "old.db", &before_floor).unwrap();
        connection
            .execute_batch(
                "INSERT INTO outbox (tenant_id, scope, message, created_at, expires_at)
                 VALUES ('t', 's', '{}', 'a', 'b'), ('t', 's', '{}', 'a', 'b'), ('t', 's', '{}', 'a', 'b');
                 DELETE FROM outbox WHERE seq = 3;",
            )
            .unwrap();
        migrate_with(&mut connection, "old.db", MIGRATIONS).unwrap();
        let message = crate::outbox::OutboxMessage {
            message_id: "m-4".to_owned(),
            destination: "order-events".to_owned(),
            body: "{}".to_owned(),
            content_type: "application/json".to_owned(),
            correlation_id: None,
            properties: std::collections::BTreeMap::new(),
            created_at: chrono::Utc::now(),
        };
        outbox::insert_outbox(&connection, chrono::Duration::days(7), "t", "s", &message).unwrap();
        let seqs: Vec<i64> = connection
            .prepare("SELECT seq FROM outbox ORDER BY seq")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(seqs, [1, 2, 4], "3 was given before: never again");
    }

    #[tokio::test]
    async fn uses_wal_and_incremental_vacuum() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("app.db")).unwrap();
        let (journal, vacuum): (String, i64) = db
            .write(|conn| {
                Ok((
                    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                    conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(vacuum, 2, "2 = incremental");
    }

    /// The database with a row committed to the WAL and not checkpointed, and a read that holds
    /// a snapshot on it.
    async fn wal_frames_and_a_held_snapshot() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("app.db")).unwrap();
        assert!(db.keeps_read_snapshots());
        db.write(|conn| {
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
            conn.execute_batch(SCRATCH_TABLE)?;
            conn.execute(
                "INSERT INTO local_timer_status VALUES ('T', 'a', 'b', 'c')",
                [],
            )
        })
        .await
        .unwrap();
        let rows: i64 = db
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM local_timer_status", [], |r| r.get(0))
            })
            .await
            .unwrap();
        assert_eq!(rows, 1);
        (dir, db)
    }

    fn checkpoint_busy(conn: &Connection) -> rusqlite::Result<i64> {
        conn.busy_timeout(Duration::ZERO)?;
        let busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0));
        conn.busy_timeout(Duration::from_secs(5))?;
        busy
    }

    #[tokio::test]
    async fn a_write_first_lets_go_of_idle_read_snapshots() {
        let (_dir, db) = wal_frames_and_a_held_snapshot().await;
        let busy = db.write(|conn| checkpoint_busy(conn)).await.unwrap();
        assert_eq!(
            busy, 0,
            "the checkpoint was not held back by a reader's snapshot"
        );
    }

    #[tokio::test]
    async fn idle_read_snapshots_are_let_go_by_the_sweeper() {
        let (dir, db) = wal_frames_and_a_held_snapshot().await;
        let other_process = Connection::open(dir.path().join("app.db")).unwrap();
        let started = std::time::Instant::now();
        while checkpoint_busy(&other_process).unwrap() != 0 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "idle snapshots still held after 5 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(db);
    }

    #[tokio::test]
    async fn a_snapshot_left_open_by_a_panicking_read_is_let_go() {
        let (dir, db) = wal_frames_and_a_held_snapshot().await;
        let reader = db.clone();
        let panicked = tokio::spawn(async move {
            reader
                .read(|conn| -> rusqlite::Result<()> {
                    conn.query_row("SELECT count(*) FROM local_timer_status", [], |r| {
                        r.get::<_, i64>(0)
                    })?;
                    panic!("a bug in a read closure")
                })
                .await
        });
        assert!(panicked.await.unwrap_err().is_panic());
        let other_process = Connection::open(dir.path().join("app.db")).unwrap();
        let started = std::time::Instant::now();
        while checkpoint_busy(&other_process).unwrap() != 0 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the panicked reader's snapshot is still held after 5 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let rows: i64 = db
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM local_timer_status", [], |r| r.get(0))
            })
            .await
            .unwrap();
        assert_eq!(rows, 1, "the reader is usable again");
    }

    #[tokio::test]
    async fn reads_during_writes_do_not_keep_the_wal_from_starting_over() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("app.db")).unwrap();
        db.write(|conn| {
            conn.execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)")
        })
        .await
        .unwrap();
        let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let reader = tokio::spawn({
            let (db, reading) = (db.clone(), Arc::clone(&reading));
            async move {
                while reading.load(Ordering::Relaxed) {
                    db.read(|conn| {
                        conn.query_row("SELECT count(*) FROM blobs", [], |r| r.get::<_, i64>(0))
                    })
                    .await
                    .unwrap();
                    // Reads with gaps: back-to-back reads starve checkpoints with or without
                    // kept snapshots (SQLite's own checkpoint starvation).
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        });
        let wal = dir.path().join("app.db-wal");
        let mut largest_wal = 0;
        for _ in 0..3000 {
            db.write(|conn| conn.execute("INSERT INTO blobs (data) VALUES (zeroblob(3000))", []))
                .await
                .unwrap();
            largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |meta| meta.len()));
        }
        reading.store(false, Ordering::Relaxed);
        reader.await.unwrap();
        // 3000 commits of a page or more each: without checkpoints letting the WAL start over it
        // would pass 12 MB; with them it stays near 1000 pages (about 4 MB).
        assert!(
            largest_wal < 8 * 1024 * 1024,
            "the WAL grew to {largest_wal} bytes"
        );
    }

    #[tokio::test]
    async fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let db = Db::open(&path).unwrap();
        db.write(|conn| {
            conn.execute(
                "INSERT INTO schema_migrations VALUES (999, 'future', 'now')",
                [],
            )
        })
        .await
        .unwrap();
        drop(db);
        let error = Db::open(&path).err().unwrap().to_string();
        assert!(error.contains("newer than this build"), "{error}");
    }

    #[tokio::test]
    async fn an_unwritable_location_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let error = Db::open(&blocker.join("app.db")).err().unwrap().to_string();
        assert!(
            error.contains("cannot create the data directory"),
            "{error}"
        );
    }
}
