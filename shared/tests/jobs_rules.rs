//! The housekeeping jobs, in process on a seeded SQLite database and a folder archive: each
//! rule, per-tenant overrides, dry runs, leases, the time budget and the checkpoint.

mod jobs_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jobs_support::*;
use rusqlite::params;
use shared::archive::FolderArchive;
use shared::config::{Settings, SettingsSource};
use shared::erasure::ErasureContext;
use shared::jobs::{
    run_job, Job, JobContext, JobReport, Outcome, Progress, RunOptions, Trigger,
    DATABASE_MAINTENANCE, DATA_RETENTION_CLEANUP, NOTIFICATION_CLEANUP,
};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(seed_with: Option<Seed>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = Self { dir };
        drop(open_db(&env.data()));
        if let Some(spec) = seed_with {
            seed(&mut env.conn(), spec);
        }
        env
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn archive(&self) -> std::path::PathBuf {
        self.dir.path().join("archive")
    }

    fn conn(&self) -> rusqlite::Connection {
        connect(&self.data())
    }

    fn context(&self, extra: &[(&str, &str)]) -> JobContext {
        let mut pairs = vec![("DATA_DIR".to_owned(), self.data().display().to_string())];
        pairs.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let settings = Settings::load(&SettingsSource::from_pairs(pairs)).expect("settings");
        JobContext::new(
            Arc::new(open_db(&self.data())),
            Arc::new(FolderArchive::new(self.archive())),
            settings.retention.clone(),
            settings.jobs.clone(),
            ErasureContext::new(&settings),
        )
    }

    async fn run(&self, job: &'static Job, extra: &[(&str, &str)]) -> JobReport {
        run_job(job, &self.context(extra), options(false)).await
    }
}

fn options(dry_run: bool) -> RunOptions {
    RunOptions {
        trigger: Trigger::Cli,
        dry_run,
        is_past_due: false,
    }
}

fn total(report: &JobReport, kind: &str) -> u64 {
    report.totals.get(kind).copied().unwrap_or(0)
}

#[tokio::test]
async fn retention_deletes_old_notifications_and_archives_then_removes_old_audit_entries() {
    let spec = Seed::default();
    let env = Env::new(Some(spec));
    let report = env
        .run(&DATA_RETENTION_CLEANUP, &[("JOB_BATCH_SIZE", "7")])
        .await;
    assert_eq!(report.outcome, Outcome::Finished, "{report:?}");
    let conn = env.conn();
    let remaining = keys(&conn, "notifications", "1");
    let expected: BTreeSet<String> = seeded(spec, "read", |s| s.read_notifications)
        .union(&seeded(spec, "new", |s| s.new_notifications))
        .cloned()
        .collect();
    assert_eq!(remaining, expected);
    assert_eq!(
        total(&report, "notificationsDeleted"),
        (spec.tenants * spec.old_notifications) as u64
    );
    assert_eq!(
        report.counts["t2"]["notificationsDeleted"],
        spec.old_notifications as u64
    );

    assert_eq!(
        audit_keys(&conn),
        seeded(spec, "new-audit", |s| s.new_audit)
    );
    let archived = archived_audit_ids(&env.archive()).await;
    assert_eq!(
        archived.len(),
        spec.tenants * spec.old_audit,
        "each entry archived once"
    );
    assert_eq!(
        archived.into_iter().collect::<BTreeSet<_>>(),
        seeded(spec, "old-audit", |s| s.old_audit)
    );
    assert_eq!(
        total(&report, "auditEntriesArchived"),
        (spec.tenants * spec.old_audit) as u64
    );
    assert!(stray_files(&env.archive()).is_empty());
}

