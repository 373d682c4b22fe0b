//! What a newcomer meets in the first hour, as real processes: `handler local --port` and
//! `--data-dir`, invocation lines like `func start`'s, one-line errors with a `fix:` where a
//! command used to fail vaguely or do nothing, help text for every argument, and settings
//! validated before anything is written.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::process::{free_port, Running};
use serde_json::{json, Value};

fn handler(dir: &Path) -> Command {
    let mut command = common::process::handler(dir);
    command
        .env("LOCAL_QUEUE_RETRY_DELAY_MS", "0")
        .env("RUST_LOG", "warn");
    command
}

/// Runs a command that should end by itself; one that is still running after 30 s (a server
/// that started where an error was expected) is killed, so that the test fails, not hangs.
fn run(command: &mut Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

fn json_stdout(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Asserts the command failed with exit code 1 and one line `error: ...` holding every one of
/// `expected` and a `fix:`; that line.
fn one_line_error(output: &Output, expected: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("; fix: "), "a fix: {stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
    stderr
}

fn wait_until_up(url: &str) {
    common::process::wait_for(url, Duration::from_secs(20), |_| true);
}

/// Stops the process and returns what it wrote to stderr.
fn stop_and_read_stderr(process: &mut Running) -> String {
    process.stop();
    let mut stderr = String::new();
    process
        .stderr()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

#[test]
fn local_port_and_data_dir_flags_override_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (setting_port, flag_port) = (free_port(), free_port());
    let flag_dir = dir.path().join("flag-data");
    let mut command = handler(dir.path());
    command
        .env("LOCAL_PORT", setting_port.to_string())
        .args(["local", "--port", &flag_port.to_string(), "--data-dir"])
        .arg(&flag_dir);
    let mut process = Running::spawn(command.stdout(Stdio::null()).stderr(Stdio::null()));
    wait_until_up(&format!("http://127.0.0.1:{flag_port}/api/health/live"));
    assert!(
        common::process::get(&format!("http://127.0.0.1:{setting_port}/api/health/live")).is_none(),
        "LOCAL_PORT is overridden"
    );
    assert!(
        flag_dir.join("app.db").exists(),
        "the data is in --data-dir"
    );
    assert!(!dir.path().join("data").exists(), "DATA_DIR is overridden");
    assert!(process.stop().success());

    let zero = run(handler(dir.path()).args(["local", "--port", "0"]));
    assert_eq!(zero.status.code(), Some(2), "clap refuses port 0");
}

/// The `Executing`/`Executed` pairs of `function` in `log`: (reason, outcome) per invocation id.
fn invocations(log: &str, function: &str) -> Vec<(String, String)> {
    let executing = format!("Executing 'Functions.{function}' (Reason='");
    let executed = format!("Executed 'Functions.{function}' (");
    let mut pairs = Vec::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once(&executing) else {
            continue;
        };
        let (reason, id) = rest.split_once("', Id=").unwrap();
        let id = id.trim_end_matches(')');
        let end = log
            .lines()
            .filter_map(|line| line.split_once(&executed).map(|(_, rest)| rest))
            .find(|rest| rest.contains(&format!("Id={id},")))
            .unwrap_or_else(|| panic!("no Executed line for {id}: {log}"));
        let (outcome, duration) = end.split_once(", Id=").unwrap();
        assert!(
            duration.ends_with("ms)") && duration.contains(", Duration="),
            "{end}"
        );
        pairs.push((reason.to_owned(), outcome.to_owned()));
    }
    pairs
}

#[test]
fn local_mode_logs_each_invocation_like_func_start_with_ids_only() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = handler(dir.path());
    command
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "text")
        .env("LOCAL_TIMERS", "false")
        .env("LOCAL_QUEUE_MAX_DELIVERY_COUNT", "1")
        .args(["local", "--port", &port.to_string()]);
    let mut process = Running::spawn(command.stdout(Stdio::null()).stderr(Stdio::piped()));
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/admin/functions"));
    let client = common::process::client();
    // Forwarded HTTP (Health), enveloped HTTP (OrdersApi: 401 without a token, still a run).
    assert_eq!(
        client
            .get(format!("{base}/api/health/live"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .post(format!("{base}/api/v1/orders"))
            .json(&json!({}))
            .send()
            .unwrap()
            .status(),
        401
    );
    // A timer through the admin API, and a message its function fails on (personal data in
    // the body, which must not be logged).
    let timer = client
        .post(format!("{base}/admin/functions/DataRetentionCleanup"))
        .json(&json!({"input": ""}))
        .send()
        .unwrap();
    assert_eq!(timer.status(), 202);
    let sent = client
        .post(format!("{base}/admin/queues/gdpr-requests/messages"))
        .body(r#"{"email": "ada.secret@example.org"}"#)
        .send()
        .unwrap();
    assert_eq!(sent.status(), 201);
    let started = std::time::Instant::now();
    while common::process::get(&format!("{base}/admin/deadletters"))
        .is_some_and(|(_, body)| body == "[]")
    {
        assert!(started.elapsed() < Duration::from_secs(20), "never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = stop_and_read_stderr(&mut process);

    let host_api = "This function was programmatically called via the host APIs.".to_owned();
    assert_eq!(
        invocations(&log, "Health"),
        [(host_api.clone(), "Succeeded".to_owned())]
    );
    assert_eq!(
        invocations(&log, "OrdersApi"),
        [(host_api.clone(), "Succeeded".to_owned())]
    );
    assert_eq!(
        invocations(&log, "DataRetentionCleanup"),
        [(host_api, "Succeeded".to_owned())]
    );
    let erasure = invocations(&log, "GDPRDataAnonymization");
    assert_eq!(erasure.len(), 1, "{log}");
    assert!(
        erasure[0]
            .0
            .starts_with("New ServiceBus message detected on 'gdpr-requests' (SequenceNumber=")
            && erasure[0].1 == "Failed",
        "{erasure:?}"
    );
    assert!(!log.contains("ada.secret"), "no bodies in the log: {log}");
}

#[test]
fn replaying_an_unknown_dead_letter_names_it_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(handler(dir.path()).args(["deadletters", "replay", "999"]));
    one_line_error(
        &output,
        &[
            "no dead letter with sequence number 999",
            "handler deadletters list",
        ],
    );
}

#[test]
fn invoke_needs_data_for_a_service_bus_function_and_refuses_it_for_a_timer() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(handler(dir.path()).args(["invoke", "GDPRDataAnonymization"]));
    one_line_error(&output, &["gdpr-requests", "--data is required"]);

    std::fs::write(dir.path().join("body.json"), "{}").unwrap();
    let output =
        run(handler(dir.path()).args(["invoke", "DataRetentionCleanup", "--data", "body.json"]));
    one_line_error(
        &output,
        &[
            "DataRetentionCleanup is a timer function",
            "leave out --data",
        ],
    );
}

#[test]
fn invoking_a_timer_that_never_fired_says_why_its_schedule_status_is_null() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(handler(dir.path()).args(["invoke", "DataRetentionCleanup"]));
    let reply = json_stdout(&output);
    assert_eq!(
        reply["ReturnValue"]["timer"]["scheduleStatus"],
        Value::Null,
        "{reply}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("note: scheduleStatus is null because DataRetentionCleanup has not fired on its schedule yet"),
        "{stderr}"
    );
}

#[test]
fn unknown_queues_and_subscriptions_are_errors_not_empty_lists() {
    let dir = tempfile::tempdir().unwrap();
    let known = ["gdpr-requests", "order-events/subscriptions/notifications"];
    for args in [
        vec!["deadletters", "list", "--entity", "nosuch"],
        vec!["queue", "peek", "nosuch"],
    ] {
        let output = run(handler(dir.path()).args(&args));
        let line = one_line_error(&output, &["no queue or subscription named \"nosuch\""]);
        for entity in known {
            assert!(line.contains(entity), "{line}");
        }
    }
    let listed = json_stdout(&run(handler(dir.path()).args([
        "deadletters",
        "list",
        "--entity",
        "gdpr-requests",
    ])));
    assert_eq!(listed, json!([]));
    let peeked = json_stdout(&run(handler(dir.path()).args([
        "queue",
        "peek",
        "order-events/subscriptions/notifications",
    ])));
    assert_eq!(peeked, json!([]));
    let output = run(handler(dir.path()).args(["queue", "send", "nosuch", "--data", "-"]));
    one_line_error(
        &output,
        &["no queue or topic named \"nosuch\"", "gdpr-requests"],
    );
}

#[test]
fn a_data_dir_that_is_a_file_is_named_with_a_fix_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "not a folder").unwrap();
    for args in [
        vec!["local"],
        vec!["queue", "peek", "gdpr-requests"],
        vec!["jobs", "run", "DataRetentionCleanup"],
        vec!["dev-token", "--tenant", "t1", "--role", "admin"],
    ] {
        let output = run(handler(dir.path()).args(&args));
        one_line_error(
            &output,
            &[
                "invalid setting DATA_DIR=",
                "is a file, not a folder",
                "set DATA_DIR to a folder",
            ],
        );
    }
}

