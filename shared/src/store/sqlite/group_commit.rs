//! Group commit for the hot API writes (creating an order, changing its status).
//!
//! A SQLite commit in WAL mode appends a frame for every page the transaction changed. Writes
//! that arrive while the writer connection is busy wait in [`PendingWrites`]; whoever takes the
//! writer next runs every waiting write in one transaction, each inside its own savepoint, and
//! commits once ([`commit_pending`]). Pages several writes share (the outbox's last leaf, the
//! audit trail's, a product's stock row, the `AUTOINCREMENT` counter) are then written once per
//! group instead of once per request.
//!
//! Each write keeps the semantics it has alone: it sees the writes queued before it, its
//! savepoint is released only when it calls [`rusqlite::Savepoint::commit`] (dropping it rolls
//! back its own changes and nothing else), and its answer is handed back only after the
//! group's commit succeeded; when the commit fails, every write of the group gets the error and
//! none of them happened.

use std::sync::Mutex;

use rusqlite::{Connection, Savepoint};
use tokio::sync::oneshot;

use crate::store::StoreError;

/// A queued write: run inside the group's transaction, answered after its commit.
pub(super) trait GroupedWrite: Send {
    /// Runs the write on its savepoint (kept only if the write commits it).
    fn run(&mut self, savepoint: rusqlite::Result<Savepoint<'_>>);
    /// Hands back the write's result, or the group's commit error.
    fn answer(self: Box<Self>, commit: Result<(), &rusqlite::Error>);
}

/// A write and the channel its caller waits on.
pub(super) struct Job<T, F> {
    work: Option<F>,
    result: Option<rusqlite::Result<T>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job<T, F>
where
    F: for<'c> FnOnce(Savepoint<'c>) -> rusqlite::Result<T> + Send + 'static,
    T: Send + 'static,
{
    /// A job for `work`, and the receiver of its answer.
    pub(super) fn new(work: F) -> (Box<Self>, oneshot::Receiver<Result<T, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        let job = Self {
            work: Some(work),
            result: None,
            reply,
        };
        (Box::new(job), answer)
    }
}

impl<T, F> GroupedWrite for Job<T, F>
where
    F: for<'c> FnOnce(Savepoint<'c>) -> rusqlite::Result<T> + Send + 'static,
    T: Send + 'static,
{
    fn run(&mut self, savepoint: rusqlite::Result<Savepoint<'_>>) {
        let Some(work) = self.work.take() else { return };
        self.result = Some(savepoint.and_then(work));
    }

    fn answer(self: Box<Self>, commit: Result<(), &rusqlite::Error>) {
        let answer = match (commit, self.result) {
            (Err(error), _) => Err(super::sqlite_error(copy_error(error))),
            (Ok(()), Some(result)) => result.map_err(super::sqlite_error),
            (Ok(()), None) => Err(StoreError::Unavailable {
                backend: "sqlite",
                reason: "a queued write was never run".to_owned(),
            }),
        };
        // The caller may have stopped waiting (its request was cancelled): nothing to do then.
        let _ = self.reply.send(answer);
    }
}

/// Writes waiting for the writer connection.
#[derive(Default)]
pub(super) struct PendingWrites(Mutex<Vec<Box<dyn GroupedWrite>>>);

impl PendingWrites {
    pub(super) fn push(&self, write: Box<dyn GroupedWrite>) {
        super::lock(&self.0).push(write);
    }

    fn take(&self) -> Vec<Box<dyn GroupedWrite>> {
        std::mem::take(&mut *super::lock(&self.0))
    }
}

/// Runs every write waiting in `pending` in one transaction on `connection` (the writer, held
/// by the caller), commits once, and answers each. Does nothing when another caller already
/// took them.
pub(super) fn commit_pending(connection: &mut Connection, pending: &PendingWrites) {
    let mut writes = pending.take();
    if writes.is_empty() {
        return;
    }
    let committed = run_group(connection, &mut writes);
    for write in writes {
        write.answer(committed.as_ref().map(|_| ()));
    }
}

fn run_group(
    connection: &mut Connection,
    writes: &mut [Box<dyn GroupedWrite>],
) -> rusqlite::Result<()> {
    let mut transaction = connection.transaction()?;
    for write in writes.iter_mut() {
        write.run(transaction.savepoint());
    }
    transaction.commit()
}

/// A copy of `error` for each write of a failed group (`rusqlite::Error` is not `Clone`).
fn copy_error(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!("the group commit failed: {other}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Db;
    use crate::store::StoreError;

    async fn scratch_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("app.db")).unwrap();
        db.write(|conn| {
            conn.execute_batch("CREATE TABLE scratch (key TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        })
        .await
        .unwrap();
        (dir, db)
    }

    async fn keys(db: &Db) -> Vec<String> {
        db.read(|conn| {
            let mut statement = conn.prepare("SELECT key FROM scratch ORDER BY n")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            rows.collect()
        })
        .await
        .unwrap()
    }

    /// Inserts `key`; then keeps it, rolls it back (a rejection, answered `Ok(false)`), or fails.
    async fn insert(db: &Db, key: String, n: i64) -> Result<bool, StoreError> {
        db.write_grouped(move |savepoint| {
            savepoint.execute(
                "INSERT INTO scratch (key, n) VALUES (?1, ?2)",
                rusqlite::params![key, n],
            )?;
            match n % 3 {
                0 => {
                    savepoint.commit()?;
                    Ok(true)
                }
                1 => Ok(false),
                _ => Err(rusqlite::Error::QueryReturnedNoRows),
            }
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_keep_their_own_outcome_in_a_shared_commit() {
        let (_dir, db) = scratch_db().await;
        let calls = (0..90).map(|n| {
            let db = db.clone();
            tokio::spawn(async move { (n, insert(&db, format!("k{n}"), n).await) })
        });
        for call in calls {
            let (n, answer) = call.await.unwrap();
            match n % 3 {
                0 => assert!(matches!(answer, Ok(true)), "{n}: {answer:?}"),
                1 => assert!(matches!(answer, Ok(false)), "{n}: {answer:?}"),
                _ => assert!(
                    matches!(answer, Err(StoreError::NotFound)),
                    "{n}: {answer:?}"
                ),
            }
        }
        let expected: Vec<String> = (0..90)
            .filter(|n| n % 3 == 0)
            .map(|n| format!("k{n}"))
            .collect();
        assert_eq!(keys(&db).await, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_write_sees_the_writes_queued_before_it() {
        let (_dir, db) = scratch_db().await;
        let calls = (0..20).map(|round| {
            let db = db.clone();
            tokio::spawn(async move { insert(&db, "same".to_owned(), round * 3).await })
        });
        let mut kept = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(true) => kept += 1,
                Err(StoreError::Conflict(_)) => {}
                other => panic!("unexpected answer {other:?}"),
            }
        }
        assert_eq!(kept, 1, "exactly one insert of the same key commits");
        assert_eq!(keys(&db).await, vec!["same".to_owned()]);
    }
}
