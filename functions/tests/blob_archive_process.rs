//! The `handler` binary with the Blob archive (`ARCHIVE=blob`) on Azurite, as real processes:
//! a retention run archives every old audit entry into the container (verified batches), local
//! mode's readiness check reports the Blob container, and a wrong combination of settings stops
//! start-up with one line.
//!
//! Needs `AZURITE_BLOB_ENDPOINT` (exported by `scripts/test`); without it the Azurite tests fail
//! under CI and are skipped with a printed reason otherwise.

#[path = "../../shared/tests/support/azurite.rs"]
mod azurite;
mod common;
#[path = "../../shared/tests/jobs_support/mod.rs"]
mod jobs_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{free_port, get, wait_for, Running};
use jobs_support::*;
use serde_json::Value;
use shared::archive::{read_batch, ArchiveStore, BlobArchive, BlobArchiveOptions, BlobAuth};

const SEED: Seed = Seed {
    tenants: 2,
    old_notifications: 10,
    read_notifications: 5,
    new_notifications: 5,
    old_audit: 40,
    new_audit: 5,
};

/// The handler with the Blob archive on Azurite, in a container of its own.
fn handler(dir: &Path, endpoint: &str, container: &str) -> Command {
    let mut command = common::process::handler(dir);
    command
        .env("ARCHIVE", "blob")
        .env("ARCHIVE_BLOB_ENDPOINT", endpoint)
        .env("ARCHIVE_BLOB_SAS", azurite::account_sas())
        .env("ARCHIVE_CONTAINER", container)
        .env("JOB_BATCH_SIZE", "15")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null());
    command
}

fn container_name() -> String {
    format!("e2e-{}", uuid::Uuid::new_v4().simple())
}

fn archive_of(endpoint: &str, container: &str) -> BlobArchive {
    let options = BlobArchiveOptions {
        call_timeout: Duration::from_secs(20),
        retries: false,
        ..Default::default()
    };
    BlobArchive::new(
        endpoint,
        container,
        BlobAuth::Sas(azurite::account_sas()),
        options,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retention_run_archives_old_audit_entries_into_the_blob_container() {
    let Some(endpoint) = azurite::azurite_endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    drop(open_db(&dir.path().join("data")));
    seed(&mut connect(&dir.path().join("data")), SEED);
    let container = container_name();

    // The container does not exist yet: with a SAS (emulator) the first write creates it.
    let output = handler(dir.path(), &endpoint, &container)
        .args(["jobs", "run", "DataRetentionCleanup"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcome"], "finished", "{report}");
    assert_eq!(
        report["totals"]["auditEntriesArchived"],
        (SEED.tenants * SEED.old_audit) as u64,
        "{report}"
    );

    let archive = archive_of(&endpoint, &container);
    let keys = archive.list("audit/").await.unwrap();
    let mut archived = Vec::new();
    for manifest in keys.iter().filter(|key| key.ends_with(".manifest.json")) {
        let (_, items) = read_batch(&archive, manifest).await.unwrap();
        archived.extend(items.iter().map(|item| {
            format!(
                "{}/{}",
                item["tenantId"].as_str().unwrap(),
                item["id"].as_str().unwrap()
            )
        }));
    }
    let unique: BTreeSet<String> = archived.iter().cloned().collect();
    assert_eq!(
        archived.len(),
        unique.len(),
        "an audit entry was archived twice"
    );
    assert_eq!(unique, seeded(SEED, "old-audit", |s| s.old_audit));
    assert_eq!(
        audit_keys(&connect(&dir.path().join("data"))),
        seeded(SEED, "new-audit", |s| s.new_audit),
        "only archived entries were deleted"
    );
}

#[test]
fn local_mode_readiness_checks_the_blob_container() {
    let Some(endpoint) = azurite::azurite_endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let missing = container_name();
    let _app = Running::spawn(
        handler(dir.path(), &endpoint, &missing)
            .env("LOCAL_PORT", port.to_string())
            .env("LOCAL_TIMERS", "off")
            .arg("local")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let url = format!("http://127.0.0.1:{port}/api/health/ready");
    let (status, body) = wait_for(&url, Duration::from_secs(15), |_| true);
    assert_eq!(status, 503, "the container does not exist yet: {body}");
    assert!(body.contains("blob"), "{body}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(archive_of(&endpoint, &missing).create_container_if_missing())
        .unwrap();
    let (_, body) = get(&url).unwrap();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["checks"]["blob"], "ok", "{body}");
    assert_eq!(body["status"], "ready", "{body}");
}

#[test]
fn blob_without_an_endpoint_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = common::process::handler(dir.path())
        .env("ARCHIVE", "blob")
        .arg("local")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: invalid setting ARCHIVE_BLOB_ENDPOINT"),
        "{stderr}"
    );
}
