//! The fake ERP's own routes under `/sandbox/...` (not the ERP's): set a stock level, fail the
//! next calls, the outage drill, a state summary.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::Shared;
use crate::local::sandbox::listener;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/sandbox/stock", post(set_stock))
        .route("/sandbox/fail-next", post(fail_next))
        .route("/sandbox/outage", post(outage))
        .route("/sandbox/state", get(state))
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StockRequest {
    sku: String,
    on_hand: i64,
}

/// `POST /sandbox/stock` `{"sku":"KET-001","onHand":7}`.
async fn set_stock(State(erp): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<StockRequest>(&body) else {
        return bad_request("expected {\"sku\": \"KET-001\", \"onHand\": 7}");
    };
    if !erp.memory.lock().set_on_hand(&request.sku, request.on_hand) {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such SKU"}))).into_response();
    }
    Json(json!({"sku": request.sku, "onHand": request.on_hand})).into_response()
}

#[derive(Deserialize)]
struct FailRequest {
    count: u32,
}

/// `POST /sandbox/fail-next` `{"count":N}`.
async fn fail_next(State(erp): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<FailRequest>(&body) else {
        return bad_request("expected {\"count\": N}");
    };
    erp.memory.lock().fail_next = request.count;
    Json(json!({"count": request.count})).into_response()
}

/// `POST /sandbox/outage` `{"mode":"unavailable"|"refuse"|"none"}`.
async fn outage(State(erp): State<Shared>, body: axum::body::Bytes) -> Response {
    listener::set_outage(&erp.outage, &body)
}

/// `GET /sandbox/state`: stock per SKU, documents, calls.
async fn state(State(erp): State<Shared>) -> Json<Value> {
    let memory = erp.memory.lock();
    let stock: serde_json::Map<String, Value> = memory
        .products
        .iter()
        .map(|(sku, stocked)| (sku.clone(), json!(stocked.on_hand)))
        .collect();
    let documents: Vec<Value> = memory
        .documents
        .iter()
        .map(|(reference, posted)| {
            json!({
                "documentReference": reference,
                "documentNumber": posted.number,
                "kind": posted.movement.kind.as_str(),
            })
        })
        .collect();
    Json(json!({
        "onHand": stock,
        "stockChanges": memory.log.len(),
        "documents": documents,
        "calls": memory.calls,
        "failNext": memory.fail_next,
        "outage": erp.outage.get().as_str(),
    }))
}
