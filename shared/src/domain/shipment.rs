//! Shipments: the parcel of a shipped order as the app knows it (carrier, tracking number,
//! label, tracking status), and the tracking statuses a carrier reports.
//!
//! One shipment per order at most: the order id is the shipment's id. It is recorded before the
//! carrier is asked for a label (status `requested`), so a redelivered `shipped` event finds it
//! and buys no second label.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a parcel is, in the carrier's (EasyPost's) tracking vocabulary, plus `requested`: the
/// shipment is recorded and its label not bought yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    Requested,
    Unknown,
    PreTransit,
    InTransit,
    OutForDelivery,
    Delivered,
    AvailableForPickup,
    ReturnToSender,
    Failure,
    Cancelled,
    Error,
}

impl TrackingStatus {
    pub const ALL: [Self; 11] = [
        Self::Requested,
        Self::Unknown,
        Self::PreTransit,
        Self::InTransit,
        Self::OutForDelivery,
        Self::Delivered,
        Self::AvailableForPickup,
        Self::ReturnToSender,
        Self::Failure,
        Self::Cancelled,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Unknown => "unknown",
            Self::PreTransit => "pre_transit",
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::AvailableForPickup => "available_for_pickup",
            Self::ReturnToSender => "return_to_sender",
            Self::Failure => "failure",
            Self::Cancelled => "cancelled",
            Self::Error => "error",
        }
    }

    /// The status named `text`; a value the carrier adds later reads as `unknown`.
    pub fn parse_lenient(text: &str) -> Self {
        Self::parse(text).unwrap_or(Self::Unknown)
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// No further tracking change is expected: tracking stops polling it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::ReturnToSender | Self::Cancelled | Self::Failure
        )
    }
}

/// One order's shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Shipment {
    /// The order's id (one shipment per order).
    pub order_id: String,
    #[serde(skip)]
    pub tenant_id: String,
    pub customer_id: String,
    /// The carrier adapter's name (`easypost`).
    pub carrier: String,
    pub status: TrackingStatus,
    /// The carrier's shipment id (EasyPost `shp_...`), once created there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_shipment_id: Option<String>,
    /// The carrier and service the label was bought for (`USPS Priority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The tracking number, once the label is bought.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    /// Where the label can be downloaded (it shows the address: removed by an erasure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_url: Option<String>,
    /// The carrier's tracker id (EasyPost `trk_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker_id: Option<String>,
    /// The `shipped` order event that asked for it.
    pub event_id: String,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    /// When the carrier reported it delivered.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::domain::timestamp::option::serialize"
    )]
    pub delivered_at: Option<DateTime<Utc>>,
    /// When a GDPR erasure masked it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::domain::timestamp::option::serialize"
    )]
    pub erased_at: Option<DateTime<Utc>>,
}

impl Shipment {
    /// A shipment recorded before the carrier is asked for a label.
    pub fn requested(
        tenant_id: &str,
        order_id: &str,
        customer_id: &str,
        carrier: &str,
        event_id: &str,
    ) -> Self {
        let now = crate::domain::now();
        Self {
            order_id: order_id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            customer_id: customer_id.to_owned(),
            carrier: carrier.to_owned(),
            status: TrackingStatus::Requested,
            carrier_shipment_id: None,
            service: None,
            tracking_number: None,
            label_url: None,
            tracker_id: None,
            event_id: event_id.to_owned(),
            created_at: now,
            updated_at: now,
            delivered_at: None,
            erased_at: None,
        }
    }

    /// Whether its label is bought (a tracking number is known).
    pub fn has_label(&self) -> bool {
        self.tracking_number.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_and_unknown_values_are_unknown() {
        for status in TrackingStatus::ALL {
            assert_eq!(TrackingStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            TrackingStatus::parse_lenient("teleported"),
            TrackingStatus::Unknown
        );
        assert!(TrackingStatus::Delivered.is_final());
        assert!(!TrackingStatus::OutForDelivery.is_final());
    }
}
