//! The carrier adapter for EasyPost's REST API v2 (`https://api.easypost.com/v2`).
//!
//! The calls it makes, as EasyPost documents them:
//!
//! - `POST /v2/shipments` `{"shipment": {to_address, from_address, parcel, reference}}`: a
//!   Shipment (`shp_...`) with its `rates` (`id`, `carrier`, `service`, `rate` as a decimal
//!   string, `currency`, `delivery_days`);
//! - `POST /v2/shipments/{id}/buy` `{"rate": {"id": "rate_..."}}`: the Shipment with
//!   `tracking_code`, `postage_label.label_url`, `selected_rate` and its `tracker`;
//! - `GET /v2/shipments/{id}`: the same, to read a label bought before;
//! - `GET /v2/trackers/{id}`: a Tracker (`status`, `tracking_details`, `est_delivery_date`).
//!
//! Authentication is HTTP Basic with the API key as the user name and no password. Errors are
//! 4xx/5xx with `{"error": {"code", "message", "errors"}}`; the adapter keeps the code only.
//! Every call goes through the outbound client as service `carrier`.

mod client;
mod wire;

pub use client::{EasyPost, EasyPostConfig, SERVICE};
pub use wire::{
    cents_of, decimal_of, WireAddress, WireBuy, WireError, WireErrorBody, WireLabel, WireParcel,
    WireRate, WireRateRef, WireSelectedRate, WireShipment, WireShipmentInput, WireShipmentRequest,
    WireTracker, WireTrackerRef, WireTrackingDetail,
};
