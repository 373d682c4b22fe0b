//! The `function.json` files under `functions/` are exactly what the registry declares, one
//! folder per function and no other: the router and the host's view of the app cannot drift.
//! (`handler functions write` regenerates them.)
// With the example functions of "How to add a function" built in, the registry has two
// functions on purpose not written to functions/: this file checks the real app.
#![cfg(not(feature = "example-function"))]

use std::collections::BTreeSet;
use std::path::Path;

use function_app::registry::{function_json_text, FUNCTIONS};

fn functions_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_function_json_matches_the_registry() {
    for def in FUNCTIONS {
        let path = functions_dir().join(def.name).join("function.json");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("{}: {error}; run `handler functions write`", path.display())
        });
        assert_eq!(
            on_disk,
            function_json_text(def),
            "{} differs from the registry; run `handler functions write`",
            path.display()
        );
    }
}

#[test]
fn there_is_no_function_folder_the_registry_does_not_declare() {
    let declared: BTreeSet<&str> = FUNCTIONS.iter().map(|def| def.name).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(functions_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("function.json").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let on_disk: BTreeSet<&str> = on_disk.iter().map(String::as_str).collect();
    assert_eq!(on_disk, declared);
}

#[test]
fn every_binding_the_handler_reads_or_writes_is_declared() {
    for def in FUNCTIONS {
        let json = def.function_json();
        let bindings = json["bindings"].as_array().unwrap();
        let names: Vec<&str> = bindings
            .iter()
            .map(|b| b["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&def.trigger_binding),
            "{}: trigger binding",
            def.name
        );
        for output in def.outputs {
            assert!(
                names.contains(&output.name),
                "{}: output {}",
                def.name,
                output.name
            );
        }
        let triggers = bindings
            .iter()
            .filter(|b| b["type"].as_str().unwrap().ends_with("Trigger"))
            .count();
        assert_eq!(triggers, 1, "{}: exactly one trigger", def.name);
    }
}

#[test]
fn host_json_declares_the_custom_handler_as_azure_needs_it() {
    let text = std::fs::read_to_string(functions_dir().join("../host.json")).unwrap();
    let host: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(host["version"], "2.0");
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "handler"
    );
    assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
    assert_eq!(
        host["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
    assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");
    assert_eq!(host["extensions"]["http"]["routePrefix"], "api");
    assert!(host["functionTimeout"].is_string());
}
