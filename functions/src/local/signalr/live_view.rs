//! The live view of local mode: `GET /live` is a page where a user pastes a dev token and sees
//! their notifications arrive (the official browser client, through the app's negotiate and the
//! local SignalR service). `GET /live/signalr.js` serves that client's browser bundle from the
//! npm package installed in the working folder (`.tools/signalr`, where `scripts/test-signalr`
//! puts it, or `node_modules` after `npm install @microsoft/signalr`); the handler does not ship
//! it. Served by `handler local` only.

use std::path::PathBuf;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::problem::Problem;

const PAGE: &str = include_str!("live_view.html");

/// Where the bundle is looked for, relative to the working folder, first found wins.
const BUNDLE_PATHS: &[&str] = &[
    ".tools/signalr/node_modules/@microsoft/signalr/dist/browser/signalr.min.js",
    "node_modules/@microsoft/signalr/dist/browser/signalr.min.js",
];

/// The page and the client bundle.
pub fn routes() -> Router {
    Router::new()
        .route("/live", get(|| async { Html(PAGE) }))
        .route("/live/signalr.js", get(bundle))
}

async fn bundle() -> Response {
    for path in BUNDLE_PATHS.iter().map(PathBuf::from) {
        if let Ok(bytes) = tokio::fs::read(&path).await {
            return (
                [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                bytes,
            )
                .into_response();
        }
    }
    Problem::new(StatusCode::NOT_FOUND, "Not Found")
        .detail(format!(
            "the @microsoft/signalr browser bundle is not installed here; fix: run `npm install --prefix .tools/signalr @microsoft/signalr@8` in the folder `handler local` runs in (looked for {})",
            BUNDLE_PATHS.join(", ")
        ))
        .into_response()
}
