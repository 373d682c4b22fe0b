//! The archive store: where housekeeping jobs put what they take out of the database.
//!
//! The port ([`ArchiveStore`]) is whole-object put/get, prefix listing and delete, so a folder
//! ([`folder::FolderArchive`], local mode) and Blob Storage (issue 5) implement it alike. On top
//! of it, [`batch`] writes NDJSON + gzip objects with a manifest (item count, SHA-256) and reads
//! them back to verify before a job deletes anything.
//!
//! Keys are `/`-separated relative paths (`audit/{tenant}/{yyyy}/{mm}/{dd}/{part}.ndjson.gz`).
//! A put overwrites: re-running a batch after a crash rewrites the same object.

pub mod batch;
pub mod folder;

pub use batch::{read_batch, write_verified, ArchivedBatch, Manifest};
pub use folder::FolderArchive;

/// What an archive call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("invalid archive key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("archive {backend} failed to {action} {key}: {source}")]
    Io {
        backend: &'static str,
        action: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("archive object {key} does not verify: {reason}")]
    Verification { key: String, reason: String },
    #[error("archive object {key} is missing")]
    Missing { key: String },
}

/// Whole-object storage for archives: a folder locally, a Blob container in Azure.
#[async_trait::async_trait]
pub trait ArchiveStore: Send + Sync {
    /// A short name for reports and errors (`folder`, `blob`).
    fn backend(&self) -> &'static str;
    /// Stores `bytes` under `key`, replacing any object there, atomically (all or nothing).
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ArchiveError>;
    /// The object under `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError>;
    /// Every key starting with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError>;
    /// Removes the object under `key`; removing a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), ArchiveError>;
}

/// Checks that `key` is a relative, `/`-separated path without `.`/`..` segments.
pub fn check_key(key: &str) -> Result<(), ArchiveError> {
    let invalid = |reason| Err(ArchiveError::InvalidKey { key: key.to_owned(), reason });
    if key.is_empty() || key.len() > 1024 {
        return invalid("use 1 to 1024 characters");
    }
    if key.starts_with('/') || key.contains('\\') {
        return invalid("use a relative path with '/' separators");
    }
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if !key.split('/').all(segment_ok) {
        return invalid("use segments of letters, digits, '-', '_' and '.', without '.' or '..' alone");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_paths_without_escapes() {
        assert!(check_key("audit/t1/2016/01/02/00000.ndjson.gz").is_ok());
        for bad in ["", "/abs", "a/../b", "a//b", "a\\b", "a/./b", "a b"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
