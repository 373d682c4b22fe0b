//! Reader connections that keep their read snapshot open between reads while nothing changed.
//!
//! In WAL mode every read transaction locks and unlocks a read mark in the `-shm` file, two
//! `fcntl` system calls that cost about a tenth of the CPU of a point read served over HTTP
//! (`BENCHMARKS.md`). A [`ReaderConnection`] therefore leaves its read transaction open after a
//! read and serves the next read from it, but only while the WAL-index header in shared memory is
//! exactly the one read just before that snapshot began. Every commit, by any connection of any
//! process, rewrites that header (frame count, change counter, checksums) before the commit
//! returns, so an unchanged header means nothing newer exists and the held snapshot reads what a
//! fresh transaction would. When the header differs, or the snapshot is older than
//! [`MAX_HELD`], the transaction ends and a new one begins: reads stay as fresh as before.
//!
//! An open read transaction keeps checkpoints from copying frames past it, so snapshots are let
//! go soon: after [`MAX_HELD`] at the next read, by a sweeper thread when the connection sits
//! idle (see `Db::open`), and when this process writes (none is kept while a write is under way,
//! and idle ones are let go when it starts). And none is kept once the WAL holds
//! [`KEEP_BELOW_FRAMES`] frames: that is where SQLite's automatic checkpoint (every 1000 pages by
//! default) starts, in any process, and it must be able to copy everything and let the WAL start
//! over, or the WAL would grow without end.
//!
//! The header is read through SQLite's own mapping of the `-shm` file (the format is documented
//! at <https://sqlite.org/walformat.html>), found with `SQLITE_FCNTL_FILE_POINTER` and the VFS
//! method `xShmMap`. Mapping the file through a second descriptor would be simpler but is wrong:
//! closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
//! included. Whenever the mapping cannot be found or does not look like a WAL-index header, the
//! connection keeps nothing open: each read is its own transaction, as without this module.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use rusqlite::{ffi, Connection};

/// How long a snapshot may serve reads before the next read starts a fresh one.
pub(super) const MAX_HELD: Duration = Duration::from_millis(10);

/// How often the sweeper lets go of snapshots that idle connections still hold.
pub(super) const SWEEP_EVERY: Duration = Duration::from_millis(50);

/// Snapshots are kept only while the WAL holds fewer frames than this (SQLite's default
/// `wal_autocheckpoint`).
pub(super) const KEEP_BELOW_FRAMES: u32 = 1000;

/// The word of the WAL-index header holding `mxFrame`, the number of valid frames in the WAL.
const MX_FRAME_WORD: usize = 4;

/// The WAL-index header: two copies of 48 bytes at the start of the `-shm` file.
const HEADER_WORDS: usize = 24;

/// The version number SQLite writes as the first field of a WAL-index header (3.7.0 format).
const WAL_INDEX_VERSION: u32 = 3_007_000;

type Header = [u32; HEADER_WORDS];

/// A reader connection and the snapshot it holds open, if any.
pub(super) struct ReaderConnection {
    connection: Connection,
    wal_index: Option<WalIndexHeader>,
    held: Option<HeldSnapshot>,
    max_held: Duration,
}

/// A read transaction left open, and the WAL-index header read just before it began.
struct HeldSnapshot {
    header: Header,
    began: Instant,
}

impl ReaderConnection {
    /// Wraps an open read-only connection, locating the WAL-index header through it.
    pub(super) fn new(connection: Connection) -> Self {
        let wal_index = WalIndexHeader::locate(&connection);
        Self {
            connection,
            wal_index,
            held: None,
            max_held: MAX_HELD,
        }
    }

    /// Whether this connection keeps snapshots between reads (it found the WAL-index header).
    #[cfg(test)]
    pub(super) fn keeps_snapshots(&self) -> bool {
        self.wal_index.is_some()
    }

    /// From now on, every read is its own transaction.
    pub(super) fn disable_snapshots(&mut self) {
        self.release();
        self.wal_index = None;
    }

    /// Runs `work` on the newest committed state: in the held snapshot when nothing has been
    /// committed since it began, else in a new one, which is kept afterwards only if `may_keep`
    /// (see the module doc for when it is not).
    pub(super) fn run<T>(
        &mut self,
        may_keep: bool,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        if !(may_keep && self.held_snapshot_is_current()) {
            self.release();
            if may_keep {
                self.begin()?;
            }
        }
        let result = work(&self.connection);
        let failed =
            matches!(&result, Err(error) if !matches!(error, rusqlite::Error::QueryReturnedNoRows));
        if failed || self.held.is_none() {
            self.release();
        }
        result
    }

