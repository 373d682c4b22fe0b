//! A local sandbox of PayPal's REST API: the subset the app's PayPal adapter calls, with
//! PayPal's paths, fields, status codes, error bodies and signed webhooks, served on a loopback
//! port so that `handler local` runs with no internet.
//!
//! Start it with [`PayPalSandbox::start`]; [`RunningSandbox::base_url`] is what the adapter's
//! base URL becomes. State lives in memory and is gone when it stops.
//!
//! # PayPal routes
//!
//! - `POST /v1/oauth2/token` (HTTP Basic client id/secret, `grant_type=client_credentials`).
//!   Every other PayPal route needs `Authorization: Bearer <token>` from it.
//! - `POST /v2/checkout/orders` with a vaulted `payment_source` (`card.vault_id` or
//!   `paypal.vault_id`): processed at once, as PayPal does (authorization or capture inside the
//!   order); `GET /v2/checkout/orders/{id}`.
//! - `POST /v2/payments/authorizations/{id}/capture`, `POST .../{id}/void`,
//!   `POST /v2/payments/captures/{id}/refund`; `GET` of authorizations, captures, refunds.
//! - `GET /v1/reporting/transactions` (captures `T0006`, refunds `T1107`; at most 31 days).
//! - `GET /v1/notifications/certs/{cert_id}`: the PEM of the certificate webhooks are signed
//!   with (generated at start: RSA-2048, self-signed); `GET /v1/notifications/webhooks-events/{id}`
//!   and `POST .../{id}/resend`.
//!
//! Every `POST` honours `PayPal-Request-Id`: the same id with the same body returns the stored
//! result (the latest state of the resource; `200` instead of `201` for orders), the same id
//! with another body is refused (`422 PAYPAL_REQUEST_ID_PREVIOUSLY_USED`).
//!
//! # Test payment sources (vault ids)
//!
//! | vault id | behaviour |
//! | --- | --- |
//! | `sandbox-ok` | everything succeeds |
//! | `sandbox-decline` | create order answers `422 INSTRUMENT_DECLINED` |
//! | `sandbox-deny` | the authorization is `DENIED` (intent `CAPTURE`: the capture is `DECLINED`) |
//! | `sandbox-flaky` | each new `PayPal-Request-Id` gets `503 SERVICE_UNAVAILABLE` twice, then is processed (create, capture, void, refund of its payments) |
//! | `sandbox-timeout` | the first attempt of a `PayPal-Request-Id` is processed but answered only after [`SandboxConfig::timeout_reply_delay`]; a retry with the same id answers at once with the stored result |
//! | `sandbox-slow` | captures answer `PENDING`; after [`SandboxConfig::slow_capture_delay`] they become `COMPLETED` and `PAYMENT.CAPTURE.COMPLETED` is sent |
//! | `sandbox-capture-decline` | the authorization is `CREATED`; capturing it answers `422 UNPROCESSABLE_ENTITY` with issue `INSTRUMENT_DECLINED` and leaves it `CREATED` (voidable); intent `CAPTURE`: the capture is `DECLINED` |
//!
//! Any other vault id: `422` with issue `INVALID_RESOURCE_ID` on `/payment_source/.../vault_id`.
//!
//! # Webhooks
//!
//! `PAYMENT.AUTHORIZATION.CREATED`, `PAYMENT.AUTHORIZATION.VOIDED`, `PAYMENT.CAPTURE.COMPLETED`,
//! `PAYMENT.CAPTURE.PENDING`, `PAYMENT.CAPTURE.DENIED` and `PAYMENT.CAPTURE.REFUNDED` are posted
//! to [`SandboxConfig::webhook_url`] in the background, signed as PayPal signs them
//! (`PAYPAL-TRANSMISSION-SIG` = base64 RSA-SHA256 over
//! `{transmission_id}|{transmission_time}|{webhook_id}|{crc32 of the raw body}`), and retried
//! with backoff on a non-2xx answer or a connection failure, up to
//! [`SandboxConfig::webhook_max_attempts`] times.
//!
//! # Where it differs from PayPal
//!
//! - Only vaulted payment sources are processed; an order without `payment_source` is refused
//!   (`400 MISSING_REQUIRED_PARAMETER`) rather than created for payer approval, and an order
//!   takes one purchase unit (PayPal: up to 10).
//! - Captures and refunds answer the full resource unless `Prefer: return=minimal` is sent
//!   (PayPal's default is minimal: send `Prefer: return=representation` to be safe on both);
//!   a void answers `204` unless `Prefer: return=representation`.
//! - No fees (`seller_receivable_breakdown`), no overcapture beyond the authorized amount, no
//!   reauthorization, no expiry of authorizations or request ids.
//! - The transactions report shows a transaction at once (PayPal: up to 3 hours later).
//! - Webhooks are retried a few times within seconds (PayPal: up to 25 times over 3 days).
//!
//! # Admin routes (not PayPal's)
//!
//! - `POST /sandbox/outage` `{"mode":"unavailable"|"refuse"|"none"}`: every PayPal route answers
//!   `503`, or every connection is dropped, or back to normal.
//! - `POST /sandbox/webhooks/replay/{event_id}`: sends a stored event again (same event id).
//! - `GET /sandbox/webhooks`: the stored events, their types and delivery attempts.
//! - `GET /sandbox/state`: counts of orders, authorizations, captures, refunds, events, and the
//!   attempts seen per `PayPal-Request-Id`.
//! - `POST /sandbox/token-lifetime` `{"seconds":N}`: lifetime of the tokens issued from now on.

mod admin;
mod auth;
mod config;
mod context;
mod errors;
mod fields;
mod idempotency;
mod ids;
mod money;
mod orders;
mod payments;
mod refunds;
mod render;
mod reporting;
mod server;
mod signing;
mod sources;
mod state;
mod webhooks;

pub use config::SandboxConfig;
pub use server::{PayPalSandbox, RunningSandbox, SandboxError};
