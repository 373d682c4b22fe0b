//! A sandbox of the shipping carrier (EasyPost's REST API v2, the subset the adapter in
//! `shared/src/shipping/easypost/` calls), served by `handler local` on a loopback port so that
//! the app ships parcels with no network.
//!
//! Start it with [`CarrierSandbox::start`]; [`RunningCarrier::base_url`] is what the app's
//! `CARRIER_BASE_URL` becomes. State lives in memory.
//!
//! # The API (EasyPost's paths, fields, status codes and error bodies)
//!
//! - HTTP Basic with the API key made up at start as the user name; anything else is `401`.
//! - `POST /v2/shipments`: three rates (USPS `GroundAdvantage`, `Priority`, `Express`, in USD,
//!   priced by weight); a recipient without `street1`, `city` or `country` is `422`
//!   `ADDRESS.VERIFY.FAILURE`.
//! - `POST /v2/shipments/{id}/buy` `{"rate":{"id"}}`: a tracking code, a label URL and a tracker;
//!   a shipment already bought is `422` `SHIPMENT.POSTAGE.EXISTS`; an unknown rate `422`
//!   `SHIPMENT.RATE.NOT_FOUND`; an unknown shipment `404` `NOT_FOUND`.
//! - `GET /v2/shipments/{id}`, `GET /v2/trackers/{id}`: the tracker moves on by itself, one step
//!   every `step` (`LOCAL_CARRIER_STEP_SECONDS`): `pre_transit`, `in_transit`,
//!   `out_for_delivery`, `delivered`, each step a tracking detail. Tracker answers carry
//!   `Cache-Control: private, max-age=N` when the sandbox is set to (`POST /sandbox/cache`).
//!
//! # Admin routes (not EasyPost's)
//!
//! - `POST /sandbox/fail-next` `{"count":N,"status":500}`: the next N API calls answer that
//!   status with an EasyPost error body.
//! - `POST /sandbox/delay` `{"ms":N}`: every API call waits N ms before answering (timeouts).
//! - `POST /sandbox/outage` `{"mode":"unavailable"|"refuse"|"none"}`: as the other sandboxes'.
//! - `POST /sandbox/cache` `{"maxAge":N}` or `{"maxAge":null}`: the trackers' `max-age`.
//! - `GET /sandbox/state`: shipments created, labels bought, calls received.

mod admin;
mod api;
mod context;
mod server;
mod state;

pub use server::{CarrierSandbox, CarrierSandboxConfig, CarrierSandboxError, RunningCarrier};
