//! What can go wrong with an outbound call, told so the caller can decide: was anything sent,
//! may the service have acted on it, is it worth trying again later.
//!
//! Displays name the service and the status, never a token or a body (bodies may hold personal
//! data; [`ErrorBody`] keeps them for the caller to map, and its `Debug` prints only the size).

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

/// Why an outbound call failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The circuit breaker is open: nothing was sent.
    #[error("{service}: circuit breaker open, request not sent")]
    BreakerOpen { service: String },
    /// The concurrency cap was reached and no slot freed in time: nothing was sent.
    #[error("{service}: {max} calls already in flight and no slot freed within {waited:?}; request not sent")]
    Saturated {
        service: String,
        max: usize,
        waited: Duration,
    },
    /// No connection could be opened (refused, DNS, TLS, connect timeout): nothing was sent.
    #[error("{service}: cannot connect after {attempts} attempt(s): {reason}")]
    Connect {
        service: String,
        attempts: u32,
        reason: String,
    },
    /// No answer in time. `sent`: the request may have reached the service.
    #[error("{service}: no answer in time after {attempts} attempt(s) (request possibly received: {sent})")]
    Timeout {
        service: String,
        sent: bool,
        attempts: u32,
    },
    /// The connection failed during the exchange (reset, closed mid-response).
    #[error("{service}: connection failed during the exchange after {attempts} attempt(s) (request possibly received: {sent}): {reason}")]
    Transport {
        service: String,
        sent: bool,
        attempts: u32,
        reason: String,
    },
    /// The service's final answer was not a success; the caller maps the status and body.
    #[error("{service} answered HTTP {status} after {attempts} attempt(s)")]
    Status {
        service: String,
        status: StatusCode,
        body: ErrorBody,
        attempts: u32,
        /// The service's `Retry-After`, when it gave one.
        retry_after: Option<Duration>,
    },
    /// No access token could be had: nothing was sent to the API.
    #[error("{service}: access token: {source}")]
    Token {
        service: String,
        #[source]
        source: TokenError,
    },
    /// The request could not be built (bad path, header): nothing was sent.
    #[error("{service}: invalid request: {reason}")]
    InvalidRequest { service: String, reason: String },
    /// The answer was a success but not the JSON expected.
    #[error("{service}: unexpected response body: {source}")]
    Decode {
        service: String,
        #[source]
        source: serde_json::Error,
    },
}

impl OutboundError {
    /// True when the request may have reached the service and no answer came (a timeout after
    /// sending, a connection lost mid-exchange), retries exhausted or not allowed: the caller
    /// must find out (read the resource, reconcile) before doing it again differently.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::Timeout { sent: true, .. } | Self::Transport { sent: true, .. }
        )
    }

    /// True when certainly nothing reached the service's API.
    pub fn nothing_sent(&self) -> bool {
        matches!(
            self,
            Self::BreakerOpen { .. }
                | Self::Saturated { .. }
                | Self::Connect { .. }
                | Self::Token { .. }
                | Self::InvalidRequest { .. }
                | Self::Timeout { sent: false, .. }
                | Self::Transport { sent: false, .. }
        )
    }

    /// The final status, for [`OutboundError::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service's `Retry-After`, for a final 429 or 503 that gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token endpoint unreachable: {0}")]
    Unreachable(String),
    /// `error` is the OAuth error code (`invalid_client`...), never the description.
    #[error("token endpoint answered HTTP {status} ({})", error.as_deref().unwrap_or("no error code"))]
    Refused {
        status: StatusCode,
        error: Option<String>,
    },
    #[error("malformed token response: {0}")]
    Malformed(String),
    #[error("invalid token endpoint URL: {0}")]
    BadUrl(String),
}

impl TokenError {
    /// Worth trying again soon (the endpoint was down or overloaded).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Refused { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            Self::Malformed(_) | Self::BadUrl(_) => false,
        }
    }
}

/// A response body kept for the caller to map; `Debug` prints only its size.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ErrorBody(pub Bytes);

impl ErrorBody {
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Decodes the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }
}

impl fmt::Debug for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorBody({} bytes)", self.0.len())
    }
}

/// A reqwest error's causes, without the URL (it may carry ids or query values).
pub(crate) fn reason(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(current) = cause {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&current.to_string());
        cause = current.source();
    }
    if text.is_empty() {
        text = if error.is_timeout() {
            "timed out".into()
        } else {
            "request failed".into()
        };
    }
    text
}