    /// Ends the held snapshot, if any.
    pub(super) fn release(&mut self) {
        self.held = None;
        if !self.connection.is_autocommit() {
            // Ending a read transaction cannot fail in a way that matters: on an error SQLite has
            // already rolled back, and the next `begin` starts from autocommit either way.
            let _ = self
                .connection
                .prepare_cached("ROLLBACK")
                .and_then(|mut rollback| rollback.execute([]));
        }
    }

    /// Ends the held snapshot if it began more than [`MAX_HELD`] ago.
    pub(super) fn release_if_stale(&mut self) {
        if self
            .held
            .as_ref()
            .is_some_and(|held| held.began.elapsed() >= self.max_held)
        {
            self.release();
        }
    }

    fn held_snapshot_is_current(&self) -> bool {
        match (&self.held, &self.wal_index) {
            (Some(held), Some(wal_index)) => {
                held.began.elapsed() < self.max_held && wal_index.read() == held.header
            }
            _ => false,
        }
    }

    /// Begins a read transaction to keep, recording the header first: a commit landing between
    /// the two makes the recorded header older than the snapshot, which only ends it sooner.
    fn begin(&mut self) -> rusqlite::Result<()> {
        let Some(wal_index) = &self.wal_index else {
            return Ok(());
        };
        let header = wal_index.read();
        if header[MX_FRAME_WORD] >= KEEP_BELOW_FRAMES {
            return Ok(()); // a checkpoint is due: read in autocommit, keep nothing
        }
        // DEFERRED: the snapshot itself starts at the first read inside `work`.
        self.connection.prepare_cached("BEGIN")?.execute([])?;
        self.held = Some(HeldSnapshot {
            header,
            began: Instant::now(),
        });
        Ok(())
    }
}

/// SQLite's mapping of the WAL-index header of one connection's database.
struct WalIndexHeader {
    words: NonNull<u32>,
}

// SAFETY: the pointer is into the process-wide mapping of the `-shm` file that SQLite keeps for
// as long as any connection of this process has the database open in WAL mode; the
// `ReaderConnection` owning this value owns such a connection, and it only ever reads through the
// pointer (volatile loads), from whichever thread holds the connection.
unsafe impl Send for WalIndexHeader {}

impl WalIndexHeader {
    /// Finds the header through `connection`, which must be in WAL mode. Runs one read
    /// transaction so that SQLite has opened the WAL and mapped the `-shm` file. `None` when
    /// anything is not as expected.
    fn locate(connection: &Connection) -> Option<Self> {
        let journal_mode: String = connection
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .ok()?;
        let locking_mode: String = connection
            .query_row("PRAGMA locking_mode", [], |row| row.get(0))
            .ok()?;
        if !journal_mode.eq_ignore_ascii_case("wal") || !locking_mode.eq_ignore_ascii_case("normal")
        {
            return None;
        }
        connection.execute_batch("BEGIN").ok()?;
        let words = connection
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| {
                row.get::<_, i64>(0)
            })
            .ok()
            .and_then(|_| shared_memory_region(connection));
        connection.execute_batch("ROLLBACK").ok()?;
        let header = Self {
            words: words?.cast(),
        };
        // A commit of another process may be rewriting the header right now: look again.
        (0..3).any(|_| header.looks_valid()).then_some(header)
    }

    /// Both copies of the header, read word by word as SQLite's own readers do (without a lock;
    /// a copy torn by a concurrent commit differs from the recorded one, which ends the snapshot).
    fn read(&self) -> Header {
        let mut header = [0u32; HEADER_WORDS];
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        for (index, word) in header.iter_mut().enumerate() {
            // SAFETY: see `unsafe impl Send`; the mapping spans at least 32 KiB, and the header
            // is its first 96 bytes, aligned (the mapping is page-aligned).
            *word = unsafe { std::ptr::read_volatile(self.words.as_ptr().add(index)) };
        }
        header
    }

    /// The first copy says WAL-index version 3007000 and "initialised", and both copies agree.
    fn looks_valid(&self) -> bool {
        let header = self.read();
        let is_init = header[3].to_ne_bytes()[0];
        header[0] == WAL_INDEX_VERSION
            && is_init == 1
            && header[..HEADER_WORDS / 2] == header[HEADER_WORDS / 2..]
    }
}