#[tokio::test]
async fn audit_archives_are_per_tenant_and_day_ids_only_and_verified() {
    let env = Env::new(Some(Seed {
        tenants: 1,
        old_audit: 20,
        ..Seed::default()
    }));
    env.run(&DATA_RETENTION_CLEANUP, &[("JOB_BATCH_SIZE", "2")])
        .await;
    let items = archived(&env.archive(), "audit").await;
    for (key, item) in &items {
        let day = item["at"].as_str().unwrap()[..10].replace('-', "/");
        assert!(
            key.starts_with(&format!("audit/t1/{day}/")),
            "{key} holds an entry of {day}"
        );
        assert!(key.ends_with(".manifest.json"));
        let fields: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let allowed: BTreeSet<&str> = [
            "id",
            "tenantId",
            "actorId",
            "action",
            "targetType",
            "targetId",
            "customerId",
            "at",
            "correlationId",
        ]
        .into();
        assert!(fields.is_subset(&allowed), "ids and codes only: {fields:?}");
    }
    // Parts of a day are numbered from 0 without gaps; batches of 2 make several per day.
    let mut per_day: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for key in items.iter().map(|(key, _)| key).collect::<BTreeSet<_>>() {
        let (day, part) = key.rsplit_once('/').unwrap();
        per_day
            .entry(day.to_owned())
            .or_default()
            .push(part.to_owned());
    }
    for (day, parts) in &per_day {
        let expected: Vec<String> = (0..parts.len())
            .map(|n| format!("{n:05}.manifest.json"))
            .collect();
        assert_eq!(parts, &expected, "{day}");
    }
    assert!(
        per_day.values().any(|parts| parts.len() >= 2),
        "{per_day:?}"
    );
}

#[tokio::test]
async fn a_later_run_for_an_already_archived_day_adds_parts_instead_of_overwriting() {
    let env = Env::new(Some(Seed {
        tenants: 1,
        old_audit: 4,
        ..Seed::default()
    }));
    env.run(&DATA_RETENTION_CLEANUP, &[]).await;
    let first = archived_audit_ids(&env.archive()).await;
    // More old entries for the same days turn up (restored from a backup, say).
    env.conn()
        .execute("UPDATE audit_log SET id = 'late-' || id, at = (SELECT MIN(at) FROM audit_log) WHERE id LIKE 'new-audit-0000%'", [])
        .ok();
    let at: String = env
        .conn()
        .query_row("SELECT ?1", params![ts(days_ago(11 * 366))], |r| r.get(0))
        .unwrap();
    env.conn()
        .execute(
            "INSERT INTO audit_log (tenant_id, id, actor_id, action, target_type, target_id, customer_id, at, correlation_id) VALUES ('t1', 'late-1', 'u', 'a', 'order', 'o', NULL, ?1, 'c')",
            params![at],
        )
        .unwrap();
    env.run(&DATA_RETENTION_CLEANUP, &[]).await;
    let second = archived_audit_ids(&env.archive()).await;
    assert!(
        first.iter().all(|id| second.contains(id)),
        "earlier archives are kept"
    );
    assert!(second.contains(&"t1/late-1".to_owned()));
}

#[tokio::test]
async fn tenant_overrides_change_the_retention_of_that_tenant_only() {
    let spec = Seed::default();
    let env = Env::new(Some(spec));
    // t1 keeps notifications 5 days, t2 keeps them 200 days; t3 uses the default 90.
    let overrides =
        r#"{"t1": {"notificationDays": 5}, "t2": {"notificationDays": 200, "auditYears": 20}}"#;
    let report = env
        .run(
            &DATA_RETENTION_CLEANUP,
            &[("RETENTION_TENANT_OVERRIDES", overrides)],
        )
        .await;
    let conn = env.conn();
    let left =
        |tenant: &str| keys(&conn, "notifications", &format!("tenant_id = '{tenant}'")).len();
    assert!(
        left("t1") < spec.new_notifications,
        "t1 lost even recent ones: {}",
        left("t1")
    );
    assert_eq!(
        left("t2"),
        spec.old_notifications + spec.read_notifications + spec.new_notifications
    );
    assert_eq!(left("t3"), spec.read_notifications + spec.new_notifications);
    assert!(
        report
            .counts
            .get("t2")
            .is_none_or(|counts| !counts.contains_key("auditEntriesArchived")),
        "t2 keeps audit 20 years"
    );
    assert_eq!(
        report.counts["t3"]["auditEntriesArchived"],
        spec.old_audit as u64
    );
}

