//! Helpers shared by the integration tests: settings in a temporary data directory, fixtures,
//! and servers on loopback ports chosen by the OS.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use functions::app::{handler_router, AppState};
use functions::local::LocalRuntime;
use shared::config::{Settings, SettingsSource};
use shared::protocol::InvocationRequest;
use tokio::net::TcpListener;

/// Settings for a test: data in `dir`, no timers, retries without delay.
pub fn settings(dir: &Path, extra: &[(&str, &str)]) -> Settings {
    let mut pairs = vec![
        ("DATA_DIR".to_owned(), dir.display().to_string()),
        ("LOCAL_TIMERS".to_owned(), "off".to_owned()),
        ("LOCAL_QUEUE_RETRY_DELAY_MS".to_owned(), "0".to_owned()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Settings::load(&SettingsSource::from_pairs(pairs)).expect("test settings are valid")
}

/// A host fixture from `tests/fixtures/host` (see SOURCES.md there), as JSON.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/host").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

pub fn fixture_request(name: &str) -> InvocationRequest {
    serde_json::from_value(fixture(name)).expect("fixture is an envelope")
}

/// Serves the handler (what the Functions host calls) on a loopback port.
pub async fn spawn_handler(state: AppState) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, handler_router(state)).await;
    });
    address
}

/// Serves the whole local runtime (HTTP, queue workers; timers as the settings say).
pub async fn spawn_local(runtime: LocalRuntime) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = runtime.serve(listener, std::future::pending()).await;
    });
    address
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}
