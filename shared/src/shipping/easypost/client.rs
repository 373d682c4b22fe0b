//! [`EasyPost`]: the [`Carrier`] port over EasyPost's REST API v2, through the outbound client.
//!
//! Every call is safe to retry: creating a shipment only quotes (an unbought shipment costs
//! nothing), buying a shipment twice is refused by EasyPost (the label bought first is then
//! read with `GET /v2/shipments/{id}`), and the reads change nothing.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use http::HeaderValue;

use super::wire::{
    cents_of, WireAddress, WireBuy, WireErrorBody, WireParcel, WireRateRef, WireShipment,
    WireShipmentInput, WireShipmentRequest, WireTracker,
};
use crate::domain::shipment::TrackingStatus;
use crate::outbound::{OutboundClient, OutboundConfig, OutboundError, OutboundRequest, Secret};
use crate::shipping::carrier::{
    Carrier, CarrierShipment, Label, RateQuote, ShipmentRequest, Tracking, TrackingEvent,
};
use crate::shipping::error::CarrierError;
use crate::shipping::parcel::ShipAddress;

/// The outbound client's service name (readiness, logs).
pub const SERVICE: &str = "carrier";

/// Where EasyPost is and how to call it.
#[derive(Debug, Clone)]
pub struct EasyPostConfig {
    /// `https://api.easypost.com` (the adapter adds `/v2/...`).
    pub base_url: String,
    pub api_key: Secret,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// How long the breaker stays open.
    pub breaker_open_for: Duration,
}

/// EasyPost's adapter; cheap to clone.
#[derive(Debug, Clone)]
pub struct EasyPost {
    http: OutboundClient,
    authorization: HeaderValue,
}

impl EasyPost {
    pub fn new(config: EasyPostConfig) -> Result<Self, CarrierError> {
        let mut outbound = OutboundConfig::new(SERVICE, config.base_url.clone());
        outbound.total_timeout = config.timeout;
        outbound.breaker.open_for = config.breaker_open_for;
        let http =
            OutboundClient::new(outbound).map_err(|e| CarrierError::Config(e.to_string()))?;
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:", config.api_key.expose()));
        let mut authorization = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| CarrierError::Config("the API key is not valid in a header".into()))?;
        authorization.set_sensitive(true);
        Ok(Self {
            http,
            authorization,
        })
    }

    fn request(&self, request: OutboundRequest) -> OutboundRequest {
        request
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .retry_safe(true)
    }

    async fn call(
        &self,
        operation: &'static str,
        request: OutboundRequest,
    ) -> Result<crate::outbound::OutboundResponse, CarrierError> {
        self.http
            .send(self.request(request))
            .await
            .map_err(|source| failure(operation, source))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        request: OutboundRequest,
    ) -> Result<T, CarrierError> {
        let response = self.call(operation, request).await?;
        response.json().map_err(|e| unexpected(operation, e))
    }
}

#[async_trait::async_trait]
impl Carrier for EasyPost {
    fn name(&self) -> &str {
        "easypost"
    }

    async fn create_shipment(
        &self,
        request: &ShipmentRequest,
    ) -> Result<CarrierShipment, CarrierError> {
        const OPERATION: &str = "create shipment";
        let body = WireShipmentRequest {
            shipment: WireShipmentInput {
                reference: Some(request.reference.clone()),
                to_address: wire_address(&request.to),
                from_address: wire_address(&request.from),
                parcel: WireParcel {
                    length: request.parcel.length_in,
                    width: request.parcel.width_in,
                    height: request.parcel.height_in,
                    weight: request.parcel.weight_oz,
                },
            },
        };
        let outbound = OutboundRequest::post("/v2/shipments")
            .json(&body)
            .map_err(|e| unexpected(OPERATION, e))?;
        let shipment: WireShipment = self.json(OPERATION, outbound).await?;
        quoted(OPERATION, &shipment)
    }

    async fn buy_label(&self, shipment_id: &str, rate_id: &str) -> Result<Label, CarrierError> {
        const OPERATION: &str = "buy label";
        let body = WireBuy {
            rate: WireRateRef {
                id: rate_id.to_owned(),
            },
        };
        let outbound = OutboundRequest::post(format!("/v2/shipments/{}/buy", segment(shipment_id)))
            .json(&body)
            .map_err(|e| unexpected(OPERATION, e))?;
        let shipment: WireShipment = self.json(OPERATION, outbound).await?;
        label_of(shipment).ok_or_else(|| CarrierError::Unexpected {
            operation: OPERATION,
            reason: "the bought shipment has no tracking code".into(),
        })
    }

