//! The `handler` binary as a user runs it, as real processes: under a host-style port, in
//! local mode, one-off commands against the same data, restarts, and bad settings.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::process::{free_port, get, Running};
use serde_json::{json, Value};

fn handler(dir: &Path) -> Command {
    let mut command = common::process::handler(dir);
    command
        .env("LOCAL_QUEUE_RETRY_DELAY_MS", "0")
        .env("RUST_LOG", "warn");
    command
}

/// `handler serve` as the Functions host starts it on `port`, with the settings Azure requires.
fn under_the_host(dir: &Path, port: u16) -> Command {
    let mut command = handler(dir);
    command
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env(
            "AUTH_ENTRA_ISSUER",
            "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0",
        )
        .env("AUTH_ENTRA_AUDIENCE", "api://platform")
        .env("GDPR_PSEUDONYM_KEY", "test-pseudonym-key-0123456789abcdef");
    command
}

fn spawn(mut command: Command) -> Running {
    Running::spawn(command.stdout(Stdio::null()).stderr(Stdio::null()))
}

/// The first answer of `url` (whatever its status), within 10 s.
fn wait_until_up(url: &str) -> (u16, String) {
    common::process::wait_for(url, Duration::from_secs(10), |_| true)
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

fn json_stdout(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn serves_the_functions_host_on_its_port_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut process = spawn(under_the_host(dir.path(), port));
    let (status, _) = wait_until_up(&format!("http://127.0.0.1:{port}/"));
    assert_eq!(status, 200);
    let (status, body) = get(&format!("http://127.0.0.1:{port}/api/health/ready")).unwrap();
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"checks":{"folder":"ok","sqlite":"ok"},"outbound":[],"outbox":{"degradedAfterSeconds":60,"lagSeconds":0.0,"status":"ok"},"status":"ready"}"#
        )
    );
    assert!(process.stop().success(), "a graceful stop exits 0");
}

#[test]
fn under_the_host_log_lines_carry_the_function_the_invocation_and_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = under_the_host(dir.path(), port);
    command.env("RUST_LOG", "info,function_app::invocation_span=debug");
    let mut process = Running::spawn(command.stdout(Stdio::null()).stderr(Stdio::piped()));
    wait_until_up(&format!("http://127.0.0.1:{port}/"));
    let client = common::process::client();
    let url = format!("http://127.0.0.1:{port}/api/health/live");
    let send = |request: reqwest::blocking::RequestBuilder| {
        assert_eq!(request.send().unwrap().status(), 200)
    };
    send(
        client
            .get(&url)
            .header("X-Azure-Functions-InvocationId", "inv-1")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
    );
    send(
        client
            .get(&url)
            .header("X-Azure-Functions-InvocationId", "inv-2"),
    );
    process.stop();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut process.stderr().unwrap(), &mut stderr).unwrap();
    let finished: Vec<Value> = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "invocation finished")
        .collect();
    assert_eq!(finished.len(), 2, "one line per request: {stderr}");
    assert_eq!(finished[0]["span"]["function"], "Health");
    assert_eq!(finished[0]["span"]["invocation_id"], "inv-1");
    assert_eq!(
        finished[0]["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace"
    );
    assert_eq!(finished[0]["status"], 200);
    assert_eq!(finished[1]["span"]["invocation_id"], "inv-2");
    let new_trace = finished[1]["span"]["trace_id"].as_str().unwrap();
    assert!(
        new_trace.len() == 32
            && new_trace.bytes().all(|b| b.is_ascii_hexdigit())
            && new_trace != "4bf92f3577b34da6a3ce929d0e0e4736",
        "a new trace: {new_trace}"
    );
}

