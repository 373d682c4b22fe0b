//! Archived batches: NDJSON, gzip-compressed, with a manifest beside them.
//!
//! `{base}.ndjson.gz` holds one JSON document per line; `{base}.manifest.json` holds the item
//! count and the SHA-256 of the compressed object and of the NDJSON inside it. The encoding is
//! deterministic (fixed gzip header, no timestamps), so writing the same batch twice produces
//! the same bytes: a re-run after a crash rewrites the same archive, never a second copy.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{ArchiveError, ArchiveStore};

/// The manifest of one archived batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The key of the NDJSON object this manifest describes.
    pub object: String,
    pub items: u64,
    /// SHA-256 (hex) of the stored, compressed bytes.
    pub sha256: String,
    /// SHA-256 (hex) of the NDJSON text inside.
    pub ndjson_sha256: String,
    /// What the items are (`audit_entry`, `notification_summary`).
    pub kind: String,
}

/// A batch written and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedBatch {
    pub object_key: String,
    pub manifest_key: String,
    pub manifest: Manifest,
}

/// The object and manifest keys of the batch at `base` (a key without extension).
pub(crate) fn keys_of(base: &str) -> (String, String) {
    (format!("{base}.ndjson.gz"), format!("{base}.manifest.json"))
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn encode(items: &[Value]) -> Result<(Vec<u8>, String), std::io::Error> {
    let mut text = Vec::new();
    for item in items {
        serde_json::to_writer(&mut text, item)?;
        text.push(b'\n');
    }
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(&text)?;
    Ok((encoder.finish()?, hex_sha256(&text)))
}

fn decode(key: &str, bytes: &[u8]) -> Result<(Vec<Value>, String), ArchiveError> {
    let broken = |reason: String| ArchiveError::Verification {
        key: key.to_owned(),
        reason,
    };
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut text)
        .map_err(|error| broken(format!("not gzip: {error}")))?;
    let items = text
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice(line)
                .map_err(|error| broken(format!("a line is not JSON: {error}")))
        })
        .collect::<Result<Vec<Value>, _>>()?;
    Ok((items, hex_sha256(&text)))
}

/// Writes `items` at `base`, reads the object back and checks it, then writes the manifest and
/// checks it too. Only after this returns may the caller delete the originals.
pub async fn write_verified(
    archive: &dyn ArchiveStore,
    base: &str,
    kind: &str,
    items: &[Value],
) -> Result<ArchivedBatch, ArchiveError> {
    let (object_key, manifest_key) = keys_of(base);
    let (bytes, ndjson_sha256) = encode(items).map_err(|source| ArchiveError::Io {
        backend: archive.backend(),
        action: "encode",
        key: object_key.clone(),
        source,
    })?;
    let manifest = Manifest {
        object: object_key.clone(),
        items: items.len() as u64,
        sha256: hex_sha256(&bytes),
        ndjson_sha256,
        kind: kind.to_owned(),
    };
    archive.put(&object_key, bytes).await?;
    let manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|error| ArchiveError::Verification {
            key: manifest_key.clone(),
            reason: error.to_string(),
        })?;
    verify_object(archive, &object_key, &manifest).await?;
    archive.put(&manifest_key, manifest_bytes.clone()).await?;
    if archive.get(&manifest_key).await?.as_deref() != Some(manifest_bytes.as_slice()) {
        return Err(ArchiveError::Verification {
            key: manifest_key,
            reason: "the manifest read back differs".into(),
        });
    }
    Ok(ArchivedBatch {
        object_key,
        manifest_key,
        manifest,
    })
}

/// Reads the object back and checks it against `manifest`: size of the batch and both hashes.
async fn verify_object(
    archive: &dyn ArchiveStore,
    key: &str,
    manifest: &Manifest,
) -> Result<Vec<Value>, ArchiveError> {
    let bytes = archive
        .get(key)
        .await?
        .ok_or_else(|| ArchiveError::Missing {
            key: key.to_owned(),
        })?;
    let broken = |reason: String| ArchiveError::Verification {
        key: key.to_owned(),
        reason,
    };
    if hex_sha256(&bytes) != manifest.sha256 {
        return Err(broken(
            "SHA-256 of the stored object differs from the manifest".into(),
        ));
    }
    let (items, ndjson_sha256) = decode(key, &bytes)?;
    if items.len() as u64 != manifest.items || ndjson_sha256 != manifest.ndjson_sha256 {
        return Err(broken(format!(
            "{} items read back, {} expected",
            items.len(),
            manifest.items
        )));
    }
    Ok(items)
}

/// Reads and verifies the batch whose manifest is at `manifest_key`: its items.
pub async fn read_batch(
    archive: &dyn ArchiveStore,
    manifest_key: &str,
) -> Result<(Manifest, Vec<Value>), ArchiveError> {
    let bytes = archive
        .get(manifest_key)
        .await?
        .ok_or_else(|| ArchiveError::Missing {
            key: manifest_key.to_owned(),
        })?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|error| ArchiveError::Verification {
            key: manifest_key.to_owned(),
            reason: format!("manifest is not valid: {error}"),
        })?;
    let items = verify_object(archive, &manifest.object, &manifest).await?;
    Ok((manifest, items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::FolderArchive;
    use serde_json::json;

    #[tokio::test]
    async fn written_batches_verify_and_rewrite_identically() {
        let dir = tempfile::tempdir().unwrap();
        let archive = FolderArchive::new(dir.path());
        let items = vec![json!({"id": "a"}), json!({"id": "b"})];
        let first = write_verified(&archive, "audit/t/2016/01/02/00000", "audit_entry", &items)
            .await
            .unwrap();
        let bytes = archive.get(&first.object_key).await.unwrap().unwrap();
        let second = write_verified(&archive, "audit/t/2016/01/02/00000", "audit_entry", &items)
            .await
            .unwrap();
        assert_eq!(first, second);
        assert_eq!(
            archive.get(&first.object_key).await.unwrap().unwrap(),
            bytes,
            "deterministic bytes"
        );
        let (manifest, read) = read_batch(&archive, &first.manifest_key).await.unwrap();
        assert_eq!((manifest.items, read), (2, items));
    }

    #[tokio::test]
    async fn a_tampered_object_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        let archive = FolderArchive::new(dir.path());
        let batch = write_verified(&archive, "x/00000", "audit_entry", &[json!(1)])
            .await
            .unwrap();
        let (other, _) = encode(&[json!(2)]).unwrap();
        archive.put(&batch.object_key, other).await.unwrap();
        let error = read_batch(&archive, &batch.manifest_key)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("SHA-256"), "{error}");
    }
}
