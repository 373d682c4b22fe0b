//! The app's library: what every function of the `handler` binary uses.
//!
//! - [`protocol`]: the custom-handler protocol (host envelopes in, replies out), typed.
//! - [`auth`]: bearer-token validation (Entra ID, Entra External ID, the local dev issuer).
//! - [`config`]: every setting, from the environment or `local.settings.json`, validated.
//! - [`domain`]: domain types shared between functions (message bodies).
//! - [`store`]: storage ports and the embedded SQLite adapter.
//! - [`erasure`]: the GDPR erasure of a customer (requests and retention), its pseudonym key.
//! - [`jobs`]: housekeeping jobs (retention, notification cleanup, maintenance), resumable.
//! - [`archive`]: the archive store port, the folder adapter, verified NDJSON batches.
//! - [`outbound`]: the HTTP client of remote services (retries, breaker, OAuth client credentials).
//! - [`payments`]: the payment gateway port and its adapter for PayPal.
//! - [`security`]: breach detection (rules over sliding windows, security events).
//! - [`erp`]: the SOAP client of the legacy ERP (stock, product master data, goods movements).
//! - [`telemetry`]: logging, invocation spans, W3C trace context.

pub mod archive;
pub mod auth;
pub mod config;
pub mod domain;
pub mod erasure;
pub mod erp;
pub mod files;
pub mod jobs;
pub mod outbound;
pub mod outbox;
pub mod payments;
pub mod protocol;
pub mod security;
pub mod shipping;
pub mod store;
pub mod telemetry;
