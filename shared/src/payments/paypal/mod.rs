//! The PayPal REST adapter: card payments with a vaulted payment source (Orders v2 with
//! `intent: AUTHORIZE`, Payments v2 capture/void/refund), reads for reconciliation, Transaction
//! Search v1, and webhook verification.
//!
//! Every call goes through an [`OutboundClient`] (OAuth client credentials at
//! `/v1/oauth2/token`, retries, breaker). Every POST carries the caller's idempotency key as
//! `PayPal-Request-Id` (PayPal answers a repeated key with the first result) and
//! `Prefer: return=representation`.
//!
//! Results are PayPal-agnostic ([`types`]): amounts in minor units, statuses as enums.

mod client;
mod error;
mod gateway;
mod money;
mod orders;
mod payments;
mod reporting;
pub mod types;
mod webhook;
mod webhook_event;
mod wire;

pub use client::{PayPalClient, LIVE, SANDBOX};
pub use error::PayPalError;
pub use gateway::{PayPalGateway, PayPalSetup};
pub use money::{AmountError, Money};
pub use webhook::{WebhookConfig, WebhookError, WebhookVerifier};
pub use webhook_event::{WebhookEvent, WebhookEventKind};
