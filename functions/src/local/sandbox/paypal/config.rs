//! What a sandbox run accepts and how fast it goes: [`SandboxConfig`].

use std::fmt;
use std::time::Duration;

use super::ids;

/// PayPal's access-token lifetime (9 hours).
pub const PAYPAL_TOKEN_LIFETIME: Duration = Duration::from_secs(32_400);

/// The settings of one sandbox run.
#[derive(Clone)]
pub struct SandboxConfig {
    /// Loopback port to listen on; `0` picks a free one.
    pub port: u16,
    /// The only client id `POST /v1/oauth2/token` accepts.
    pub client_id: String,
    /// The secret that goes with [`Self::client_id`].
    pub client_secret: String,
    /// Where webhooks go; `None` keeps them (see `GET /sandbox/webhooks`) without sending.
    pub webhook_url: Option<String>,
    /// The webhook id the signatures are computed with (the app verifies with the same).
    pub webhook_id: String,
    /// Lifetime of the access tokens issued (PayPal: 32,400 s).
    pub token_lifetime: Duration,
    /// Divides every delay below: `1.0` is real time, `10.0` ten times faster.
    pub speed: f64,
    /// How long the first attempt of a `sandbox-timeout` request waits before answering.
    pub timeout_reply_delay: Duration,
    /// How long a `sandbox-slow` capture stays `PENDING`.
    pub slow_capture_delay: Duration,
    /// Delivery attempts per webhook event (PayPal: 25 over 3 days).
    pub webhook_max_attempts: u32,
    /// Wait before the second delivery attempt; doubled for each one after.
    pub webhook_retry_delay: Duration,
    /// Refuse an order whose `invoice_id` a processed order already has
    /// (`422 DUPLICATE_INVOICE_ID`), as PayPal does when the account blocks payments made
    /// twice per invoice id.
    pub unique_invoice_ids: bool,
}

impl SandboxConfig {
    /// A config accepting `client_id` / `client_secret`, with PayPal's defaults otherwise.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            port: 0,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            webhook_url: None,
            webhook_id: ids::webhook_id(),
            token_lifetime: PAYPAL_TOKEN_LIFETIME,
            speed: 1.0,
            timeout_reply_delay: Duration::from_secs(30),
            slow_capture_delay: Duration::from_secs(10),
            webhook_max_attempts: 5,
            webhook_retry_delay: Duration::from_secs(2),
            unique_invoice_ids: true,
        }
    }

    /// A config with a client id and secret made up for this run (local mode).
    pub fn generated() -> Self {
        Self::new(ids::client_id(), ids::client_secret())
    }

    /// `delay` divided by [`Self::speed`] (unchanged if the speed is not a positive number).
    pub fn scaled(&self, delay: Duration) -> Duration {
        if self.speed.is_finite() && self.speed > 0.0 {
            delay.div_f64(self.speed)
        } else {
            delay
        }
    }
}

/// Everything but the secret.
impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("webhook_url", &self.webhook_url)
            .field("webhook_id", &self.webhook_id)
            .field("token_lifetime", &self.token_lifetime)
            .field("speed", &self.speed)
            .field("timeout_reply_delay", &self.timeout_reply_delay)
            .field("slow_capture_delay", &self.slow_capture_delay)
            .field("webhook_max_attempts", &self.webhook_max_attempts)
            .field("webhook_retry_delay", &self.webhook_retry_delay)
            .field("unique_invoice_ids", &self.unique_invoice_ids)
            .finish()
    }
}
