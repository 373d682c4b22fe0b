//! What can go wrong talking to PayPal (declines and refused refunds are outcomes, not errors:
//! see [`super::types::AuthorizeOutcome`] and [`super::types::RefundOutcome`]).

use crate::outbound::OutboundError;

use super::money::AmountError;
use super::wire;

/// Why a PayPal call failed. Displays hold PayPal's error name, issue and `debug_id` (safe to
/// log), never a body.
#[derive(Debug, thiserror::Error)]
pub enum PayPalError {
    /// Nothing sent, no answer, or a transport failure: see
    /// [`OutboundError::outcome_unknown`] before trying differently.
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    /// PayPal refused the call.
    #[error("PayPal answered HTTP {status} {} (issue {}, debug_id {})", name.as_deref().unwrap_or("?"), issue.as_deref().unwrap_or("none"), debug_id.as_deref().unwrap_or("none"))]
    Api {
        status: u16,
        name: Option<String>,
        issue: Option<String>,
        debug_id: Option<String>,
    },
    #[error("amount: {0}")]
    Amount(#[from] AmountError),
    /// A success answer without what it should hold.
    #[error("unexpected PayPal response: {0}")]
    Unexpected(String),
    /// An id that cannot be a PayPal id (it would change the request path).
    #[error("{0:?} is not a valid PayPal id or request id")]
    InvalidId(String),
    #[error("transaction search range: {0}")]
    InvalidRange(String),
}

impl PayPalError {
    /// True when PayPal may have acted on the request and no answer came.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Outbound(e) if e.outcome_unknown())
    }

    /// PayPal's issue code of an API refusal.
    pub fn issue(&self) -> Option<&str> {
        match self {
            Self::Api { issue, .. } => issue.as_deref(),
            _ => None,
        }
    }
}

/// Turns a final non-success status into [`PayPalError::Api`] with PayPal's error body read.
pub(crate) fn from_outbound(error: OutboundError) -> PayPalError {
    match error {
        OutboundError::Status { status, body, .. } => {
            let parsed: wire::ErrorBody = body.json().unwrap_or_default();
            PayPalError::Api {
                status: status.as_u16(),
                name: parsed.name.map(short),
                issue: parsed.details.into_iter().find_map(|d| d.issue).map(short),
                debug_id: parsed.debug_id.map(short),
            }
        }
        other => PayPalError::Outbound(other),
    }
}

/// PayPal codes are short upper-case words; anything else is cut (it ends up in logs).
fn short(code: String) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}
