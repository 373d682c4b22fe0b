//! EasyPost's JSON objects, as much of them as the adapter reads or writes (unknown fields are
//! ignored: EasyPost adds fields without notice). The sandbox carrier of local mode writes and
//! reads the same types.

use serde::{Deserialize, Serialize};

/// `POST /v2/shipments` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireShipmentRequest {
    pub shipment: WireShipmentInput,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireShipmentInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub to_address: WireAddress,
    pub from_address: WireAddress,
    pub parcel: WireParcel,
}

/// An EasyPost Address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub street1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street2: Option<String>,
    pub city: String,
    pub zip: String,
    pub country: String,
}

/// An EasyPost Parcel: inches and ounces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WireParcel {
    pub length: f64,
    pub width: f64,
    pub height: f64,
    pub weight: f64,
}

/// An EasyPost Rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRate {
    pub id: String,
    #[serde(default = "rate_object")]
    pub object: String,
    pub carrier: String,
    pub service: String,
    /// A decimal string (`"7.58"`).
    pub rate: String,
    pub currency: String,
    #[serde(default)]
    pub delivery_days: Option<u32>,
    #[serde(default)]
    pub shipment_id: Option<String>,
}

fn rate_object() -> String {
    "Rate".into()
}

/// The rate a label was bought at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSelectedRate {
    pub id: String,
    pub carrier: String,
    pub service: String,
}

/// A PostageLabel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireLabel {
    #[serde(default)]
    pub label_url: Option<String>,
}

/// The tracker embedded in a bought shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTrackerRef {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
}

/// An EasyPost Shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireShipment {
    pub id: String,
    #[serde(default)]
    pub rates: Vec<WireRate>,
    #[serde(default)]
    pub tracking_code: Option<String>,
    #[serde(default)]
    pub postage_label: Option<WireLabel>,
    #[serde(default)]
    pub selected_rate: Option<WireSelectedRate>,
    #[serde(default)]
    pub tracker: Option<WireTrackerRef>,
}

/// `POST /v2/shipments/{id}/buy` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBuy {
    pub rate: WireRateRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRateRef {
    pub id: String,
}

/// One TrackingDetail (the location is not read: it may be the recipient's town).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTrackingDetail {
    #[serde(default)]
    pub message: Option<String>,
    pub status: String,
    /// RFC 3339.
    pub datetime: String,
}

/// An EasyPost Tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTracker {
    pub id: String,
    pub tracking_code: String,
    pub status: String,
    #[serde(default)]
    pub est_delivery_date: Option<String>,
    #[serde(default)]
    pub tracking_details: Vec<WireTrackingDetail>,
}

/// An error answer: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireErrorBody {
    pub error: WireError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

/// `"7.58"` → 758; `None` for anything but a non-negative decimal with at most 2 places.
pub fn cents_of(rate: &str) -> Option<i64> {
    let (units, fraction) = rate.trim().split_once('.').unwrap_or((rate.trim(), ""));
    if units.is_empty()
        || fraction.len() > 2
        || !units.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    units.checked_mul(100)?.checked_add(fraction)
}

/// 758 → `"7.58"`.
pub fn decimal_of(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_convert_to_cents_and_back() {
        assert_eq!(cents_of("7.58"), Some(758));
        assert_eq!(cents_of("12"), Some(1200));
        assert_eq!(cents_of("0.5"), Some(50));
        assert_eq!(cents_of("1.234"), None);
        assert_eq!(cents_of("-1.00"), None);
        assert_eq!(cents_of(""), None);
        assert_eq!(decimal_of(758), "7.58");
        assert_eq!(decimal_of(1205), "12.05");
    }
}
