//! [`CarrierError`]: why a carrier call failed, naming the operation. The carrier's error code
//! is kept; its message is not (it may repeat the address sent).

use crate::outbound::OutboundError;

/// Why a carrier call failed.
#[derive(Debug, thiserror::Error)]
pub enum CarrierError {
    /// The carrier refused the request (4xx): a bad address, a parcel it cannot carry, a
    /// label already bought, bad credentials. Trying again unchanged will not help.
    #[error("carrier {operation}: refused with HTTP {status}{}", code.as_deref().map(|code| format!(" ({code})")).unwrap_or_default())]
    Refused {
        operation: &'static str,
        status: u16,
        code: Option<String>,
    },
    /// No answer, a 5xx, a timeout, or the breaker is open: try again later.
    #[error("carrier {operation}: {source}")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: OutboundError,
    },
    /// An answer the adapter cannot read.
    #[error("carrier {operation}: unexpected answer: {reason}")]
    Unexpected {
        operation: &'static str,
        reason: String,
    },
    /// The adapter could not be set up.
    #[error("carrier client: {0}")]
    Config(String),
}

impl CarrierError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Refused { status, .. } => *status == 429,
            Self::Unexpected { .. } | Self::Config(_) => false,
        }
    }

    /// The carrier refused to buy a label for a shipment that has one (EasyPost
    /// `SHIPMENT.POSTAGE.EXISTS`).
    pub fn is_already_bought(&self) -> bool {
        self.code() == Some("SHIPMENT.POSTAGE.EXISTS")
    }

    /// The carrier's error code, when it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}