#[tokio::test]
async fn notification_cleanup_removes_old_read_ones_after_archiving_a_summary_without_content() {
    let spec = Seed::default();
    let env = Env::new(Some(spec));
    let report = env
        .run(&NOTIFICATION_CLEANUP, &[("JOB_BATCH_SIZE", "4")])
        .await;
    assert_eq!(report.outcome, Outcome::Finished);
    let conn = env.conn();
    // Read and older than 30 days: the "read" ones and the read half of the "old" ones.
    let removed_old_read = spec.old_notifications.div_ceil(2);
    assert_eq!(
        keys(
            &conn,
            "notifications",
            "is_read = 1 AND id NOT LIKE 'new-%'"
        )
        .len(),
        0
    );
    assert_eq!(
        keys(&conn, "notifications", "is_read = 0").len(),
        spec.tenants * (spec.old_notifications / 2 + spec.new_notifications / 2)
    );
    assert_eq!(
        keys(&conn, "notifications", "id LIKE 'new-%'").len(),
        spec.tenants * spec.new_notifications
    );
    let per_tenant = (spec.read_notifications + removed_old_read) as u64;
    assert_eq!(report.counts["t1"]["readNotificationsRemoved"], per_tenant);

    let summaries = archived(&env.archive(), "notification-summaries").await;
    let summed: u64 = summaries
        .iter()
        .filter(|(_, s)| s["tenantId"] == "t1")
        .map(|(_, s)| s["removed"].as_u64().unwrap())
        .sum();
    assert_eq!(summed, per_tenant, "the summaries count what was removed");
    for (key, summary) in &summaries {
        let fields: BTreeSet<&str> = summary
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            ["category", "day", "removed", "tenantId"].into(),
            "{key}: counts only"
        );
        assert!(
            key.contains(&summary["day"].as_str().unwrap().replace('-', "/")),
            "{key}"
        );
    }
    let text = format!("{summaries:?}");
    assert!(!text.contains("content"), "no titles or messages archived");
}