/// A folder this process cannot write to: a read-only temporary folder, or (as root, who may
/// write anywhere mode bits allow nothing) sysfs, where nobody can create files.
fn unwritable_folder(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let folder = dir.join("read-only");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
    let writable = |path: &Path| std::fs::write(path.join(".probe"), "").is_ok();
    if !writable(&folder) {
        return Some(folder);
    }
    let _ = std::fs::remove_file(folder.join(".probe"));
    let sysfs = PathBuf::from("/sys");
    (sysfs.is_dir() && !writable(&sysfs)).then_some(sysfs)
}

#[test]
fn an_unwritable_data_dir_is_named_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let Some(folder) = unwritable_folder(dir.path()) else {
        panic!("no unwritable folder to test with on this machine");
    };
    for args in [vec!["local"], vec!["jobs", "run", "DataRetentionCleanup"]] {
        let output = run(handler(dir.path()).env("DATA_DIR", &folder).args(&args));
        one_line_error(
            &output,
            &[
                "invalid setting DATA_DIR=",
                "is not writable",
                "set DATA_DIR to a folder this user can write to",
            ],
        );
    }
}

#[test]
fn a_dev_token_of_another_data_dir_is_refused_with_a_hint_that_never_echoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = handler(dir.path());
    command
        .env("RUST_LOG", "warn")
        .args(["local", "--port", &port.to_string()]);
    let mut process = Running::spawn(command.stdout(Stdio::null()).stderr(Stdio::piped()));
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/api/health/live"));
    let token = |data_dir: &Path| {
        let output = run(handler(dir.path()).env("DATA_DIR", data_dir).args([
            "dev-token",
            "--tenant",
            "t1",
            "--role",
            "admin",
        ]));
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let client = common::process::client();
    let call = |token: &str| {
        let response = client
            .get(format!("{base}/api/v1/customers"))
            .bearer_auth(token)
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };

    let foreign = token(&dir.path().join("elsewhere"));
    let (status, body) = call(&foreign);
    assert_eq!(status, 401, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("signed by the dev key of another DATA_DIR")
            && detail.contains("fix: mint it with the DATA_DIR that `handler local` uses"),
        "{detail}"
    );
    assert!(!body.contains(&foreign), "the token is not echoed");

    let (status, body) = call(&token(&dir.path().join("data")));
    assert_eq!(status, 200, "a token of this DATA_DIR works: {body}");
    let (status, body) = call("not-a-token");
    assert_eq!(status, 401);
    assert!(!body.contains("DATA_DIR"), "no hint for other 401s: {body}");

    let log = stop_and_read_stderr(&mut process);
    assert!(
        log.contains("signed by the dev key of another DATA_DIR"),
        "{log}"
    );
    assert!(!log.contains(&foreign), "the token is not logged");
}

