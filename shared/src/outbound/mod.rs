//! The outbound HTTP client every integration (payment gateway, ERP, shipping carrier) calls its
//! remote service through: one [`OutboundClient`] per remote service.
//!
//! What it adds to a bare `reqwest::Client`, in the order a call meets it:
//!
//! - a circuit breaker ([`BreakerConfig`]): when the service keeps failing, calls fail fast with
//!   [`OutboundError::BreakerOpen`] and nothing is sent until a probe succeeds;
//! - a cap on concurrent calls (a semaphore; a call waits a bounded time for a slot, then fails
//!   with [`OutboundError::Saturated`]);
//! - OAuth 2.0 client credentials ([`ClientCredentials`]): a cached bearer token, one refresh in
//!   flight at a time, dropped and refreshed once on a `401`;
//! - retries with exponential backoff and full jitter, only for transient failures and only when
//!   a retry cannot do a second time what the first attempt did (see [`OutboundRequest`]); the
//!   idempotency key is sent unchanged on every attempt;
//! - errors that tell the caller what happened to its request ([`OutboundError::outcome_unknown`]).
//!
//! [`OutboundRegistry`] lists the clients for the readiness endpoint ([`OutboundHealth`]).
//! Nothing here logs a token, a request body or a response body.

mod breaker;
mod client;
mod config;
mod error;
mod health;
mod request;
mod retry;
mod token;

pub use breaker::BreakerState;
pub use client::OutboundClient;
pub use config::{BreakerConfig, ClientCredentials, OutboundConfig, Secret};
pub(crate) use error::reason as error_reason;
pub use error::{ErrorBody, OutboundError, TokenError};
pub use health::{OutboundHealth, OutboundRegistry};
pub use request::{OutboundRequest, OutboundResponse};