#[tokio::test]
async fn maintenance_removes_orphans_and_expired_keys_and_reports_what_it_only_finds() {
    let env = Env::new(None);
    let conn = env.conn();
    let now = ts(days_ago(0));
    let old = ts(days_ago(2));
    let two_weeks_old = ts(days_ago(15));
    conn.execute_batch(&format!(
        "INSERT INTO customers VALUES ('t1','c1','N','e@x','p','a','{{}}','active','{now}','{now}','{now}','e'),
                                      ('t1','c2','N','e@x','p','a','{{}}','erased','{now}','{now}','{now}','e');
         INSERT INTO orders VALUES ('t1','o1','c1','created',100,'EUR',NULL,'{now}','{now}','e'),
                                   ('t2','o9','ghost','created',100,'EUR',NULL,'{now}','{now}','e');
         INSERT INTO order_items VALUES ('t1','o1',1,'p','P',1,100), ('t1','gone',1,'p','P',1,100), ('t1','gone',2,'p','P',1,100),
                                        ('t2','o1',1,'p','P',1,100);
         INSERT INTO notifications (tenant_id,id,recipient_kind,recipient_id,category,title,message,is_read,created_at) VALUES
             ('t1','n-ok','customer','c1','c','T','M',0,'{now}'), ('t1','n-erased','customer','c2','c','T','M',0,'{now}'),
             ('t1','n-missing','customer','nobody','c','T','M',0,'{now}'), ('t1','n-role','role','admin','c','T','M',0,'{now}'),
             ('t2','n-other-tenant','customer','c1','c','T','M',0,'{now}');
         INSERT INTO idempotency_keys VALUES ('t1','k-old','h','o1','{old}'), ('t1','k-new','h','o1','{now}');
         INSERT INTO processed_events (tenant_id, consumer, event_id, customer_id, outcome, processed_at) VALUES
             ('t1','NotificationDispatch','e-old-1','c1','done','{two_weeks_old}'), ('t1','NotificationDispatch','e-old-2','c1','done','{two_weeks_old}'),
             ('t2','NotificationDispatch','e-old-3','c1','done','{two_weeks_old}'), ('t1','NotificationDispatch','e-new','c1','done','{old}');"
    ))
    .unwrap();
    let report = env
        .run(&DATABASE_MAINTENANCE, &[("JOB_BATCH_SIZE", "2")])
        .await;
    assert_eq!(report.outcome, Outcome::Finished, "{report:?}");
    assert_eq!(
        keys(&conn, "order_items", "1"),
        ["t1/o1#1".to_owned()].into()
    );
    assert_eq!(
        keys(&conn, "notifications", "1"),
        ["t1/n-ok".to_owned(), "t1/n-role".to_owned()].into()
    );
    assert_eq!(
        keys(&conn, "idempotency_keys", "1"),
        ["t1/k-new".to_owned()].into()
    );
    assert_eq!(
        keys(&conn, "orders", "1").len(),
        2,
        "orders are never removed"
    );
    assert_eq!(report.counts["t1"]["orphanOrderItemsRemoved"], 2);
    assert_eq!(report.counts["t2"]["orphanOrderItemsRemoved"], 1);
    assert_eq!(report.counts["t1"]["orphanNotificationsRemoved"], 2);
    assert_eq!(report.counts["t2"]["orphanNotificationsRemoved"], 1);
    assert_eq!(report.counts["t1"]["expiredIdempotencyKeysRemoved"], 1);
    assert_eq!(report.counts["t1"]["expiredProcessedEventsRemoved"], 2);
    assert_eq!(report.counts["t2"]["expiredProcessedEventsRemoved"], 1);
    let remembered: Vec<String> = conn
        .prepare("SELECT event_id FROM processed_events")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        remembered,
        ["e-new"],
        "only the markers within the dedupe window stay"
    );
    assert_eq!(report.findings["ordersWithoutCustomer"]["t2"], 1);
    assert_eq!(report.findings["engine"]["integrity"][0], "ok");
    assert_eq!(report.findings["engine"]["optimized"], true);
}

#[tokio::test]
async fn dry_runs_change_nothing_and_report_what_a_real_run_does() {
    for job in [
        &DATA_RETENTION_CLEANUP,
        &NOTIFICATION_CLEANUP,
        &DATABASE_MAINTENANCE,
    ] {
        let env = Env::new(Some(Seed::default()));
        let before = snapshot(&env.conn());
        let dry = run_job(job, &env.context(&[("JOB_BATCH_SIZE", "5")]), options(true)).await;
        assert!(dry.dry_run);
        assert_eq!(
            snapshot(&env.conn()),
            before,
            "{job} dry run changed the store"
        );
        assert!(!env.archive().exists(), "{job} dry run wrote archives");
        let real = env.run(job, &[("JOB_BATCH_SIZE", "5")]).await;
        assert_eq!(
            dry.counts, real.counts,
            "{job}: the dry run predicts the real one"
        );
    }
    // JOB_DRY_RUN is read into the settings the jobs get.
    let env = Env::new(Some(Seed::default()));
    assert!(env.context(&[("JOB_DRY_RUN", "true")]).settings.dry_run);
}

