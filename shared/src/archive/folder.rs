//! The folder adapter of [`ArchiveStore`]: one file per object under `ARCHIVE_DIR`.
//!
//! A put writes a temporary file beside the target, syncs it and renames it over the target, so
//! a crash leaves either the old object or the new one, never half of one.

use std::path::{Path, PathBuf};

use super::{check_key, ArchiveError, ArchiveStore};

/// Archives as files under a root folder.
#[derive(Debug, Clone)]
pub struct FolderArchive {
    root: PathBuf,
}

impl FolderArchive {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, ArchiveError> {
        check_key(key)?;
        Ok(key
            .split('/')
            .fold(self.root.clone(), |path, segment| path.join(segment)))
    }
}

fn io_error<'k>(
    action: &'static str,
    key: &'k str,
) -> impl FnOnce(std::io::Error) -> ArchiveError + 'k {
    move |source| ArchiveError::Io {
        backend: "folder",
        action,
        key: key.to_owned(),
        source,
    }
}

fn put_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temporaries(dir, &file_name);
    let temporary = dir.join(format!(
        ".{file_name}.{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Removes what an interrupted put of the same object left behind (best effort).
fn remove_stale_temporaries(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn list_files(root: &Path, dir: &Path, found: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            list_files(root, &path, found)?;
        } else if !entry.file_name().to_string_lossy().starts_with('.') {
            if let Ok(relative) = path.strip_prefix(root) {
                let key = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push(key);
            }
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl ArchiveStore for FolderArchive {
    fn backend(&self) -> &'static str {
        "folder"
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        let path = self.path_of(key)?;
        let result = tokio::task::spawn_blocking(move || put_file(&path, &bytes)).await;
        flatten(result).map_err(io_error("write", key))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("read", key)(error)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        // Walk the deepest folder the prefix names in full, then filter by the whole prefix.
        let folder = prefix.rsplit_once('/').map_or("", |(folder, _)| folder);
        let start = if folder.is_empty() {
            self.root.clone()
        } else {
            self.path_of(folder)?
        };
        let root = self.root.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            list_files(&root, &start, &mut found).map(|()| found)
        })
        .await;
        let mut keys = flatten(result).map_err(io_error("list", prefix))?;
        keys.retain(|key| key.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), ArchiveError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io_error("delete", key)(error)),
        }
    }
}

fn flatten<T>(result: Result<std::io::Result<T>, tokio::task::JoinError>) -> std::io::Result<T> {
    result.map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_list_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let archive = FolderArchive::new(dir.path());
        archive.put("a/b/1.txt", b"one".to_vec()).await.unwrap();
        archive.put("a/b/1.txt", b"uno".to_vec()).await.unwrap();
        archive.put("a/c/2.txt", b"two".to_vec()).await.unwrap();
        archive.put("ab/3.txt", b"three".to_vec()).await.unwrap();
        assert_eq!(archive.get("a/b/1.txt").await.unwrap().unwrap(), b"uno");
        assert_eq!(
            archive.list("a/").await.unwrap(),
            vec!["a/b/1.txt", "a/c/2.txt"]
        );
        assert_eq!(
            archive.list("a").await.unwrap(),
            vec!["a/b/1.txt", "a/c/2.txt", "ab/3.txt"]
        );
        assert!(archive.list("zzz/").await.unwrap().is_empty());
        archive.delete("a/b/1.txt").await.unwrap();
        archive.delete("a/b/1.txt").await.unwrap();
        assert_eq!(archive.get("a/b/1.txt").await.unwrap(), None);
        assert!(archive.put("../escape", vec![]).await.is_err());
    }
}
