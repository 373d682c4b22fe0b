//! The app's library: what every function of the `handler` binary uses.
//!
//! - [`protocol`]: the custom-handler protocol (host envelopes in, replies out), typed.
//! - [`auth`]: bearer-token validation (Entra ID, Entra External ID, the local dev issuer).
//! - [`config`]: every setting, from the environment or `local.settings.json`, validated.
//! - [`domain`]: domain types shared between functions (message bodies).
//! - [`store`]: storage ports and the embedded SQLite adapter.
//! - [`telemetry`]: logging, invocation spans, W3C trace context.

pub mod auth;
pub mod config;
pub mod domain;
pub mod protocol;
pub mod store;
pub mod telemetry;
