//! The sandbox carrier's EasyPost routes: the drills (outage, fail-next, delay) and
//! authentication first, then the operation; every refusal is an EasyPost error body.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use shared::shipping::easypost::{WireBuy, WireErrorBody, WireShipmentRequest};

use super::context::Shared;
use super::state::{rates_for, shipment_view, tracker_view, Bought, Stored, Tracker};
use crate::local::sandbox::listener::ConnectionKill;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/v2/shipments", post(create_shipment))
        .route("/v2/shipments/{id}", get(read_shipment))
        .route("/v2/shipments/{id}/buy", post(buy))
        .route("/v2/trackers/{id}", get(read_tracker))
}

/// An EasyPost error answer.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = WireErrorBody {
        error: shared::shipping::easypost::WireError {
            code: code.to_owned(),
            message: message.to_owned(),
            errors: Vec::new(),
        },
    };
    (status, Json(body)).into_response()
}

/// What every API call goes through: the outage, the call count, the key, fail-next, the delay.
async fn gate(
    carrier: &Shared,
    connection: &ConnectionKill,
    headers: &HeaderMap,
) -> Option<Response> {
    let unavailable = || {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "Service unavailable",
        )
    };
    if let Some(answer) = carrier.outage.intercept(connection, unavailable) {
        return Some(answer);
    }
    let (failing, delay) = {
        let mut memory = carrier.memory.lock();
        memory.calls += 1;
        let failing = (memory.fail_next > 0).then(|| {
            memory.fail_next -= 1;
            memory.fail_status
        });
        (failing, memory.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if !authorized(carrier, headers) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "APIKEY.REQUIRED",
            "The API key is missing or not valid",
        ));
    }
    failing.map(|status| {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = if status.is_server_error() {
            "INTERNAL_SERVER_ERROR"
        } else {
            "SANDBOX.REFUSED"
        };
        error(status, code, "failure asked for by /sandbox/fail-next")
    })
}

/// HTTP Basic with the key as user name (EasyPost ignores the password).
fn authorized(carrier: &Shared, headers: &HeaderMap) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let text = String::from_utf8_lossy(&decoded);
    let user = text.split_once(':').map_or(text.as_ref(), |(user, _)| user);
    user == carrier.config.api_key
}

/// `POST /v2/shipments`.
async fn create_shipment(
    State(carrier): State<Shared>,
    ConnectInfo(connection): ConnectInfo<ConnectionKill>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(answer) = gate(&carrier, &connection, &headers).await {
        return answer;
    }
    let Ok(request) = serde_json::from_slice::<WireShipmentRequest>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "PARAMETER.INVALID",
            "expected {\"shipment\": {to_address, from_address, parcel}}",
        );
    };
    let to = &request.shipment.to_address;
    if to.street1.trim().is_empty() || to.city.trim().is_empty() || to.country.trim().is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ADDRESS.VERIFY.FAILURE",
            "Address not found",
        );
    }
    let mut memory = carrier.memory.lock();
    let id = memory.id("shp");
    let rates = rates_for(&mut memory, &id, request.shipment.parcel.weight);
    let stored = Stored {
        id: id.clone(),
        rates,
        bought: None,
    };
    let view = shipment_view(&stored, &carrier.base_url);
    memory.shipments.insert(id, stored);
    (StatusCode::CREATED, Json(view)).into_response()
}

/// `GET /v2/shipments/{id}`.
async fn read_shipment(
    State(carrier): State<Shared>,
    ConnectInfo(connection): ConnectInfo<ConnectionKill>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(answer) = gate(&carrier, &connection, &headers).await {
        return answer;
    }
    let memory = carrier.memory.lock();
    match memory.shipments.get(&id) {
        Some(stored) => Json(shipment_view(stored, &carrier.base_url)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource could not be found.",
        ),
    }
}

/// `POST /v2/shipments/{id}/buy`.
async fn buy(
    State(carrier): State<Shared>,
    ConnectInfo(connection): ConnectInfo<ConnectionKill>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(answer) = gate(&carrier, &connection, &headers).await {
        return answer;
    }
    let Ok(request) = serde_json::from_slice::<WireBuy>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "PARAMETER.INVALID",
            "expected {\"rate\": {\"id\": \"rate_...\"}}",
        );
    };
    let mut guard = carrier.memory.lock();
    let memory = &mut *guard;
    let tracker_id = memory.id("trk");
    let tracking_code = format!("9400{:018}", memory.labels_bought + 1);
    let Some(stored) = memory.shipments.get_mut(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource could not be found.",
        );
    };
    if stored.bought.is_some() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "SHIPMENT.POSTAGE.EXISTS",
            "Shipment already has postage",
        );
    }
    let Some(rate) = stored
        .rates
        .iter()
        .find(|rate| rate.id == request.rate.id)
        .cloned()
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "SHIPMENT.RATE.NOT_FOUND",
            "Rate not found for this shipment",
        );
    };
    stored.bought = Some(Bought {
        rate,
        tracking_code: tracking_code.clone(),
        tracker_id: tracker_id.clone(),
    });
    let view = shipment_view(stored, &carrier.base_url);
    memory.labels_bought += 1;
    memory.trackers.insert(
        tracker_id.clone(),
        Tracker {
            id: tracker_id,
            tracking_code,
            bought_at: chrono::Utc::now(),
        },
    );
    Json(view).into_response()
}

/// `GET /v2/trackers/{id}`.
async fn read_tracker(
    State(carrier): State<Shared>,
    ConnectInfo(connection): ConnectInfo<ConnectionKill>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(answer) = gate(&carrier, &connection, &headers).await {
        return answer;
    }
    let memory = carrier.memory.lock();
    let Some(tracker) = memory.trackers.get(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource could not be found.",
        );
    };
    let view = tracker_view(tracker, carrier.config.step, chrono::Utc::now());
    let mut response = Json(view).into_response();
    if let Some(seconds) = memory.max_age {
        if let Ok(value) = HeaderValue::from_str(&format!("private, max-age={seconds}")) {
            response.headers_mut().insert(header::CACHE_CONTROL, value);
        }
    }
    response
}
