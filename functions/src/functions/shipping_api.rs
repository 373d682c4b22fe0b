//! The shipping operations of an order, served by `OrdersApi` (the host routes
//! `/api/v1/orders/{*path}` to it):
//!
//! - `GET /orders/{id}/shipping/rates`: the carrier's quotes for the order's items to its
//!   shipping address, reused for `SHIPPING_RATES_CACHE_SECONDS` while the order is unchanged
//!   (keyed by its ETag). Each quote the carrier is asked for sends it the address: recorded in
//!   the audit trail as a disclosure (`gdpr.disclosure.{carrier}`, ids only).
//! - `GET /orders/{id}/tracking`: where the parcel is (status and scans), from the carrier's
//!   tracker, reused as long as the carrier's `Cache-Control: max-age` says (else
//!   `SHIPPING_TRACKING_CACHE_SECONDS`); an order without a label yet answers `shipped: false`.
//!
//! Who may read: as for the order (employees; a client only for their own orders). Carrier
//! failures are problem documents without personal data: the carrier refused (`502`, its error
//! code only), the carrier cannot be reached or its breaker is open (`503` with `Retry-After`);
//! an order without a shipping address is `409`.

mod problems;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::shipment::TrackingStatus;
use shared::shipping::labels::{disclosure_action, request_for};
use shared::shipping::{QuotedRates, RateQuote, ShipAddress, Tracking, TrackingEvent};

use crate::api::openapi::{Access, Operation};
use crate::api::reads::record_read;
use crate::api::{ApiError, Caller};
use crate::functions::orders_api::visibility::{order_read, visible_order};
use crate::startup::AppState;

/// The operations (tagged `shipping`).
pub fn operations() -> Vec<Operation> {
    const ANY: Access = Access::SignedIn("employees; a client only for their own orders");
    vec![
        Operation::new(
            Method::GET,
            "/api/v1/orders/{id}/shipping/rates",
            "getShippingRates",
            "The carrier's quotes for shipping an order to its address",
            get(rates),
        )
        .access(ANY)
        .returns::<ShippingRates>(200, "Quotes, cheapest first")
        .errors(&[401, 403, 404, 409, 502, 503]),
        Operation::new(
            Method::GET,
            "/api/v1/orders/{id}/tracking",
            "getOrderTracking",
            "Where an order's parcel is",
            get(tracking),
        )
        .access(ANY)
        .returns::<OrderTracking>(
            200,
            "Tracking status and scans; Cache-Control says for how long",
        )
        .errors(&[401, 403, 404, 502, 503]),
    ]
    .into_iter()
    .map(|operation| operation.tag("shipping"))
    .collect()
}

/// `GET /orders/{id}/shipping/rates`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShippingRates {
    pub order_id: String,
    /// The carrier adapter asked (`easypost`).
    pub carrier: String,
    /// Cheapest first.
    pub rates: Vec<RateQuote>,
    pub quoted_at: DateTime<Utc>,
}

/// `GET /orders/{id}/tracking`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderTracking {
    pub order_id: String,
    /// Whether the order has a label (a tracking number) yet.
    pub shipped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TrackingStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_delivery: Option<DateTime<Utc>>,
    /// Oldest first.
    pub events: Vec<TrackingEvent>,
}

async fn rates(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let order = visible_order(&state, &caller, &id).await?;
    let Some(address) = &order.shipping_address else {
        return Ok(problems::no_address());
    };
    let Some(carrier) = state.outbound.carrier.clone() else {
        return Ok(problems::not_configured());
    };
    record_read(
        &state,
        &caller,
        order_read("order.shipping.rates.read", &order),
    )
    .await?;
    let key = (
        caller.tenant().as_str().to_owned(),
        order.id.clone(),
        order.etag.clone(),
    );
    let quoted = match state.shipping_cache.rates.get(&key) {
        Some((quoted, _)) => quoted,
        None => {
            let audit = caller
                .audit(&disclosure_action(carrier.name()), "order", &order.id)
                .about_customer(&order.customer_id);
            state
                .ports
                .audit
                .append_audit(caller.tenant(), audit)
                .await?;
            let request = request_for(&order, ShipAddress::of(address), &state.settings.shipping);
            let created = match carrier.create_shipment(&request).await {
                Ok(created) => created,
                Err(error) => return Ok(problems::carrier_failed(&order.id, &error)),
            };
            let mut rates = created.rates;
            rates.sort_by_key(|rate| rate.amount_cents);
            let quoted = QuotedRates {
                rates,
                quoted_at: shared::domain::now(),
            };
            let ttl = state.settings.shipping.rates_cache;
            state.shipping_cache.rates.put(key, quoted.clone(), ttl);
            quoted
        }
    };
    Ok(Json(ShippingRates {
        order_id: order.id,
        carrier: carrier.name().to_owned(),
        rates: quoted.rates,
        quoted_at: quoted.quoted_at,
    })
    .into_response())
}

async fn tracking(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let order = visible_order(&state, &caller, &id).await?;
    record_read(&state, &caller, order_read("order.tracking.read", &order)).await?;
    let shipment = state
        .ports
        .shipments
        .get_shipment(caller.tenant(), &order.id)
        .await?;
    let Some((shipment, tracker_id)) = shipment.and_then(|shipment| {
        let tracker = shipment.tracker_id.clone()?;
        shipment.has_label().then_some((shipment, tracker))
    }) else {
        return Ok(not_shipped(order.id));
    };
    let Some(carrier) = state.outbound.carrier.clone() else {
        return Ok(problems::not_configured());
    };
    let key = (caller.tenant().as_str().to_owned(), tracker_id.clone());
    let (tracking, fresh_for) = match state.shipping_cache.trackers.get(&key) {
        Some(cached) => cached,
        None => {
            let tracking = match carrier.tracker(&tracker_id).await {
                Ok(tracking) => tracking,
                Err(error) => return Ok(problems::carrier_failed(&order.id, &error)),
            };
            let ttl = tracking
                .max_age
                .unwrap_or(state.settings.shipping.tracking_cache);
            state
                .shipping_cache
                .trackers
                .put(key, tracking.clone(), ttl);
            (tracking, ttl)
        }
    };
    let answer = tracked(order.id, shipment.carrier, tracking);
    let mut response = Json(answer).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("private, max-age={}", fresh_for.as_secs())) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    Ok(response)
}

fn not_shipped(order_id: String) -> Response {
    let answer = OrderTracking {
        order_id,
        shipped: false,
        carrier: None,
        tracking_number: None,
        status: None,
        estimated_delivery: None,
        events: Vec::new(),
    };
    let mut response = Json(answer).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    response
}

fn tracked(order_id: String, carrier: String, tracking: Tracking) -> OrderTracking {
    OrderTracking {
        order_id,
        shipped: true,
        carrier: Some(carrier),
        tracking_number: Some(tracking.tracking_number),
        status: Some(tracking.status),
        estimated_delivery: tracking.estimated_delivery,
        events: tracking.events,
    }
}
