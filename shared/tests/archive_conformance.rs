//! The archive conformance suite: what the housekeeping jobs rely on from an [`ArchiveStore`],
//! written once against the trait and run against each adapter: the folder, and Blob Storage
//! on Azurite.
//!
//! The Blob tests need an Azurite blob endpoint in `AZURITE_BLOB_ENDPOINT` (`scripts/test`
//! installs and starts Azurite and exports it, see `scripts/lib/azurite.sh`). Without it they
//! fail under CI (`CI=true`) and are skipped with a printed reason otherwise. Each Blob test
//! gets a container of its own and authenticates with an account SAS computed here from
//! Azurite's well-known development account key (a public constant, not a secret).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shared::archive::{
    read_batch, write_verified, ArchiveError, ArchiveStore, BlobArchive, BlobArchiveOptions,
    BlobAuth, FolderArchive,
};
use shared::store::HealthCheck;

#[path = "support/azurite.rs"]
mod azurite;
use azurite::{account_sas, azurite_endpoint};

/// An adapter under test, and what keeps its backing storage alive.
struct Subject {
    archive: Arc<dyn ArchiveStore>,
    health: Arc<dyn HealthCheck>,
    _keep: Option<tempfile::TempDir>,
}

fn folder() -> Option<Subject> {
    let dir = tempfile::tempdir().unwrap();
    let archive = Arc::new(FolderArchive::new(dir.path().join("archive")));
    Some(Subject {
        archive: archive.clone(),
        health: archive,
        _keep: Some(dir),
    })
}

/// A Blob archive on Azurite with retries off, short timeouts and small pages (so listings
/// span several pages), in a container of its own.
fn blob_archive(container: &str) -> Option<BlobArchive> {
    blob_archive_with_sas(container, account_sas())
}

/// [`blob_archive`] authenticating with `sas`.
fn blob_archive_with_sas(container: &str, sas: String) -> Option<BlobArchive> {
    let endpoint = azurite_endpoint()?;
    let options = BlobArchiveOptions {
        call_timeout: Duration::from_secs(20),
        retries: false,
        page_size: 3,
        create_container: false,
    };
    Some(BlobArchive::new(&endpoint, container, BlobAuth::Sas(sas), options).unwrap())
}

async fn blob_subject() -> Option<Subject> {
    let container = format!("conformance-{}", uuid::Uuid::new_v4().simple());
    let archive = Arc::new(blob_archive(&container)?);
    archive.create_container_if_missing().await.unwrap();
    Some(Subject {
        archive: archive.clone(),
        health: archive,
        _keep: None,
    })
}

async fn written_objects_read_back_byte_for_byte(subject: Subject) {
    let archive = subject.archive;
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    archive
        .put("audit/t1/2016/01/02/00000.ndjson.gz", binary.clone())
        .await
        .unwrap();
    archive
        .put("audit/t1/2016/01/02/empty.json", Vec::new())
        .await
        .unwrap();
    assert_eq!(
        archive
            .get("audit/t1/2016/01/02/00000.ndjson.gz")
            .await
            .unwrap(),
        Some(binary)
    );
    assert_eq!(
        archive.get("audit/t1/2016/01/02/empty.json").await.unwrap(),
        Some(Vec::new())
    );
}