#[test]
fn local_mode_end_to_end_keeps_its_data_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let erp_port = free_port();
    let start = || {
        let mut command = handler(dir.path());
        command
            .env("LOCAL_PORT", port.to_string())
            .env("LOCAL_ERP_PORT", erp_port.to_string())
            .arg("local");
        spawn(command)
    };
    let mut first = start();
    let (status, ready) = wait_until_up(&format!("http://127.0.0.1:{port}/api/health/ready"));
    assert_eq!(status, 200);
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(
        (
            &ready["outbound"][0]["service"],
            &ready["outbound"][0]["breaker"]
        ),
        (&json!("paypal"), &json!("closed")),
        "local mode points payments at its PayPal sandbox: {ready}"
    );
    assert_eq!(
        (
            &ready["outbound"][1]["service"],
            &ready["outbound"][1]["breaker"]
        ),
        (&json!("erp"), &json!("closed")),
        "local mode points the ERP client at its fake ERP: {ready}"
    );
    let wsdl = get(&format!(
        "http://127.0.0.1:{erp_port}/sap/inventory/v1?wsdl"
    ));
    assert!(
        wsdl.as_ref()
            .is_some_and(|(status, body)| *status == 200 && body.contains("ErpInventoryService")),
        "the fake ERP serves its WSDL on LOCAL_ERP_PORT: {wsdl:?}"
    );

    // A one-off run of a timer function, from another process, through the protocol.
    let invoked = json_stdout(&run(
        handler(dir.path()).args(["invoke", "DataRetentionCleanup"])
    ));
    assert_eq!(invoked["ReturnValue"]["outcome"], "finished");
    assert_eq!(invoked["ReturnValue"]["timer"]["isPastDue"], false);

    // A message that makes the function fail, sent from another process.
    std::fs::write(dir.path().join("poison.json"), r#"{"customer": "c-1"}"#).unwrap();
    json_stdout(&run(handler(dir.path()).args([
        "queue",
        "send",
        "gdpr-requests",
        "--data",
        "poison.json",
    ])));
    let started = Instant::now();
    let dead = loop {
        let listed = json_stdout(&run(handler(dir.path()).args([
            "deadletters",
            "list",
            "--entity",
            "gdpr-requests",
        ])));
        if listed.as_array().is_some_and(|items| !items.is_empty()) {
            break listed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never dead-lettered"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(dead[0]["deliveryCount"], 10);
    assert_eq!(dead[0]["deadLetterReason"], "MaxDeliveryCountExceeded");
    assert!(dead[0]["lastError"]
        .as_str()
        .unwrap()
        .contains("unknown field `customer`"));
    assert!(first.stop().success());

    let mut second = start();
    wait_until_up(&format!("http://127.0.0.1:{port}/api/health/ready"));
    let (_, listed) = get(&format!("http://127.0.0.1:{port}/admin/deadletters")).unwrap();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed, dead,
        "the dead letter is still there after a restart"
    );
    assert!(second.stop().success());
}

#[test]
fn an_invalid_setting_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(handler(dir.path())
        .env("LOCAL_PORT", "seventy-seventy-one")
        .arg("local"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: invalid setting LOCAL_PORT=\"seventy-seventy-one\""),
        "{stderr}"
    );
    assert!(stderr.contains("fix: set LOCAL_PORT=7071"), "{stderr}");
}

#[test]
fn under_the_host_a_missing_token_issuer_stops_start_up_naming_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        run(handler(dir.path()).env("FUNCTIONS_CUSTOMHANDLER_PORT", free_port().to_string()));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: invalid setting AUTH_ENTRA_ISSUER")
            && last.contains("AUTH_EXTERNAL_ISSUER"),
        "{stderr}"
    );
}

#[test]
fn a_broken_local_settings_file_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("local.settings.json"), "{ \"Values\": ").unwrap();
    let output = run(handler(dir.path()).arg("local"));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stderr)
        .unwrap()
        .contains("local.settings.json"));
}

#[test]
fn without_the_hosts_port_it_says_how_to_run_locally() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&mut handler(dir.path()));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("FUNCTIONS_CUSTOMHANDLER_PORT is not set")
            && stderr.contains("handler local"),
        "{stderr}"
    );
}

#[test]
fn invoking_an_unknown_or_http_function_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = run(handler(dir.path()).args(["invoke", "Nope"]));
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no function named \"Nope\""));
    let http = run(handler(dir.path()).args(["invoke", "Health"]));
    assert!(String::from_utf8_lossy(&http.stderr).contains("is an HTTP function"));
}