    async fn read_shipment(
        &self,
        shipment_id: &str,
    ) -> Result<(CarrierShipment, Option<Label>), CarrierError> {
        const OPERATION: &str = "read shipment";
        let outbound = OutboundRequest::get(format!("/v2/shipments/{}", segment(shipment_id)));
        let shipment: WireShipment = self.json(OPERATION, outbound).await?;
        let quoted = quoted(OPERATION, &shipment)?;
        Ok((quoted, label_of(shipment)))
    }

    async fn tracker(&self, tracker_id: &str) -> Result<Tracking, CarrierError> {
        const OPERATION: &str = "read tracker";
        let outbound = OutboundRequest::get(format!("/v2/trackers/{}", segment(tracker_id)));
        let response = self.call(OPERATION, outbound).await?;
        let max_age = max_age(&response.headers);
        let tracker: WireTracker = response.json().map_err(|e| unexpected(OPERATION, e))?;
        let events = tracker
            .tracking_details
            .iter()
            .filter_map(|detail| {
                Some(TrackingEvent {
                    status: TrackingStatus::parse_lenient(&detail.status),
                    message: detail.message.clone().unwrap_or_default(),
                    at: time(&detail.datetime)?,
                })
            })
            .collect();
        Ok(Tracking {
            tracker_id: tracker.id,
            tracking_number: tracker.tracking_code,
            status: TrackingStatus::parse_lenient(&tracker.status),
            events,
            estimated_delivery: tracker.est_delivery_date.as_deref().and_then(time),
            max_age,
        })
    }

    fn outbound(&self) -> Option<&OutboundClient> {
        Some(&self.http)
    }
}

/// The shipment's id and rates.
fn quoted(
    operation: &'static str,
    shipment: &WireShipment,
) -> Result<CarrierShipment, CarrierError> {
    let mut rates = Vec::with_capacity(shipment.rates.len());
    for rate in &shipment.rates {
        let amount_cents = cents_of(&rate.rate).ok_or_else(|| CarrierError::Unexpected {
            operation,
            reason: format!("rate {} has an unreadable amount", rate.id),
        })?;
        rates.push(RateQuote {
            id: rate.id.clone(),
            carrier: rate.carrier.clone(),
            service: rate.service.clone(),
            amount_cents,
            currency: rate.currency.clone(),
            delivery_days: rate.delivery_days,
        });
    }
    Ok(CarrierShipment {
        id: shipment.id.clone(),
        rates,
    })
}

/// The label of a shipment, when it was bought (it has a tracking code).
fn label_of(shipment: WireShipment) -> Option<Label> {
    let tracking_number = shipment.tracking_code?;
    Some(Label {
        shipment_id: shipment.id,
        tracking_number,
        label_url: shipment.postage_label.and_then(|label| label.label_url),
        status: shipment
            .tracker
            .as_ref()
            .and_then(|tracker| tracker.status.as_deref())
            .map_or(TrackingStatus::PreTransit, TrackingStatus::parse_lenient),
        tracker_id: shipment.tracker.map(|tracker| tracker.id),
        service: shipment
            .selected_rate
            .map(|rate| format!("{} {}", rate.carrier, rate.service)),
    })
}

fn wire_address(address: &ShipAddress) -> WireAddress {
    WireAddress {
        name: address.name.clone(),
        street1: address.line1.clone(),
        street2: address.line2.clone(),
        city: address.city.clone(),
        zip: address.postal_code.clone(),
        country: address.country.clone(),
    }
}

/// An id as one path segment (EasyPost ids are `[a-z]+_[0-9a-f]+`; anything else is escaped).
fn segment(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// `Cache-Control: max-age=N` of an answer.
pub(crate) fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("max-age") {
            seconds.trim().parse().ok().map(Duration::from_secs)
        } else {
            None
        }
    })
}

/// An outbound failure as the port tells it: a 4xx (but 429) is a refusal with EasyPost's
/// error code, the rest is unavailability.
fn failure(operation: &'static str, source: OutboundError) -> CarrierError {
    if let OutboundError::Status { status, body, .. } = &source {
        if status.is_client_error() && status.as_u16() != 429 {
            let code = body
                .json::<WireErrorBody>()
                .ok()
                .map(|body| body.error.code);
            tracing::warn!(
                operation,
                status = status.as_u16(),
                code = code.as_deref().unwrap_or(""),
                "the carrier refused a request"
            );
            return CarrierError::Refused {
                operation,
                status: status.as_u16(),
                code,
            };
        }
    }
    CarrierError::Unavailable { operation, source }
}

fn unexpected(operation: &'static str, error: impl std::fmt::Display) -> CarrierError {
    CarrierError::Unexpected {
        operation,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=42"),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(42)));
    }

    #[test]
    fn a_shipment_without_tracking_code_has_no_label() {
        let shipment = WireShipment {
            id: "shp_1".into(),
            rates: Vec::new(),
            tracking_code: None,
            postage_label: None,
            selected_rate: None,
            tracker: None,
        };
        assert_eq!(label_of(shipment), None);
    }
}