async fn large_objects_round_trip(subject: Subject) {
    // Over 4 MiB: the Blob SDK uploads and downloads this in several blocks and ranges.
    let large: Vec<u8> = (0..9 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    subject
        .archive
        .put("big/object.bin", large.clone())
        .await
        .unwrap();
    assert!(
        subject.archive.get("big/object.bin").await.unwrap() == Some(large),
        "large object differs"
    );
}

async fn a_put_replaces_the_whole_object(subject: Subject) {
    let archive = subject.archive;
    archive
        .put("a/1.txt", b"a much longer first version".to_vec())
        .await
        .unwrap();
    archive.put("a/1.txt", b"short".to_vec()).await.unwrap();
    assert_eq!(
        archive.get("a/1.txt").await.unwrap().as_deref(),
        Some(&b"short"[..])
    );
    assert_eq!(archive.list("a/").await.unwrap(), vec!["a/1.txt"]);
}

async fn a_missing_object_reads_as_none_and_deletes_quietly(subject: Subject) {
    assert_eq!(subject.archive.get("nothing/here.txt").await.unwrap(), None);
    subject.archive.delete("nothing/here.txt").await.unwrap();
    assert!(subject.archive.list("nothing/").await.unwrap().is_empty());
}

async fn listing_by_prefix_is_sorted_and_complete_across_pages(subject: Subject) {
    let archive = subject.archive;
    let mut expected = Vec::new();
    for i in (0..8).rev() {
        let key = format!("audit/t1/2016/01/{i:02}/00000.ndjson.gz");
        archive.put(&key, vec![i]).await.unwrap();
        expected.push(key);
    }
    expected.sort();
    archive
        .put("audit/t10/2016/01/01/00000.ndjson.gz", vec![1])
        .await
        .unwrap();
    archive.put("audit/t2/x.json", vec![2]).await.unwrap();
    assert_eq!(
        archive.list("audit/t1/").await.unwrap(),
        expected,
        "a prefix ending in '/' stops at the segment"
    );
    assert_eq!(
        archive.list("audit/t1").await.unwrap().len(),
        9,
        "a bare prefix matches t1 and t10"
    );
    assert_eq!(
        archive.list("").await.unwrap().len(),
        10,
        "the empty prefix lists everything"
    );
    assert!(archive.list("audit/t3/").await.unwrap().is_empty());
}

async fn deleted_objects_are_gone_from_get_and_list(subject: Subject) {
    let archive = subject.archive;
    archive.put("d/1.txt", b"one".to_vec()).await.unwrap();
    archive.put("d/2.txt", b"two".to_vec()).await.unwrap();
    archive.delete("d/1.txt").await.unwrap();
    assert_eq!(archive.get("d/1.txt").await.unwrap(), None);
    assert_eq!(archive.list("d/").await.unwrap(), vec!["d/2.txt"]);
}

async fn invalid_keys_are_refused_before_any_request(subject: Subject) {
    for bad in ["", "/abs", "a/../b", "a//b", "a b"] {
        let error = subject.archive.put(bad, b"x".to_vec()).await.unwrap_err();
        assert!(
            matches!(error, ArchiveError::InvalidKey { .. }),
            "{bad}: {error}"
        );
        assert!(
            matches!(
                subject.archive.get(bad).await,
                Err(ArchiveError::InvalidKey { .. })
            ),
            "{bad}"
        );
    }
}

async fn verified_batches_round_trip_and_tampering_is_caught(subject: Subject) {
    let archive = subject.archive.as_ref();
    let items = vec![json!({"id": "a", "n": 1}), json!({"id": "b", "n": 2})];
    let batch = write_verified(archive, "audit/t1/2016/01/02/00000", "audit_entry", &items)
        .await
        .unwrap();
    let again = write_verified(archive, "audit/t1/2016/01/02/00000", "audit_entry", &items)
        .await
        .unwrap();
    assert_eq!(batch, again, "rewriting after a crash gives the same batch");
    let (manifest, read) = read_batch(archive, &batch.manifest_key).await.unwrap();
    assert_eq!((manifest.items, read), (2, items));
    archive
        .put(&batch.object_key, b"not gzip".to_vec())
        .await
        .unwrap();
    assert!(matches!(
        read_batch(archive, &batch.manifest_key).await,
        Err(ArchiveError::Verification { .. })
    ));
    archive.delete(&batch.object_key).await.unwrap();
    assert!(matches!(
        read_batch(archive, &batch.manifest_key).await,
        Err(ArchiveError::Missing { .. })
    ));
}

async fn the_archive_reports_healthy(subject: Subject) {
    subject.health.ping().await.unwrap();
}

/// Runs each behaviour against one adapter; `$make` returns `None` when the backend is absent
/// and the test may be skipped (never under CI).
macro_rules! adapter {
    ($adapter:ident = $make:expr; $($behaviour:ident),* $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    if let Some(subject) = $make {
                        super::$behaviour(subject).await;
                    }
                }
            )*
        }
    };
}

/// The whole suite, once per adapter.
macro_rules! conformance {
    ($($behaviour:ident),* $(,)?) => {
        adapter!(folder = super::folder(); $($behaviour),*);
        adapter!(blob = super::blob_subject().await; $($behaviour),*);
    };
}

conformance!(
    written_objects_read_back_byte_for_byte,
    large_objects_round_trip,
    a_put_replaces_the_whole_object,
    a_missing_object_reads_as_none_and_deletes_quietly,
    listing_by_prefix_is_sorted_and_complete_across_pages,
    deleted_objects_are_gone_from_get_and_list,
    invalid_keys_are_refused_before_any_request,
    verified_batches_round_trip_and_tampering_is_caught,
    the_archive_reports_healthy,
);

/// Blob only: a container that does not exist makes the readiness check fail, naming the backend.
#[tokio::test]
async fn blob_readiness_fails_for_a_missing_container() {
    let Some(archive) = blob_archive("no-such-container") else {
        return;
    };
    let error = HealthCheck::ping(&archive).await.unwrap_err().to_string();
    assert!(
        error.starts_with("blob is unavailable") && error.contains("no-such-container"),
        "{error}"
    );
}

/// Blob only: a wrong SAS signature is an error (not an empty result), so a bad setup fails loudly.
#[tokio::test]
async fn blob_with_a_bad_signature_fails_clearly() {
    let Some(archive) = blob_archive_with_sas("any", account_sas().replace("sig=", "sig=AAAA"))
    else {
        return;
    };
    let error = archive
        .put("x/1.txt", b"x".to_vec())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("archive blob failed to write x/1.txt: HTTP 403 "),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
}

/// Blob only: a container that does not exist lists as empty and reads as missing, like a folder
/// that does not exist; errors stay one line (status and code, not the service's XML).
#[tokio::test]
async fn blob_a_missing_container_lists_empty_and_errors_are_one_line() {
    let Some(archive) = blob_archive("missing-container") else {
        return;
    };
    assert!(archive.list("audit/").await.unwrap().is_empty());
    assert_eq!(archive.get("audit/x.json").await.unwrap(), None);
    let error = archive
        .put("audit/x.json", b"x".to_vec())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "archive blob failed to write audit/x.json: HTTP 404 ContainerNotFound"
    );
}
