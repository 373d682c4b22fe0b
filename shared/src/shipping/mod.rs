//! The shipping carrier: the [`Carrier`] port (rates for a parcel, buying its label, reading
//! its tracker) and its adapter for EasyPost's REST API v2 ([`easypost`]).
//!
//! - [`carrier`]: the port and the values it speaks in (parcel request, rate, label, tracking).
//! - [`error`]: [`CarrierError`], what went wrong, with the carrier's error code and never its
//!   message (it may repeat an address).
//! - [`parcel`]: the parcel of an order (weight from its items, the sender's address).
//! - [`easypost`]: the adapter, through the outbound client (service `carrier`: timeout,
//!   retries, breaker in readiness, concurrency cap), HTTP Basic with the API key.
//!
//! The local sandbox of `handler local` serves the same EasyPost subset
//! (`functions/src/local/sandbox/carrier/`).

pub mod cache;
pub mod carrier;
pub mod easypost;
pub mod error;
pub mod labels;
pub mod parcel;

pub use cache::{QuotedRates, ShippingCache, TtlCache};
pub use carrier::{
    Carrier, CarrierShipment, Label, RateQuote, ShipmentRequest, Tracking, TrackingEvent,
};
pub use error::CarrierError;
pub use parcel::{Parcel, ShipAddress};
