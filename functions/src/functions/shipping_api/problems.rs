//! The shipping operations' problem documents: what the caller can do about each, with no
//! personal data (the carrier's message may repeat the address; only its error code is shown).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shared::shipping::CarrierError;

use crate::problem::Problem;

/// How long a caller should wait after a `503` (the breaker's default open time).
const RETRY_AFTER_SECONDS: &str = "30";

/// `409`: rates need the order's shipping address (the order's state, not the request, is
/// what is missing).
pub fn no_address() -> Response {
    Problem::new(StatusCode::CONFLICT, "No Shipping Address")
        .detail("the order has no shipping address, so no carrier can quote it")
        .into_response()
}

/// `503`: no carrier is configured.
pub fn not_configured() -> Response {
    retry_later(
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Shipping Not Configured")
            .detail("this app has no shipping carrier configured (CARRIER_BASE_URL)"),
    )
}

/// `502` when the carrier refused, `503` when it could not be reached.
pub fn carrier_failed(order_id: &str, error: &CarrierError) -> Response {
    tracing::warn!(order_id, error = %error, "carrier call failed");
    match error {
        CarrierError::Refused { status, code, .. } => {
            Problem::new(StatusCode::BAD_GATEWAY, "Carrier Refused")
                .detail("the carrier refused the request; check the order's shipping address")
                .extension("carrierStatus", json!(status))
                .extension("carrierCode", json!(code))
                .into_response()
        }
        CarrierError::Unavailable { .. } => retry_later(
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Carrier Unavailable")
                .detail("the carrier cannot be reached just now; try again later"),
        ),
        CarrierError::Unexpected { .. } | CarrierError::Config(_) => {
            Problem::new(StatusCode::BAD_GATEWAY, "Carrier Answer Unreadable")
                .detail("the carrier answered something this app cannot read")
                .into_response()
        }
    }
}

fn retry_later(problem: Problem) -> Response {
    let mut response = problem.into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}