#[tokio::test]
async fn a_run_yields_to_a_live_lease_and_takes_over_an_expired_or_dead_one() {
    let env = Env::new(Some(Seed::default()));
    let future = ts(days_ago(-1));
    let past = ts(days_ago(1));
    let conn = env.conn();
    let set_lease = |holder: &str, expires: &str| {
        conn.execute(
            "INSERT OR REPLACE INTO job_leases VALUES ('DataRetentionCleanup', ?1, ?2, ?3)",
            params![holder, ts(days_ago(0)), expires],
        )
        .unwrap();
    };
    set_lease("other-instance:1:run-a", &future);
    let before = snapshot(&conn);
    let report = env.run(&DATA_RETENTION_CLEANUP, &[]).await;
    assert_eq!(report.outcome, Outcome::Yielded);
    assert_eq!(report.yielded_to.as_deref(), Some("other-instance:1:run-a"));
    assert_eq!(snapshot(&conn), before, "a yielded run changes nothing");

    // A holder on this machine whose process is gone (pid of a finished child) is taken over.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    set_lease(
        &format!("{}:{pid}:run-b", shared::jobs::lease::machine()),
        &future,
    );
    assert_eq!(
        env.run(&DATA_RETENTION_CLEANUP, &[]).await.outcome,
        Outcome::Finished
    );

    set_lease("other-instance:1:run-c", &past);
    assert_eq!(
        env.run(&DATA_RETENTION_CLEANUP, &[]).await.outcome,
        Outcome::Finished,
        "an expired lease is free"
    );
    let leases: i64 = conn
        .query_row("SELECT COUNT(*) FROM job_leases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(leases, 0, "a finished run releases its lease");
}

#[tokio::test]
async fn concurrent_runs_never_process_the_same_items_twice() {
    let spec = Seed {
        old_audit: 120,
        old_notifications: 200,
        ..Seed::default()
    };
    let env = Env::new(Some(spec));
    let context = env.context(&[("JOB_BATCH_SIZE", "3")]);
    let second = env.context(&[("JOB_BATCH_SIZE", "3")]);
    let (a, b) = tokio::join!(
        run_job(&DATA_RETENTION_CLEANUP, &context, options(false)),
        run_job(&DATA_RETENTION_CLEANUP, &second, options(false))
    );
    let outcomes = [a.outcome, b.outcome];
    assert!(outcomes.contains(&Outcome::Finished), "{outcomes:?}");
    let both = |kind: &str| total(&a, kind) + total(&b, kind);
    assert_eq!(
        both("notificationsDeleted"),
        (spec.tenants * spec.old_notifications) as u64
    );
    assert_eq!(
        both("auditEntriesArchived"),
        (spec.tenants * spec.old_audit) as u64
    );
    let archived = archived_audit_ids(&env.archive()).await;
    assert_eq!(
        archived.len(),
        archived.iter().collect::<BTreeSet<_>>().len(),
        "no entry archived twice"
    );
    assert_eq!(archived.len(), spec.tenants * spec.old_audit);
}

#[tokio::test]
async fn the_time_budget_leaves_work_for_the_next_run_which_resumes_from_the_checkpoint() {
    let spec = Seed::default();
    let env = Env::new(Some(spec));
    let mut context = env.context(&[("JOB_BATCH_SIZE", "5")]);
    context.settings.max_runtime = Duration::ZERO;
    let first = run_job(&DATA_RETENTION_CLEANUP, &context, options(false)).await;
    assert_eq!(first.outcome, Outcome::Partial);
    assert!(!first.finished);
    // A run always gets through one batch, then the spent budget stops it.
    assert_eq!(first.totals["notificationsDeleted"], 5);
    assert_eq!(
        first.left["notifications"],
        (spec.tenants * spec.old_notifications - 5) as u64
    );
    assert_eq!(
        first.left["auditEntries"],
        (spec.tenants * spec.old_audit) as u64
    );
    assert!(
        first.summary().contains("left for the next run"),
        "{}",
        first.summary()
    );

    // A budget that runs out mid-way: some batches, a checkpoint, then the rest next run.
    context.settings.max_runtime = Duration::from_millis(30);
    let mut reports = vec![first];
    loop {
        let report = run_job(&DATA_RETENTION_CLEANUP, &context, options(false)).await;
        let outcome = report.outcome;
        reports.push(report);
        if outcome == Outcome::Finished || reports.len() > 500 {
            break;
        }
        assert_eq!(outcome, Outcome::Partial);
    }
    assert_eq!(reports.last().unwrap().outcome, Outcome::Finished);
    if reports.len() > 1 {
        assert!(
            reports[1].resumed.is_some(),
            "a run after a partial one resumes from the checkpoint"
        );
    }
    let sum = |kind: &str| reports.iter().map(|r| total(r, kind)).sum::<u64>();
    assert_eq!(
        sum("notificationsDeleted"),
        (spec.tenants * spec.old_notifications) as u64,
        "nothing done twice"
    );
    assert_eq!(
        sum("auditEntriesArchived"),
        (spec.tenants * spec.old_audit) as u64
    );
    let archived = archived_audit_ids(&env.archive()).await;
    assert_eq!(archived.len(), spec.tenants * spec.old_audit);
    let checkpoints: i64 = env
        .conn()
        .query_row("SELECT COUNT(*) FROM job_checkpoints", [], |r| r.get(0))
        .unwrap();
    assert_eq!(checkpoints, 0, "a finished run clears its checkpoint");
}

