//! Settings of one [`OutboundClient`](super::OutboundClient): the remote service, its timeouts,
//! retries, concurrency cap, circuit breaker and OAuth client credentials.

use std::fmt;
use std::time::Duration;

/// How to call one remote service. [`OutboundConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// The service's name in logs, errors and the readiness endpoint (e.g. `paypal`).
    pub service: String,
    /// Where request paths are joined to (e.g. `https://api-m.paypal.com`).
    pub base_url: String,
    /// Time to open a connection (TCP and TLS). Applies when the client builds its own
    /// `reqwest::Client` ([`OutboundClient::new`](super::OutboundClient::new)).
    pub connect_timeout: Duration,
    /// Time for one attempt, from sending to the end of the response body.
    pub total_timeout: Duration,
    /// Attempts per call, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before retry `n` is a random time in `[0, min(backoff_max, backoff_base * 2^(n-1))]`.
    pub backoff_base: Duration,
    /// Upper bound of the backoff.
    pub backoff_max: Duration,
    /// A `Retry-After` longer than this is not waited for: the call fails with the status and
    /// the caller gets the delay ([`OutboundError::retry_after`](super::OutboundError::retry_after)).
    pub retry_after_max: Duration,
    /// Calls in flight at most; further calls wait for a slot.
    pub max_concurrency: usize,
    /// How long a call waits for a slot before failing with `Saturated`.
    pub acquire_timeout: Duration,
    /// When to stop calling a failing service.
    pub breaker: BreakerConfig,
    /// OAuth 2.0 client credentials, if the service wants a bearer token.
    pub auth: Option<ClientCredentials>,
}

impl OutboundConfig {
    /// The defaults: connect 2 s, 10 s per attempt, 3 attempts, backoff 100 ms to 2 s,
    /// `Retry-After` waited up to 10 s, 16 concurrent calls (wait up to 1 s for a slot), the
    /// default breaker, no authentication.
    pub fn new(service: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            base_url: base_url.into(),
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(10),
            max_attempts: 3,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            retry_after_max: Duration::from_secs(10),
            max_concurrency: 16,
            acquire_timeout: Duration::from_secs(1),
            breaker: BreakerConfig::default(),
            auth: None,
        }
    }
}

/// When the circuit breaker opens and how it closes again.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    /// Opens after this many failed attempts in a row.
    pub consecutive_failures: u32,
    /// Opens when at least this share (0.0 to 1.0) of the attempts in the window failed...
    pub failure_rate: f64,
    /// ...and the window holds at least this many attempts.
    pub minimum_calls: u32,
    /// The rolling window of the failure rate.
    pub window: Duration,
    /// How long it stays open before letting probes through (half-open).
    pub open_for: Duration,
    /// Probes let through at once when half-open; that many successes close it, one failure
    /// opens it again.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    /// 5 failures in a row, or 50 % of at least 10 attempts in 30 s; open 30 s; 1 probe.
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: 0.5,
            minimum_calls: 10,
            window: Duration::from_secs(30),
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

/// OAuth 2.0 client credentials (RFC 6749 §4.4), sent with HTTP Basic authentication.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// The token endpoint: an absolute URL, or a path joined to the service's base URL
    /// (PayPal: `/v1/oauth2/token`).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Sent as `scope` when set.
    pub scope: Option<String>,
}

/// A secret string (client secret, access token) whose `Debug` prints `***`.
///
/// A 20-line newtype rather than the `secrecy` crate: `secrecy` prints `[REDACTED]` and wraps
/// the value in a box; we want `***` and a cheap clone, and nothing else of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(std::sync::Arc<str>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into())
    }

    /// The secret itself: only to put it on the wire, never in a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_hides_the_value() {
        let creds = ClientCredentials {
            token_url: "/token".into(),
            client_id: "id".into(),
            client_secret: Secret::new("s3cr3t"),
            scope: None,
        };
        let printed = format!("{creds:?}");
        assert!(printed.contains("***"), "{printed}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
    }
}
