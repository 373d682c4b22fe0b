//! The jobs as real processes: `handler jobs run <Name>` killed with SIGKILL at many moments
//! and run again ends with exactly the expected store and archive; two processes at once never
//! process the same items; the command's report and errors; the timer functions' replies.

mod common;
#[path = "../../shared/tests/jobs_support/mod.rs"]
mod jobs_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use jobs_support::*;
use serde_json::{json, Value};

/// The seeded data of the process tests.
const SEED: Seed = Seed {
    tenants: 3,
    old_notifications: 150,
    read_notifications: 20,
    new_notifications: 30,
    old_audit: 120,
    new_audit: 10,
};

/// Customers per tenant: inactive for 8 years (erased by retention), and active.
const INACTIVE: usize = 3;
const ACTIVE: usize = 2;

fn handler(dir: &Path, batch: &str) -> Command {
    let mut command = common::process::handler(dir);
    command
        .env("ARCHIVE_DIR", dir.join("archive"))
        .env("JOB_BATCH_SIZE", batch)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run_job(dir: &Path, args: &[&str]) -> (Output, Value) {
    let output = handler(dir, "10")
        .arg("jobs")
        .arg("run")
        .args(args)
        .output()
        .expect("run handler");
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

/// A data folder seeded once; each case copies it.
fn template() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    drop(open_db(&dir.path().join("data")));
    seed(&mut connect(&dir.path().join("data")), SEED);
    seed_customers(
        &connect(&dir.path().join("data")),
        SEED.tenants,
        INACTIVE,
        ACTIVE,
    );
    dir
}

fn copy_of(template: &Path, into: &Path) -> PathBuf {
    let data = into.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for entry in std::fs::read_dir(template.join("data")).unwrap().flatten() {
        std::fs::copy(entry.path(), data.join(entry.file_name())).unwrap();
    }
    into.to_owned()
}

/// Asserts the end state of a finished `DataRetentionCleanup` over [`SEED`].
async fn assert_retention_done(dir: &Path, context: &str) {
    let conn = connect(&dir.join("data"));
    let expected: BTreeSet<String> = seeded(SEED, "read", |s| s.read_notifications)
        .union(&seeded(SEED, "new", |s| s.new_notifications))
        .cloned()
        .collect();
    assert_eq!(
        keys(&conn, "notifications", "1"),
        expected,
        "{context}: notifications"
    );
    assert_eq!(
        audit_keys(&conn),
        seeded(SEED, "new-audit", |s| s.new_audit),
        "{context}: audit entries left"
    );
    let archived = archived_audit_ids(&dir.join("archive")).await;
    let unique: BTreeSet<String> = archived.iter().cloned().collect();
    assert_eq!(
        archived.len(),
        unique.len(),
        "{context}: an audit entry was archived twice"
    );
    assert_eq!(
        unique,
        seeded(SEED, "old-audit", |s| s.old_audit),
        "{context}: archived audit entries"
    );
    assert_eq!(
        stray_files(&dir.join("archive")),
        Vec::<String>::new(),
        "{context}: stray files"
    );
    for line in customers(&conn) {
        let erased = line.contains("/inactive-");
        assert_eq!(line.contains(" erased "), erased, "{context}: {line}");
        assert_eq!(
            line.contains("@example.com"),
            !erased,
            "{context}: the email of an erased customer is gone: {line}"
        );
    }
    let requests: Vec<(String, String, String)> = {
        let mut statement = conn.prepare("SELECT customer_id, status, requested_by FROM erasure_requests ORDER BY tenant_id, customer_id").unwrap();
        let rows = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(
        requests.len(),
        SEED.tenants * INACTIVE,
        "{context}: one erasure per inactive customer: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .all(|(_, status, by)| status == "completed" && by == "system:DataRetentionCleanup"),
        "{context}: {requests:?}"
    );
    let checkpoints: i64 = conn
        .query_row("SELECT COUNT(*) FROM job_checkpoints", [], |r| r.get(0))
        .unwrap();
    let leases: i64 = conn
        .query_row("SELECT COUNT(*) FROM job_leases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (checkpoints, leases),
        (0, 0),
        "{context}: checkpoint and lease cleared"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_at_random_moments_then_rerun_ends_with_exactly_the_expected_store_and_archive() {
    let template = template();
    // A reference run gives the duration to spread the kills over.
    let reference = tempfile::tempdir().unwrap();
    copy_of(template.path(), reference.path());
    let started = Instant::now();
    let (output, report) = run_job(reference.path(), &["DataRetentionCleanup"]);
    let duration = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["outcome"], "finished");
    assert_retention_done(reference.path(), "uninterrupted run").await;

    // Kill moments spread over the run (a low-discrepancy sequence over 90% of the reference
    // duration), until 24 kills have hit a running process (at most 48 attempts).
    const WANTED: u32 = 24;
    let mut killed_while_running = 0;
    let mut interrupted_mid_work = 0;
    for moment in 0..2 * WANTED {
        if killed_while_running >= WANTED {
            break;
        }
        let case = tempfile::tempdir().unwrap();
        let dir = copy_of(template.path(), case.path());
        let fraction = (f64::from(moment) * 0.618_034 + 0.05).fract() * 0.9;
        let delay = duration.mul_f64(fraction);
        let mut child: Child = handler(&dir, "10")
            .args(["jobs", "run", "DataRetentionCleanup"])
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_while_running += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let conn = connect(&dir.join("data"));
        let left = keys(&conn, "notifications", "1").len() + audit_keys(&conn).len();
        let all = SEED.tenants
            * (SEED.old_notifications
                + SEED.read_notifications
                + SEED.new_notifications
                + SEED.old_audit
                + SEED.new_audit);
        let done =
            SEED.tenants * (SEED.read_notifications + SEED.new_notifications + SEED.new_audit);
        if left < all && left > done {
            interrupted_mid_work += 1;
        }
        drop(conn);
        let (output, report) = run_job(&dir, &["DataRetentionCleanup"]);
        assert!(
            output.status.success(),
            "kill {moment} after {delay:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(report["outcome"], "finished", "kill {moment}: {report}");
        assert_retention_done(&dir, &format!("kill {moment} after {delay:?}")).await;
    }
    eprintln!("reference run {duration:?}; {killed_while_running} kills hit a running process, {interrupted_mid_work} mid-work");
    assert!(
        killed_while_running >= 20,
        "only {killed_while_running} kills hit a running process"
    );
    assert!(
        interrupted_mid_work >= 10,
        "only {interrupted_mid_work} kills interrupted the work itself"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_at_once_never_process_the_same_items() {
    let template = template();
    let case = tempfile::tempdir().unwrap();
    let dir = copy_of(template.path(), case.path());
    let spawn = || {
        handler(&dir, "5")
            .args(["jobs", "run", "DataRetentionCleanup"])
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let reports: Vec<Value> = [first, second]
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_slice(&output.stdout).unwrap()
        })
        .collect();
    let outcomes: Vec<&str> = reports
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"finished"), "{outcomes:?}");
    let sum = |kind: &str| {
        reports
            .iter()
            .map(|r| r["totals"][kind].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!(
        sum("notificationsDeleted"),
        (SEED.tenants * SEED.old_notifications) as u64
    );
    assert_eq!(
        sum("auditEntriesArchived"),
        (SEED.tenants * SEED.old_audit) as u64
    );
    if outcomes.contains(&"yielded") {
        let yielded = reports.iter().find(|r| r["outcome"] == "yielded").unwrap();
        assert!(yielded["yieldedTo"].as_str().is_some());
        assert_eq!(yielded["totals"], json!({}));
    }
    assert_retention_done(&dir, "two processes").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_prints_the_report_and_refuses_unknown_jobs_in_one_line() {
    let template = template();
    let case = tempfile::tempdir().unwrap();
    let dir = copy_of(template.path(), case.path());
    let before = snapshot(&connect(&dir.join("data")));
    let (output, report) = run_job(&dir, &["NotificationCleanup", "--dry-run"]);
    assert!(output.status.success());
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["job"], "NotificationCleanup");
    assert!(
        report["totals"]["readNotificationsRemoved"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        snapshot(&connect(&dir.join("data"))),
        before,
        "a dry run changes nothing"
    );
    assert!(!dir.join("archive").exists());

    let (output, report) = run_job(&dir, &["databasemaintenance"]);
    assert!(output.status.success());
    assert_eq!(report["findings"]["engine"]["integrity"], json!(["ok"]));

    let (output, _) = run_job(&dir, &["Nope"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no job named \"Nope\"") && stderr.contains("DataRetentionCleanup"),
        "{stderr}"
    );
}

/// A timer envelope as the host sends it, for `function`.
fn timer_envelope(is_past_due: bool) -> Value {
    let mut envelope = common::fixture("timer_request.json");
    let timer = envelope["Data"]["myTimer"].take();
    envelope["Data"] = json!({ "timer": timer });
    envelope["Data"]["timer"]["IsPastDue"] = json!(is_past_due);
    envelope
}

#[tokio::test(flavor = "multi_thread")]
async fn timer_replies_carry_the_report_and_say_when_the_run_was_past_due() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let settings = common::settings(dir.path(), &[("ARCHIVE_DIR", archive.to_str().unwrap())]);
    let state = function_app::startup::AppState::open(settings, function_app::startup::Mode::Local)
        .unwrap();
    seed(&mut connect(dir.path()), Seed::default());
    let address = common::spawn_handler(state).await;
    for (function, past_due, kind) in [
        ("DataRetentionCleanup", true, "notificationsDeleted"),
        ("NotificationCleanup", false, "readNotificationsRemoved"),
        ("DatabaseMaintenance", true, ""),
    ] {
        let reply: Value = common::client()
            .post(format!("http://{address}/{function}"))
            .json(&timer_envelope(past_due))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let report = &reply["ReturnValue"];
        assert_eq!(report["job"], function);
        assert_eq!(report["trigger"], "timer");
        assert_eq!(report["isPastDue"], past_due, "{function}");
        assert_eq!(report["outcome"], "finished");
        assert_eq!(report["timer"]["isPastDue"], past_due);
        if !kind.is_empty() {
            assert!(
                report["totals"][kind].as_u64().unwrap() > 0,
                "{function}: {report}"
            );
        }
        let log = reply["Logs"][0].as_str().unwrap();
        assert!(log.contains(function) && log.contains("finished"), "{log}");
        assert_eq!(log.contains("past due"), past_due, "{log}");
    }
}
