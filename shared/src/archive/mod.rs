//! The archive store: where housekeeping jobs put what they take out of the database.
//!
//! The port ([`ArchiveStore`]) is whole-object put/get, prefix listing and delete, so a folder
//! ([`folder::FolderArchive`], local mode) and Blob Storage ([`blob::BlobArchive`]) implement it
//! alike; [`open`] picks one from the settings (`ARCHIVE`). On top
//! of it, [`batch`] writes NDJSON + gzip objects with a manifest (item count, SHA-256) and reads
//! them back to verify before a job deletes anything.
//!
//! Keys are `/`-separated relative paths (`audit/{tenant}/{yyyy}/{mm}/{dd}/{part}.ndjson.gz`).
//! A put overwrites: re-running a batch after a crash rewrites the same object.

pub mod batch;
pub mod blob;
pub mod folder;

use std::sync::Arc;
use std::time::Duration;

pub use batch::{read_batch, write_verified, ArchivedBatch, Manifest};
pub use blob::{BlobArchive, BlobArchiveOptions, BlobAuth};
pub use folder::FolderArchive;

use crate::config::{ArchiveKind, Settings};
use crate::store::{HealthCheck, StoreError};

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
    /// The storage service refused or failed the call; `reason` is one line (status and code).
    #[error("archive {backend} failed to {action} {key}: {reason}")]
    Service {
        backend: &'static str,
        action: &'static str,
        key: String,
        reason: String,
    },
    #[error("archive {backend} did not {action} {key} within {after:?}")]
    Timeout {
        backend: &'static str,
        action: &'static str,
        key: String,
        after: Duration,
    },
    #[error("archive {backend} cannot be set up: {reason}")]
    Setup {
        backend: &'static str,
        reason: String,
    },
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

/// The configured archive: the store the jobs write to, and its readiness check.
#[derive(Clone)]
pub struct OpenedArchive {
    pub store: Arc<dyn ArchiveStore>,
    pub health: Arc<dyn HealthCheck>,
}

/// Builds the archive `ARCHIVE` names: the folder at `ARCHIVE_DIR`, or the Blob container
/// `ARCHIVE_CONTAINER` at `ARCHIVE_BLOB_ENDPOINT` (SAS from `ARCHIVE_BLOB_SAS` for emulators,
/// else the managed identity, user-assigned when `AZURE_CLIENT_ID` is set). Makes no request.
pub fn open(settings: &Settings) -> Result<OpenedArchive, ArchiveError> {
    match settings.archive {
        ArchiveKind::Folder => {
            let folder = Arc::new(FolderArchive::new(settings.archive_dir.clone()));
            Ok(OpenedArchive {
                store: folder.clone(),
                health: folder,
            })
        }
        ArchiveKind::Blob => {
            let endpoint =
                settings
                    .archive_blob_endpoint
                    .as_deref()
                    .ok_or_else(|| ArchiveError::Setup {
                        backend: "blob",
                        reason: "ARCHIVE_BLOB_ENDPOINT is not set".into(),
                    })?;
            // An emulator (SAS) gets its container created on first use; Azure's comes from Bicep.
            let (auth, create_container) = match &settings.archive_blob_sas {
                Some(sas) => (BlobAuth::Sas(sas.clone()), true),
                None => (
                    BlobAuth::ManagedIdentity {
                        client_id: settings.azure_client_id.clone(),
                    },
                    false,
                ),
            };
            let options = BlobArchiveOptions {
                create_container,
                ..BlobArchiveOptions::default()
            };
            let blob = Arc::new(BlobArchive::new(
                endpoint,
                &settings.archive_container,
                auth,
                options,
            )?);
            Ok(OpenedArchive {
                store: blob.clone(),
                health: blob,
            })
        }
    }
}

/// How long a readiness check of the archive may take.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

fn unavailable(backend: &'static str) -> impl FnOnce(ArchiveError) -> StoreError {
    move |error| StoreError::Unavailable {
        backend,
        reason: error.to_string(),
    }
}

#[async_trait::async_trait]
impl HealthCheck for FolderArchive {
    fn backend(&self) -> &'static str {
        "folder"
    }

    /// The archive folder exists (or can be created) and is a folder.
    async fn ping(&self) -> Result<(), StoreError> {
        let root = self.root().to_path_buf();
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(|error| StoreError::Unavailable {
                backend: "folder",
                reason: format!("cannot create {}: {error}", root.display()),
            })
    }
}

#[async_trait::async_trait]
impl HealthCheck for BlobArchive {
    fn backend(&self) -> &'static str {
        "blob"
    }

    /// The container answers within a few seconds.
    async fn ping(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(PING_TIMEOUT, BlobArchive::ping(self)).await {
            Ok(result) => result.map_err(unavailable("blob")),
            Err(_) => Err(StoreError::Unavailable {
                backend: "blob",
                reason: format!("no answer within {PING_TIMEOUT:?}"),
            }),
        }
    }
}

/// Checks that `key` is a relative, `/`-separated path without `.`/`..` segments.
pub(crate) fn check_key(key: &str) -> Result<(), ArchiveError> {
    let invalid = |reason| {
        Err(ArchiveError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
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
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if !key.split('/').all(segment_ok) {
        return invalid(
            "use segments of letters, digits, '-', '_' and '.', without '.' or '..' alone",
        );
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
