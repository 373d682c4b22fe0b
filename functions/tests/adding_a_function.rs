//! Proves the README's "How to add a function": the two example functions
//! (`ExampleGreetingsApi`, HTTP with a queue output; `ExampleGreeter`, queue-triggered), built
//! with the `example-function` feature, are declared in the registry, their modules and the
//! module list, and nowhere else; yet they appear in the function.json files `handler functions
//! write` generates, in `handler functions list`, in the OpenAPI document, in the handler's
//! routes, and in the local runtime (the HTTP call queues a message the greeter consumes).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{client, poll_json_until, settings, spawn_local};
use function_app::local::LocalRuntime;
use function_app::registry;
use function_app::startup::{AppState, Mode};
use serde_json::{json, Value};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_example_functions_are_declared_in_the_files_the_readme_names_and_nowhere_else() {
    let root = repo_root();
    let mut files = Vec::new();
    rust_files(&root.join("functions/src"), &mut files);
    rust_files(&root.join("shared/src"), &mut files);
    let mut naming: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            text.contains("ExampleGreet") || text.contains("example_greet")
        })
        .map(|path| {
            path.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    naming.sort();
    assert_eq!(
        naming,
        [
            "functions/src/functions/example_greeter.rs",
            "functions/src/functions/example_greetings_api.rs",
            "functions/src/functions/mod.rs",
            "functions/src/registry.rs",
        ],
        "the README says a function is its module, one line in functions/mod.rs and one entry in the registry"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("## How to add a function")
            && readme.contains("functions/src/functions/example_greetings_api.rs"),
        "the README's section names the example"
    );
}

#[test]
fn generated_function_json_and_the_function_list_include_them() {
    let dir = tempfile::tempdir().unwrap();
    let handler = env!("CARGO_BIN_EXE_handler");
    let written = Command::new(handler)
        .args(["functions", "write", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(written.status.success(), "{written:?}");
    let read = |name: &str| -> Value {
        let path = dir.path().join(name).join("function.json");
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let api = read("ExampleGreetingsApi");
    assert_eq!(api["bindings"][0]["route"], "v1/example/greetings");
    assert_eq!(
        api["bindings"][2],
        json!({"type": "serviceBus", "direction": "out", "name": "exampleGreetings", "connection": "ServiceBusConnection", "queueName": "example-greetings"})
    );
    let greeter = read("ExampleGreeter");
    assert_eq!(greeter["bindings"][0]["type"], "serviceBusTrigger");
    assert_eq!(greeter["bindings"][0]["queueName"], "example-greetings");

    let listed = Command::new(handler)
        .args(["functions", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("ExampleGreetingsApi") && listed.contains("ExampleGreeter"),
        "{listed}"
    );
}

#[test]
fn the_openapi_document_describes_the_http_one() {
    let document = registry::api_document();
    let operation = &document["paths"]["/v1/example/greetings"]["post"];
    assert_eq!(
        operation["operationId"], "sendExampleGreeting",
        "{document}"
    );
    assert!(operation["responses"]["202"].is_object(), "{operation}");
    // Queue-triggered functions have no HTTP operation: the example adds exactly one.
    let example_operations = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|path| path.as_object().unwrap().values())
        .filter(|operation| operation["tags"] == json!(["example"]))
        .count();
    assert_eq!(example_operations, 1);
}

#[tokio::test]
async fn the_local_runtime_routes_the_http_call_and_feeds_the_queue_function() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = LocalRuntime::new(
        AppState::open(
            settings(dir.path(), &[("LOCAL_QUEUE_MAX_DELIVERY_COUNT", "2")]),
            Mode::Local,
        )
        .unwrap(),
    );
    let address = spawn_local(runtime.clone()).await;
    let mut background = runtime.start_background().unwrap();

    let url = format!("http://{address}/api/v1/example/greetings");
    let accepted = client()
        .post(&url)
        .json(&json!({"word": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let refused = client()
        .post(&url)
        .json(&json!({"word": "two words"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    // The greeter consumes the greeting; a greeting it fails on is retried, then dead-lettered
    // with its error.
    let failing = client()
        .post(&url)
        .json(&json!({"word": "fail"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failing.status(), 202);
    let dead = poll_json_until(
        &format!("http://{address}/admin/deadletters?entity=example-greetings"),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|items| !items.is_empty()),
    )
    .await;
    assert_eq!(dead.as_array().unwrap().len(), 1, "{dead}");
    assert!(
        dead[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("ExampleGreeter was asked to fail"),
        "{dead}"
    );
    assert_eq!(dead[0]["body"], r#"{"word":"fail"}"#, "{dead}");
    let pending = poll_json_until(
        &format!("http://{address}/admin/messages?entity=example-greetings"),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(Vec::is_empty),
    )
    .await;
    assert_eq!(pending, json!([]));
    background.abort_all();
}
