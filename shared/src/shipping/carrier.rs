//! The [`Carrier`] port and the values it speaks in.
//!
//! The flow is EasyPost's: a shipment (sender, recipient, parcel) is created and answers its
//! rates; buying one rate gives the label, its tracking number and a tracker; the tracker says
//! where the parcel is.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::CarrierError;
use super::parcel::{Parcel, ShipAddress};
use crate::domain::shipment::TrackingStatus;

/// A shipment to create at the carrier.
#[derive(Debug, Clone, PartialEq)]
pub struct ShipmentRequest {
    /// Our reference (the order id), shown at the carrier.
    pub reference: String,
    pub from: ShipAddress,
    pub to: ShipAddress,
    pub parcel: Parcel,
}

/// One price for a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateQuote {
    /// The carrier's rate id (to buy it).
    #[serde(skip)]
    pub id: String,
    /// The carrier that moves the parcel (`USPS`, `DHL`, ...).
    pub carrier: String,
    pub service: String,
    /// The price in minor units.
    pub amount_cents: i64,
    pub currency: String,
    /// Days in transit, when the carrier says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_days: Option<u32>,
}

/// A shipment created at the carrier, with its rates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierShipment {
    /// The carrier's shipment id (`shp_...`).
    pub id: String,
    pub rates: Vec<RateQuote>,
}

impl CarrierShipment {
    /// The cheapest rate (the label is bought at it).
    pub fn cheapest(&self) -> Option<&RateQuote> {
        self.rates.iter().min_by_key(|rate| rate.amount_cents)
    }
}

/// A bought label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub shipment_id: String,
    pub tracking_number: String,
    pub label_url: Option<String>,
    pub tracker_id: Option<String>,
    /// `USPS Priority`.
    pub service: Option<String>,
    pub status: TrackingStatus,
}

/// One scan of the parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingEvent {
    pub status: TrackingStatus,
    /// The carrier's words (`Arrived at facility`).
    pub message: String,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub at: DateTime<Utc>,
}

/// What a tracker says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    pub tracker_id: String,
    pub tracking_number: String,
    pub status: TrackingStatus,
    /// Oldest first.
    pub events: Vec<TrackingEvent>,
    pub estimated_delivery: Option<DateTime<Utc>>,
    /// How long the answer may be reused (the carrier's `Cache-Control: max-age`).
    pub max_age: Option<Duration>,
}

impl Tracking {
    /// When the carrier saw it delivered: the first `delivered` scan, else now.
    pub fn delivered_at(&self) -> DateTime<Utc> {
        self.events
            .iter()
            .find(|event| event.status == TrackingStatus::Delivered)
            .map_or_else(crate::domain::now, |event| event.at)
    }
}

/// A shipping carrier (or aggregator): the app's port to it.
#[async_trait::async_trait]
pub trait Carrier: Send + Sync {
    /// The carrier's name in the app's records and the audit trail (`easypost`).
    fn name(&self) -> &str;

    /// Creates a shipment and answers its rates.
    async fn create_shipment(
        &self,
        request: &ShipmentRequest,
    ) -> Result<CarrierShipment, CarrierError>;

    /// Buys `rate_id` for the shipment: its label. Buying a shipment already bought is refused
    /// by the carrier ([`CarrierError::is_already_bought`]); [`Carrier::read_shipment`] then
    /// reads the label bought before.
    async fn buy_label(&self, shipment_id: &str, rate_id: &str) -> Result<Label, CarrierError>;

    /// A shipment created before: its rates, and its label if one was bought.
    async fn read_shipment(
        &self,
        shipment_id: &str,
    ) -> Result<(CarrierShipment, Option<Label>), CarrierError>;

    /// What the tracker says now.
    async fn tracker(&self, tracker_id: &str) -> Result<Tracking, CarrierError>;

    /// The outbound client, for readiness.
    fn outbound(&self) -> Option<&crate::outbound::OutboundClient> {
        None
    }
}
