//! Notification retention benchmark (issue 4): `DataRetentionCleanup` deleting 1,000,000
//! notifications older than the retention on SQLite, as a real `handler jobs run` process in
//! batches with checkpoints, against a single raw SQL `DELETE` of the same rows on a copy of the
//! same database, in the same run. Peak memory is each process's maximum RSS
//! (`/usr/bin/time -v`).
//!
//! Run with `scripts/bench-retention` (it builds the release binaries first):
//! `bench_retention <handler> [rows]` seeds, runs both, prints a Markdown section;
//! `bench_retention raw-delete <data_dir>` is the baseline process it starts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{Duration, SecondsFormat, Utc};
use rusqlite::{params, Connection};
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Recent notifications kept by both (the delete must skip them).
const KEPT_PER_MILLION: u64 = 100_000;
const TENANTS: u64 = 10;

fn ts(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("raw-delete") => raw_delete(Path::new(
            args.get(2)
                .ok_or("usage: bench_retention raw-delete <data_dir>")?,
        )),
        Some(handler) => {
            let rows = args
                .get(2)
                .map(|n| n.parse())
                .transpose()?
                .unwrap_or(1_000_000);
            bench(Path::new(handler), rows)
        }
        None => Err("usage: bench_retention <handler binary> [rows]".into()),
    }
}

/// Seeds `due` notifications older than 90 days and some recent ones, over `TENANTS` tenants.
fn seed(data_dir: &Path, due: u64) -> Result<u64, BoxError> {
    drop(shared::store::sqlite::Db::open(&data_dir.join("app.db"))?);
    let mut conn = Connection::open(data_dir.join("app.db"))?;
    let kept = due * KEPT_PER_MILLION / 1_000_000;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO notifications (tenant_id, id, recipient_kind, recipient_id, category, title, message, is_read, created_at)
             VALUES (?1, ?2, 'customer', ?3, 'orderShipped', 'Your order has shipped', 'Order o-123 left the warehouse today.', ?4, ?5)",
        )?;
        let now = Utc::now();
        for i in 0..due + kept {
            let age = if i < due {
                Duration::days(91 + (i % 600) as i64)
            } else {
                Duration::days((i % 80) as i64)
            };
            let created = now - age - Duration::seconds((i % 86_400) as i64);
            insert.execute(params![
                format!("tenant-{:02}", i % TENANTS),
                format!("n-{i:09}"),
                format!("c-{}", i % 50_000),
                i % 2,
                ts(created)
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(kept)
}

/// The baseline: one `DELETE` statement of the same rows, timed in this process.
fn raw_delete(data_dir: &Path) -> Result<(), BoxError> {
    let conn = Connection::open(data_dir.join("app.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let cutoff = ts(Utc::now() - Duration::days(90));
    let started = Instant::now();
    let deleted = conn.execute(
        "DELETE FROM notifications WHERE created_at < ?1",
        params![cutoff],
    )?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({ "deleted": deleted, "seconds": seconds })
    );
    Ok(())
}

/// Runs `command` under `/usr/bin/time -v`: its stdout, wall seconds and peak RSS (KiB).
fn timed(mut command: Command) -> Result<(String, f64, u64), BoxError> {
    let started = Instant::now();
    let output = command.output()?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("benchmark process failed: {stderr}").into());
    }
    let rss = stderr
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes):")
        })
        .and_then(|value| value.trim().parse().ok())
        .ok_or("no peak RSS in /usr/bin/time -v output")?;
    Ok((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        seconds,
        rss,
    ))
}

fn count(data_dir: &Path) -> Result<u64, BoxError> {
    let conn = Connection::open(data_dir.join("app.db"))?;
    Ok(conn.query_row("SELECT COUNT(*) FROM notifications", [], |row| row.get(0))?)
}

/// One `handler jobs run DataRetentionCleanup` over a copy of the seeded database.
struct JobRun {
    batch: u32,
    seconds: f64,
    wall: f64,
    rss_kib: u64,
}

