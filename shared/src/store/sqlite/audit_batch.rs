//! Group commit of audit entries ([`Db::append_audit_grouped`]): every employee read of a
//! customer's data is an audit entry written before the data is answered, so on the API's read
//! path an audit append is as frequent as a read. SQLite has one writer, and a transaction per
//! entry made every read a write transaction of its own. Here entries that arrive while the
//! writer is busy wait in a queue and go in together, in one transaction; each caller still
//! returns only once its own entry is committed (nothing is answered unrecorded), and an entry
//! that fails in a batch is retried alone so that it alone fails.

use std::sync::Mutex;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::support::insert_audit;
use super::{lock, sqlite_error, Db};
use crate::domain::audit::AuditEntry;
use crate::store::{StoreError, StoreResult};

/// An entry waiting for the next batch, and where its outcome goes.
type Waiting = (AuditEntry, oneshot::Sender<StoreResult<()>>);

/// Entries waiting for the writer, and whether a flush is already on its way to drain them.
#[derive(Default)]
pub(super) struct AuditQueue {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    entries: Vec<Waiting>,
    flush_scheduled: bool,
}

impl Db {
    /// Appends `entry` to the audit trail with whatever other entries are waiting for the
    /// writer; returns once it is committed.
    pub(super) async fn append_audit_grouped(&self, entry: AuditEntry) -> StoreResult<()> {
        let (sender, receiver) = oneshot::channel();
        let schedule = {
            let mut pending = lock(&self.inner.audit_queue.pending);
            pending.entries.push((entry, sender));
            !std::mem::replace(&mut pending.flush_scheduled, true)
        };
        if schedule {
            // A task of its own, so a caller that goes away (a client hanging up) cannot leave
            // the queue without a flush.
            let db = self.clone();
            tokio::spawn(async move { db.flush_audit_queue().await });
        }
        receiver.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable {
                backend: "sqlite",
                reason: "the audit batch was abandoned (the database task stopped)".to_owned(),
            })
        })
    }

    /// Takes every waiting entry once the writer is free, and writes them.
    async fn flush_audit_queue(&self) {
        let inner = std::sync::Arc::clone(&self.inner);
        let flushed = self
            .write(move |connection| {
                let batch = {
                    let mut pending = lock(&inner.audit_queue.pending);
                    pending.flush_scheduled = false;
                    std::mem::take(&mut pending.entries)
                };
                write_batch(connection, batch);
                Ok(())
            })
            .await;
        if let Err(error) = flushed {
            // The waiters' senders went with the batch: each of them gets an error.
            tracing::warn!(error = %error, "an audit batch could not run");
        }
    }
}

/// Writes `batch` in one transaction; if that fails, each entry alone, so each caller gets
/// its own entry's outcome.
fn write_batch(connection: &mut Connection, batch: Vec<Waiting>) {
    let together = (|| {
        let transaction = connection.transaction()?;
        for (entry, _) in &batch {
            insert_audit(&transaction, entry)?;
        }
        transaction.commit()
    })();
    match together {
        Ok(()) => {
            for (_, waiter) in batch {
                // A caller that went away needs no answer.
                let _ = waiter.send(Ok(()));
            }
        }
        Err(_) => {
            for (entry, waiter) in batch {
                let _ = waiter.send(insert_audit(connection, &entry).map_err(sqlite_error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn entry(id: &str) -> AuditEntry {
        AuditEntry {
            tenant_id: "t1".to_owned(),
            id: id.to_owned(),
            actor_id: "emp-1".to_owned(),
            action: "order.read".to_owned(),
            target_type: "order".to_owned(),
            target_id: "o-1".to_owned(),
            customer_id: Some("c-1".to_owned()),
            at: Utc::now(),
            correlation_id: "corr-1".to_owned(),
            actor_role: Some("admin".to_owned()),
        }
    }

    async fn stored_ids(db: &Db) -> Vec<String> {
        db.read(|conn| {
            let mut statement = conn.prepare("SELECT id FROM audit_log ORDER BY id")?;
            let ids = statement.query_map([], |row| row.get(0))?;
            ids.collect()
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_are_each_committed_before_they_return() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("app.db")).unwrap();
        let appends: Vec<_> = (0..200)
            .map(|n| {
                let db = db.clone();
                tokio::spawn(
                    async move { db.append_audit_grouped(entry(&format!("a-{n:03}"))).await },
                )
            })
            .collect();
        for append in appends {
            append.await.unwrap().unwrap();
        }
        let expected: Vec<String> = (0..200).map(|n| format!("a-{n:03}")).collect();
        assert_eq!(stored_ids(&db).await, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_entry_that_fails_fails_alone_and_its_batch_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("app.db")).unwrap();
        db.append_audit_grouped(entry("dup")).await.unwrap();
        // Hold the writer so the next appends queue up and go in as one batch.
        let (held, release) = std::sync::mpsc::channel::<()>();
        let holder = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |_| {
                    let _ = release.recv();
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let appends: Vec<_> = ["ok-1", "dup", "ok-2"]
            .into_iter()
            .map(|id| {
                let db = db.clone();
                tokio::spawn(async move { db.append_audit_grouped(entry(id)).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        held.send(()).unwrap();
        holder.await.unwrap().unwrap();
        let outcomes: Vec<bool> = futures::future::join_all(appends)
            .await
            .into_iter()
            .map(|outcome| outcome.unwrap().is_ok())
            .collect();
        assert_eq!(
            outcomes,
            [true, false, true],
            "the duplicate id alone fails"
        );
        assert_eq!(stored_ids(&db).await, ["dup", "ok-1", "ok-2"]);
    }
}