#[test]
fn an_invalid_rust_log_or_local_timers_value_is_refused_saying_what_works() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(handler(dir.path())
        .env("RUST_LOG", "info,functions=loud")
        .arg("local"));
    one_line_error(
        &output,
        &[
            "invalid setting RUST_LOG=\"info,functions=loud\"",
            "fix: set RUST_LOG to a level",
        ],
    );
    let output = run(handler(dir.path())
        .env("LOCAL_TIMERS", "maybe")
        .arg("local"));
    let line = one_line_error(
        &output,
        &[
            "invalid setting LOCAL_TIMERS=\"maybe\"",
            "expected true or false",
            "fix: set LOCAL_TIMERS=true",
        ],
    );
    assert!(!line.contains("on/off"), "as documented: {line}");
    assert!(!dir.path().join("data").exists(), "nothing was written");
}

#[test]
fn under_the_host_settings_are_checked_before_the_database_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    // No GDPR_PSEUDONYM_KEY.
    let output = run(handler(dir.path())
        .env("RUST_LOG", "info")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", &port)
        .env(
            "AUTH_ENTRA_ISSUER",
            "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0",
        )
        .env("AUTH_ENTRA_AUDIENCE", "api://platform")
        .arg("serve"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("error: invalid setting GDPR_PSEUDONYM_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("migration"), "no migration ran: {stderr}");
    assert!(!dir.path().join("data/app.db").exists(), "no database");

    // No token issuer at all.
    let output = run(handler(dir.path())
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", &port)
        .env("GDPR_PSEUDONYM_KEY", "test-pseudonym-key-0123456789abcdef")
        .arg("serve"));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid setting AUTH_ENTRA_ISSUER"));
    assert!(!dir.path().join("data/app.db").exists(), "no database");
}

/// Argument and option lines of `handler <args> --help` that have no description.
fn undescribed(args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let output = run(handler(dir.path()).args(args).arg("--help"));
    assert!(output.status.success(), "{args:?}: {output:?}");
    let help = String::from_utf8(output.stdout).unwrap();
    let mut in_list = false;
    let mut missing = Vec::new();
    for line in help.lines() {
        if line.ends_with(':') && !line.starts_with(' ') {
            in_list = matches!(line, "Arguments:" | "Options:" | "Commands:");
            continue;
        }
        let entry = line.trim_start();
        if !in_list || entry.is_empty() || line.len() - entry.len() != 2 {
            continue;
        }
        let described = entry
            .split_once("  ")
            .is_some_and(|(_, description)| !description.trim().is_empty());
        if !described {
            missing.push(format!("handler {}: {entry}", args.join(" ")));
        }
    }
    missing
}

#[test]
fn every_argument_and_option_in_help_has_a_description() {
    let commands: [&[&str]; 15] = [
        &[],
        &["serve"],
        &["local"],
        &["invoke"],
        &["queue"],
        &["queue", "send"],
        &["queue", "peek"],
        &["deadletters"],
        &["deadletters", "list"],
        &["deadletters", "replay"],
        &["dev-token"],
        &["openapi"],
        &["jobs", "run"],
        &["functions", "list"],
        &["functions", "write"],
    ];
    let missing: Vec<String> = commands.iter().flat_map(|args| undescribed(args)).collect();
    assert!(
        missing.is_empty(),
        "without a description:\n{}",
        missing.join("\n")
    );
}
