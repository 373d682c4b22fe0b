//! The OpenAPI document and the live routes agree: every documented operation is served (not
//! 404/405), every other method on a documented path is refused (405), every documented path
//! belongs to the HTTP function whose route the host matches it with, every `$ref` resolves,
//! and the copy API Management imports (`apim-policies/openapi.json`) is the current document.

mod common;

#[cfg(not(feature = "example-function"))]
use std::path::Path;

use common::{client, settings, spawn_handler};
#[cfg(not(feature = "example-function"))]
use function_app::api::openapi::document_text;
use function_app::registry::api_document as document;
use function_app::registry::{match_http_route, FUNCTIONS};
use function_app::startup::{AppState, Mode};
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A documented path with every `{param}` filled in (`{check}` takes a real check name, since an
/// unknown one is a legitimate 404).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{check}" => "live",
            parameter if parameter.starts_with('{') => "x-1",
            literal => literal,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The real app's document (the example functions of "How to add a function" are not in it).
#[cfg(not(feature = "example-function"))]
#[test]
fn apim_copy_is_the_current_document() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apim-policies/openapi.json");
    let on_disk = std::fs::read_to_string(&path).expect("apim-policies/openapi.json exists");
    assert!(on_disk == document_text(&document()), "apim-policies/openapi.json is stale: run `handler openapi --write apim-policies/openapi.json`");
}

#[test]
fn document_is_openapi_3_1_and_every_reference_resolves() {
    let document = document();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["servers"][0]["url"], "/api");
    let text = document.to_string();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap();
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {target}"));
        assert!(schemas.contains_key(name), "$ref {target} does not resolve");
    }
    assert!(
        text.len() < 131_072,
        "API Management's loadTextContent limit"
    );
}

#[test]
fn every_documented_path_belongs_to_the_function_the_host_routes_it_to() {
    let document = document();
    for path in document["paths"].as_object().unwrap().keys() {
        let url = format!("/api{}", concrete(path));
        for method in document["paths"][path].as_object().unwrap().keys() {
            let found = match_http_route(method, &url)
                .unwrap_or_else(|| panic!("{path}: no function route matches {url}"));
            assert!(
                found.function.accepts_method(method),
                "{path}: {} does not declare {method}",
                found.function.name
            );
        }
    }
    for def in FUNCTIONS
        .iter()
        .filter(|def| matches!(def.trigger, function_app::registry::Trigger::Http { .. }))
    {
        let documented = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .any(|(path, operations)| {
                operations.as_object().unwrap().keys().any(|method| {
                    match_http_route(method, &format!("/api{}", concrete(path)))
                        .is_some_and(|found| found.function.name == def.name)
                })
            });
        assert!(documented, "{} has no documented operation", def.name);
    }
}

#[tokio::test]
async fn the_served_document_matches_the_live_routes() {
    let dir = tempfile::tempdir().unwrap();
    let address =
        spawn_handler(AppState::open(settings(dir.path(), &[]), Mode::Local).unwrap()).await;
    let served: Value = client()
        .get(format!("http://{address}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, document());

    for (path, operations) in served["paths"].as_object().unwrap() {
        let url = format!("http://{address}/api{}", concrete(path));
        for method in METHODS {
            let request = client()
                .request(method.to_uppercase().parse().unwrap(), &url)
                .header("content-type", "application/json")
                .body("{}");
            let status = request.send().await.unwrap().status().as_u16();
            if operations.get(method).is_some() {
                assert!(
                    status != 404 && status != 405,
                    "{method} {path}: documented but answered {status}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path}: not documented but answered {status}"
                );
            }
        }
    }
}

/// Every OpenAPI link names an operation of the document and only parameters that operation
/// has, and every request body has an example.
#[test]
fn links_point_at_real_operations_and_every_body_has_an_example() {
    let document = document();
    let mut parameters_of = std::collections::BTreeMap::new();
    for (_, methods) in document["paths"].as_object().unwrap() {
        for (_, operation) in methods.as_object().unwrap() {
            let names: Vec<String> = operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    format!(
                        "{}.{}",
                        p["in"].as_str().unwrap(),
                        p["name"].as_str().unwrap()
                    )
                })
                .collect();
            parameters_of.insert(operation["operationId"].as_str().unwrap().to_owned(), names);
        }
    }
    let mut links = 0;
    for (path, methods) in document["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            if let Some(body) = operation.get("requestBody") {
                assert!(
                    body["content"]["application/json"].get("example").is_some(),
                    "{method} {path}: a body without an example"
                );
            }
            for (_, response) in operation["responses"].as_object().unwrap() {
                let Some(found) = response.get("links") else {
                    continue;
                };
                for (_, link) in found.as_object().unwrap() {
                    links += 1;
                    let target = link["operationId"].as_str().unwrap();
                    let known = parameters_of
                        .get(target)
                        .unwrap_or_else(|| panic!("{method} {path}: link to unknown {target}"));
                    for (name, _) in link["parameters"].as_object().unwrap() {
                        let qualified = if name.contains('.') {
                            name.clone()
                        } else {
                            format!("path.{name}")
                        };
                        assert!(
                            known.contains(&qualified),
                            "{method} {path}: {target} has no {qualified}"
                        );
                    }
                }
            }
        }
    }
    assert!(
        links >= 10,
        "the creating operations link to their uses ({links} links)"
    );
}