fn run_job(
    handler: &Path,
    work: &Path,
    pristine: &Path,
    due: u64,
    kept: u64,
    batch: u32,
) -> Result<JobRun, BoxError> {
    let dir = work.join(format!("job-{batch}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(pristine.join("app.db"), dir.join("app.db"))?;
    eprintln!("running handler jobs run DataRetentionCleanup (JOB_BATCH_SIZE={batch}) ...");
    let mut job = Command::new("/usr/bin/time");
    job.arg("-v")
        .arg(handler)
        .args(["jobs", "run", "DataRetentionCleanup"]);
    job.env("DATA_DIR", &dir)
        .env("ARCHIVE_DIR", dir.join("archive"))
        .env("RUST_LOG", "warn")
        .env("JOB_BATCH_SIZE", batch.to_string());
    let (stdout, wall, rss_kib) = timed(job)?;
    let report: Value = serde_json::from_str(&stdout)?;
    let deleted = report["totals"]["notificationsDeleted"]
        .as_u64()
        .unwrap_or(0);
    if deleted != due || count(&dir)? != kept || report["outcome"] != "finished" {
        return Err(format!("the job did not delete exactly the due rows: {report}").into());
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(JobRun {
        batch,
        seconds: report["durationMs"].as_f64().unwrap_or(0.0) / 1000.0,
        wall,
        rss_kib,
    })
}

fn bench(handler: &Path, due: u64) -> Result<(), BoxError> {
    let work = tempfile::tempdir()?;
    let (pristine, raw_dir): (PathBuf, PathBuf) =
        (work.path().join("pristine"), work.path().join("raw"));
    std::fs::create_dir_all(&pristine)?;
    std::fs::create_dir_all(&raw_dir)?;
    eprintln!("seeding {due} due notifications (+ recent ones) ...");
    let kept = seed(&pristine, due)?;
    let batches: Vec<u32> = std::env::var("BENCH_BATCH_SIZES")
        .unwrap_or_else(|_| "1000,5000".into())
        .split(',')
        .map(|n| n.trim().parse())
        .collect::<Result<_, _>>()?;
    let mut jobs = Vec::new();
    for batch in batches {
        jobs.push(run_job(handler, work.path(), &pristine, due, kept, batch)?);
    }

    eprintln!("running the raw DELETE ...");
    std::fs::copy(pristine.join("app.db"), raw_dir.join("app.db"))?;
    let mut raw = Command::new("/usr/bin/time");
    raw.arg("-v")
        .arg(std::env::current_exe()?)
        .arg("raw-delete")
        .arg(&raw_dir);
    let (stdout, raw_wall, raw_rss) = timed(raw)?;
    let raw_report: Value = serde_json::from_str(&stdout)?;
    let raw_seconds = raw_report["seconds"].as_f64().unwrap_or(0.0);
    if raw_report["deleted"].as_u64() != Some(due) || count(&raw_dir)? != kept {
        return Err(
            format!("the raw DELETE did not delete exactly the due rows: {raw_report}").into(),
        );
    }

    let rate = |seconds: f64| {
        if seconds > 0.0 {
            due as f64 / seconds
        } else {
            0.0
        }
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("## Notification retention (issue 4)\n");
    println!(
        "`scripts/bench-retention`: {due} notifications older than 90 days (and {kept} recent ones to keep) over {TENANTS} tenants in \
SQLite; `handler jobs run DataRetentionCleanup` (release build; each batch is one transaction with the job's checkpoint and lease \
extension) against a single raw `DELETE FROM notifications WHERE created_at < ?` of the same rows on a copy of the same database, \
in the same run. Peak memory: each process's maximum RSS (`/usr/bin/time -v`). {} CPU(s).\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| | rows deleted | time (s) | rows/s | process wall time (s) | peak RSS (MiB) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for job in &jobs {
        println!(
            "| `DataRetentionCleanup`, `JOB_BATCH_SIZE={}` | {due} | {:.2} | {:.0} | {:.2} | {:.1} |",
            job.batch,
            job.seconds,
            rate(job.seconds),
            job.wall,
            mib(job.rss_kib)
        );
    }
    println!("| raw SQL `DELETE` (baseline) | {due} | {raw_seconds:.2} | {:.0} | {raw_wall:.2} | {:.1} |", rate(raw_seconds), mib(raw_rss));
    println!("\nTargets: at least 50,000 rows/s, peak memory under 100 MB (100 MB = 95.4 MiB).");
    for job in &jobs {
        println!(
            "- `JOB_BATCH_SIZE={}`: {:.0} rows/s ({}), {:.1} MiB ({}), {:.1}x the raw statement's time.",
            job.batch,
            rate(job.seconds),
            if rate(job.seconds) >= 50_000.0 { "met" } else { "NOT met" },
            mib(job.rss_kib),
            if mib(job.rss_kib) < 95.4 { "met" } else { "NOT met" },
            if raw_seconds > 0.0 { job.seconds / raw_seconds } else { 0.0 }
        );
    }
    println!(
        "\nThe job pays for bounded batches, a durable checkpoint per batch and a lease (a kill at any moment loses nothing, other \
writers wait at most one batch); the raw `DELETE` is one transaction that holds the write lock throughout and, killed, starts over."
    );
    Ok(())
}