/// Region 0 of SQLite's `-shm` mapping for `connection`'s main database; call inside a read
/// transaction (the WAL is open then, and so is its mapping).
fn shared_memory_region(connection: &Connection) -> Option<NonNull<c_void>> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `handle` is the live connection; SQLITE_FCNTL_FILE_POINTER writes the main
    // database's `sqlite3_file*` into `file`, which stays valid while the connection is open.
    let code = unsafe {
        ffi::sqlite3_file_control(
            connection.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&raw mut file).cast(),
        )
    };
    if code != ffi::SQLITE_OK || file.is_null() {
        return None;
    }
    // SAFETY: `file` is a valid `sqlite3_file` (above); its methods table is SQLite's VFS table.
    let methods = unsafe { (*file).pMethods };
    // SAFETY: a non-null methods table of a VFS file; `iVersion >= 2` means `xShmMap` exists.
    let shm_map = unsafe { methods.as_ref() }
        .filter(|methods| methods.iVersion >= 2)?
        .xShmMap?;
    let mut region: *mut c_void = std::ptr::null_mut();
    // SAFETY: region 0 is mapped already (we are inside a read transaction), so `bExtend = 0`
    // only returns SQLite's existing mapping; 32768 is the region size SQLite itself uses.
    let code = unsafe { shm_map(file, 0, 32 * 1024, 0, &raw mut region) };
    if code != ffi::SQLITE_OK {
        return None;
    }
    NonNull::new(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database in WAL mode with one table, its writer, and a reader that holds snapshots for
    /// `max_held` (long, so that only a change can end one).
    fn setup(max_held: Duration) -> (tempfile::TempDir, Connection, ReaderConnection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshots.db");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer
            .execute_batch("CREATE TABLE rows (id INTEGER PRIMARY KEY)")
            .unwrap();
        let reader =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut reader = ReaderConnection::new(reader);
        reader.max_held = max_held;
        (dir, writer, reader)
    }

    fn count(reader: &mut ReaderConnection) -> i64 {
        reader
            .run(true, |conn| {
                conn.query_row("SELECT count(*) FROM rows", [], |row| row.get(0))
            })
            .unwrap()
    }

    fn began(reader: &ReaderConnection) -> Instant {
        reader.held.as_ref().expect("a snapshot is held").began
    }

    #[test]
    fn a_snapshot_serves_reads_until_something_is_committed() {
        let (_dir, writer, mut reader) = setup(Duration::from_secs(3600));
        assert!(reader.keeps_snapshots());
        assert_eq!(count(&mut reader), 0);
        let first = began(&reader);
        assert_eq!(count(&mut reader), 0);
        assert_eq!(
            began(&reader),
            first,
            "nothing changed: the same snapshot served the second read"
        );
        for expected in 1..=50 {
            writer
                .execute("INSERT INTO rows DEFAULT VALUES", [])
                .unwrap();
            assert_eq!(
                count(&mut reader),
                expected,
                "a commit is seen by the very next read"
            );
        }
        assert!(began(&reader) > first, "a commit ended the old snapshot");
    }

    #[test]
    fn a_commit_by_another_process_is_seen_by_the_next_read() {
        let (dir, _writer, mut reader) = setup(Duration::from_secs(3600));
        assert_eq!(count(&mut reader), 0);
        for expected in 1..=3 {
            let held = began(&reader);
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "store::sqlite::snapshot::tests::insert_one_row_as_another_process",
                    "--ignored",
                    "--quiet",
                ])
                .env(CHILD_DATABASE, dir.path().join("snapshots.db"))
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            assert_eq!(
                began(&reader),
                held,
                "the snapshot is still held when the other process commits"
            );
            assert_eq!(count(&mut reader), expected);
        }
    }

    const CHILD_DATABASE: &str = "SNAPSHOT_TEST_CHILD_DATABASE";

    /// Not a test: the other process of the test above (the test binary started again).
    #[test]
    #[ignore = "run as a child process by a_commit_by_another_process_is_seen_by_the_next_read"]
    fn insert_one_row_as_another_process() {
        let path = std::env::var_os(CHILD_DATABASE)
            .expect("started by a_commit_by_another_process_is_seen_by_the_next_read");
        let writer = Connection::open(path).unwrap();
        writer.busy_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            writer
                .execute("INSERT INTO rows DEFAULT VALUES", [])
                .unwrap(),
            1
        );
    }

    #[test]
    fn reads_while_another_process_writes_do_not_keep_the_wal_from_starting_over() {
        let (dir, writer, mut reader) = setup(MAX_HELD);
        writer
            .execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)")
            .unwrap();
        drop(writer);
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::sqlite::snapshot::tests::insert_blobs_as_another_process",
                "--ignored",
                "--quiet",
            ])
            .env(CHILD_DATABASE, dir.path().join("snapshots.db"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let wal = dir.path().join("snapshots.db-wal");
        let mut largest_wal = 0;
        let status = loop {
            reader
                .run(true, |conn| {
                    conn.query_row("SELECT count(*) FROM blobs", [], |row| row.get::<_, i64>(0))
                })
                .unwrap();
            largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |meta| meta.len()));
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            // Reads with gaps: back-to-back reads starve checkpoints with or without kept
            // snapshots (SQLite's own checkpoint starvation).
            std::thread::sleep(Duration::from_millis(2));
        };
        assert!(status.success());
        // As in `Db`'s test: without the WAL starting over it would pass 12 MB.
        assert!(
            largest_wal < 8 * 1024 * 1024,
            "the WAL grew to {largest_wal} bytes"
        );
    }

    /// Not a test: the writing process of the test above.
    #[test]
    #[ignore = "run as a child process by reads_while_another_process_writes_do_not_keep_the_wal_from_starting_over"]
    fn insert_blobs_as_another_process() {
        let path = std::env::var_os(CHILD_DATABASE).expect(
            "started by reads_while_another_process_writes_do_not_keep_the_wal_from_starting_over",
        );
        let writer = Connection::open(path).unwrap();
        writer.busy_timeout(Duration::from_secs(5)).unwrap();
        for _ in 0..3000 {
            writer
                .execute("INSERT INTO blobs (data) VALUES (zeroblob(3000))", [])
                .unwrap();
        }
    }

    #[test]
    fn a_snapshot_ends_after_max_held_and_after_an_error() {
        let (_dir, _writer, mut reader) = setup(Duration::from_millis(5));
        count(&mut reader);
        let first = began(&reader);
        std::thread::sleep(Duration::from_millis(10));
        count(&mut reader);
        assert!(began(&reader) > first, "an old snapshot is not reused");
        std::thread::sleep(Duration::from_millis(10));
        reader.release_if_stale();
        assert!(reader.held.is_none() && reader.connection.is_autocommit());

        count(&mut reader);
        let failed = reader.run(true, |conn| {
            conn.query_row("SELECT nope FROM rows", [], |row| row.get::<_, i64>(0))
        });
        assert!(failed.is_err());
        assert!(
            reader.held.is_none() && reader.connection.is_autocommit(),
            "a failed read ends its snapshot"
        );
        assert_eq!(count(&mut reader), 0, "and the next read works");
    }

    #[test]
    fn a_held_snapshot_holds_back_a_checkpoint_until_released() {
        let (_dir, writer, mut reader) = setup(Duration::from_secs(3600));
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer.busy_timeout(Duration::ZERO).unwrap();
        writer
            .execute("INSERT INTO rows DEFAULT VALUES", [])
            .unwrap();
        assert_eq!(count(&mut reader), 1);
        let busy = |writer: &Connection| {
            writer
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    row.get::<_, i64>(0)
                })
                .unwrap()
        };
        assert_eq!(
            busy(&writer),
            1,
            "the held snapshot is a real read transaction"
        );
        reader.release();
        assert_eq!(busy(&writer), 0);
    }

    #[test]
    fn without_wal_nothing_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollback-journal.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE rows (id INTEGER PRIMARY KEY)")
            .unwrap();
        let mut reader = ReaderConnection::new(Connection::open(&path).unwrap());
        assert!(!reader.keeps_snapshots());
        assert_eq!(count(&mut reader), 0);
        assert!(reader.held.is_none() && reader.connection.is_autocommit());
    }
}