/// The retention erasure requests, oldest first: (tenant, customer, request id) of each
/// customer the job erased through the GDPR erasure.
fn retention_requests(env: &Env) -> Vec<(String, String, String)> {
    let conn = env.conn();
    let mut statement = conn
        .prepare("SELECT tenant_id, customer_id, id FROM erasure_requests WHERE requested_by = ?1 ORDER BY requested_at")
        .unwrap();
    statement
        .query_map([shared::jobs::erasure::RETENTION_REQUESTER], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Takes the job's lease away (as another run would) once `after` items were processed.
struct LeaseThief {
    data_dir: std::path::PathBuf,
    after: u64,
    processed: std::sync::atomic::AtomicU64,
}

impl Progress for LeaseThief {
    fn advance(&self, count: u64) {
        use std::sync::atomic::Ordering;
        let before = self.processed.fetch_add(count, Ordering::SeqCst);
        if before < self.after && before + count >= self.after {
            connect(&self.data_dir)
                .execute("UPDATE job_leases SET holder = 'thief:1:x'", [])
                .unwrap();
        }
    }
}

fn seed_customers(env: &Env) {
    let conn = env.conn();
    for (tenant, id, status, years) in [
        ("t1", "c-inactive-8y", "active", 8),
        ("t1", "c-inactive-9y", "active", 9),
        ("t1", "c-recent", "active", 1),
        ("t1", "c-erased-long-ago", "erased", 9),
        ("t1", "c-pending-erasure", "erasureRequested", 9),
        ("t2", "c-inactive-5y", "active", 5),
        ("t3", "c-inactive-5y", "active", 5),
    ] {
        let at = ts(days_ago(years * 366));
        conn.execute(
            r#"INSERT INTO customers VALUES (?1, ?2, 'Name', 'e@x', NULL, NULL, '{"inApp": true, "email": true, "sms": false}', ?3, ?4, ?4, ?4, 'e')"#,
            params![tenant, id, status, at],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn inactive_customers_are_erased_through_the_gdpr_erasure_once_each() {
    let env = Env::new(None);
    seed_customers(&env);
    let overrides = r#"{"t2": {"inactiveCustomerYears": 4}}"#;
    let context = env.context(&[("RETENTION_TENANT_OVERRIDES", overrides)]);
    let report = run_job(&DATA_RETENTION_CLEANUP, &context, options(false)).await;
    let calls = retention_requests(&env);
    let erased: Vec<(String, String)> = calls
        .iter()
        .map(|(t, c, _)| (t.clone(), c.clone()))
        .collect();
    assert_eq!(
        erased,
        [
            ("t1", "c-inactive-9y"),
            ("t1", "c-inactive-8y"),
            ("t2", "c-inactive-5y")
        ]
        .map(|(t, c)| (t.to_owned(), c.to_owned())),
        "least recently active first; t2's override applies; t3 keeps the 7 years"
    );
    assert!(calls
        .iter()
        .all(|(_, _, request)| request.starts_with("retention-")));
    assert_eq!(
        calls[0].2,
        shared::jobs::erasure::request_id("c-inactive-9y"),
        "a fixed request id per customer"
    );
    assert_eq!(report.counts["t1"]["customersAnonymised"], 2);
    // A second run finds nobody: erased customers are not erased again.
    let again = run_job(&DATA_RETENTION_CLEANUP, &context, options(false)).await;
    assert_eq!(retention_requests(&env).len(), 3);
    assert!(!again.totals.contains_key("customersAnonymised"));
}

#[tokio::test]
async fn a_run_whose_lease_was_taken_over_stops_without_committing_more() {
    let env = Env::new(Some(Seed {
        tenants: 1,
        old_notifications: 0,
        read_notifications: 0,
        new_notifications: 0,
        old_audit: 30,
        new_audit: 0,
    }));
    seed_customers(&env);
    let thief = Arc::new(LeaseThief {
        data_dir: env.data(),
        after: 1,
        processed: std::sync::atomic::AtomicU64::new(0),
    });
    let context = env.context(&[("JOB_BATCH_SIZE", "1")]).with_progress(thief);
    let report = run_job(&DATA_RETENTION_CLEANUP, &context, options(false)).await;
    assert_eq!(report.outcome, Outcome::LeaseLost, "{report:?}");
    assert_eq!(
        audit_keys(&env.conn()).len(),
        30,
        "no audit entry removed after the lease was lost"
    );
}

#[tokio::test]
async fn reports_go_to_the_audit_trail_and_the_run_table() {
    let env = Env::new(Some(Seed::default()));
    let report = env.run(&NOTIFICATION_CLEANUP, &[]).await;
    let conn = env.conn();
    let entries = keys(
        &conn,
        "audit_log",
        &format!(
            "target_id = '{}' AND action = 'job.finished'",
            report.run_id
        ),
    );
    assert_eq!(
        entries,
        ["_system", "t1", "t2", "t3"]
            .iter()
            .map(|t| format!("{t}/"))
            .map(|p| entries.iter().find(|e| e.starts_with(&p)).cloned().unwrap())
            .collect()
    );
    let stored: String = conn
        .query_row(
            "SELECT report FROM job_runs WHERE run_id = ?1",
            params![report.run_id],
            |r| r.get(0),
        )
        .unwrap();
    let stored: JobReport = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored.counts, report.counts);
    assert!(!stored.counts.is_empty());
}

/// Makes the erasure of `customer` fail at its last step (masking the profile) until
/// [`let_erasure_succeed`]: the state a half-done erasure leaves (`erasureRequested`, the
/// request `inProgress`).
fn make_erasure_fail(env: &Env, customer: &str) {
    env.conn()
        .execute_batch(&format!(
            "CREATE TRIGGER failing_erasure BEFORE UPDATE OF status ON customers
             WHEN NEW.id = '{customer}' AND NEW.status = 'erased'
             BEGIN SELECT RAISE(ABORT, 'database is locked'); END;"
        ))
        .unwrap();
}

fn let_erasure_succeed(env: &Env) {
    env.conn()
        .execute_batch("DROP TRIGGER failing_erasure")
        .unwrap();
}

/// How many times the retention erasure of `customer` was started.
fn erasure_attempts(env: &Env, customer: &str) -> u64 {
    env.conn()
        .query_row(
            "SELECT json_extract(progress, '$.attempts') FROM erasure_requests WHERE id = ?1",
            [shared::jobs::erasure::request_id(customer)],
            |r| r.get(0),
        )
        .unwrap()
}

/// A run in which an inactive customer's erasure keeps failing does not report `finished`:
/// it tries again, then stops with the checkpoint just before that customer, and the next run
/// completes the erasure. (A failed erasure used to be counted and skipped while the run
/// reported `finished` and dropped its checkpoint, leaving a customer `erasureRequested` with
/// their data intact until the next daily run.)
#[tokio::test]
async fn a_run_that_could_not_erase_a_customer_does_not_finish_and_the_next_run_erases_them() {
    let env = Env::new(None);
    seed_customers(&env);
    make_erasure_fail(&env, "c-inactive-9y");
    let context = env.context(&[("JOB_BATCH_SIZE", "1")]);

    let first = run_job(&DATA_RETENTION_CLEANUP, &context, options(false)).await;
    assert_eq!(first.outcome, Outcome::Failed, "{first:?}");
    assert!(!first.finished);
    assert!(
        first
            .error
            .as_deref()
            .is_some_and(|e| e.contains("c-inactive-9y")),
        "{first:?}"
    );
    assert!(
        erasure_attempts(&env, "c-inactive-9y") >= 2,
        "tried more than once"
    );
    let checkpoints: i64 = env
        .conn()
        .query_row("SELECT COUNT(*) FROM job_checkpoints", [], |r| r.get(0))
        .unwrap();
    assert_eq!(checkpoints, 1, "the checkpoint is kept for the next run");
    assert!(
        first.left.get("inactiveCustomers").copied().unwrap_or(0) >= 1,
        "{first:?}"
    );

    let_erasure_succeed(&env);
    let second = run_job(&DATA_RETENTION_CLEANUP, &context, options(false)).await;
    assert_eq!(second.outcome, Outcome::Finished, "{second:?}");
    let (status, email): (String, String) = env
        .conn()
        .query_row(
            "SELECT status, email FROM customers WHERE tenant_id = 't1' AND id = 'c-inactive-9y'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (status.as_str(), email != "e@x"),
        ("erased", true),
        "masked"
    );
    assert_eq!(second.totals["customersAnonymised"], 2, "{second:?}");
}

#[tokio::test]
async fn maintenance_announces_stalled_erasure_requests_again_and_removes_expired_outbox_records() {
    let env = Env::new(None);
    let conn = env.conn();
    let (now, hours_ago, later) = (
        ts(days_ago(0)),
        ts(chrono::Utc::now() - chrono::Duration::hours(2)),
        ts(chrono::Utc::now() + chrono::Duration::hours(1)),
    );
    conn.execute_batch(&format!(
        "INSERT INTO customers VALUES ('t1','c1','N','e@x','p','a','{{}}','erasureRequested','{now}','{now}','{now}','e');
         INSERT INTO erasure_requests (tenant_id, id, customer_id, requested_by, status, requested_at, updated_at, queued_at) VALUES
             ('t1','r-stalled','c1','u','accepted','{hours_ago}','{hours_ago}','{hours_ago}'),
             ('t1','r-fresh','c1','u','accepted','{now}','{now}','{now}'),
             ('t1','r-started','c1','u','inProgress','{hours_ago}','{hours_ago}','{hours_ago}');
         INSERT INTO outbox (seq, tenant_id, scope, message, created_at, expires_at) VALUES
             (1,'t2','customer:c9','{{\"messageId\":\"expired\"}}','{hours_ago}','{now}'),
             (2,'t2','customer:c9','{{\"messageId\":\"live\"}}','{now}','{later}');"
    ))
    .unwrap();
    let report = env
        .run(
            &DATABASE_MAINTENANCE,
            &[("ERASURE_REQUEUE_AFTER_MINUTES", "30")],
        )
        .await;
    assert_eq!(report.outcome, Outcome::Finished, "{report:?}");
    assert_eq!(
        report.counts["t1"]["erasureRequestsRequeued"], 1,
        "{report:?}"
    );
    assert_eq!(
        report.counts["t2"]["expiredOutboxRecordsRemoved"], 1,
        "{report:?}"
    );
    let announced: Vec<(i64, String)> = conn
        .prepare("SELECT seq, json_extract(message, '$.messageId') FROM outbox ORDER BY seq")
        .unwrap()
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get::<_, Option<String>>(1)?.unwrap_or_default(),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(announced.len(), 2, "{announced:?}");
    assert_eq!(announced[0], (2, "live".to_owned()));
    assert_eq!(
        announced[1].1, "r-stalled",
        "the same MessageId as the first time"
    );
    let queued: String = conn
        .query_row(
            "SELECT queued_at FROM erasure_requests WHERE id = 'r-stalled'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(queued > hours_ago, "queuedAt moved: {queued}");
}
