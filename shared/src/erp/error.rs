//! [`ErpError`]: why an ERP call failed, naming the operation; a SOAP fault keeps the ERP's
//! code and text. Never the request or the credentials.

use super::envelope::EnvelopeError;
use super::fault::SoapFault;
use super::protocol::SoapVersion;
use crate::outbound::OutboundError;

/// Why an ERP call failed.
#[derive(Debug, thiserror::Error)]
pub enum ErpError {
    /// The ERP answered with a SOAP fault.
    #[error("ERP {operation}: fault {}{}: {}", fault.code, fault.erp_code.as_deref().map(|code| format!(" ({code})")).unwrap_or_default(), fault.reason)]
    Fault {
        operation: &'static str,
        fault: SoapFault,
    },
    /// The call did not get a SOAP answer (breaker open, timeout, connection, HTTP status
    /// without a fault): see the outbound error for whether anything was sent.
    #[error("ERP {operation}: {source}")]
    Outbound {
        operation: &'static str,
        #[source]
        source: OutboundError,
    },
    /// The request could not be written, or the answer not read.
    #[error("ERP {operation}: {source}")]
    Envelope {
        operation: &'static str,
        #[source]
        source: EnvelopeError,
    },
    /// The answer was an envelope of the other SOAP version.
    #[error("ERP {operation}: answered with SOAP {} to a SOAP {} request; fix: set ERP_SOAP_VERSION to what the ERP speaks", answered.label(), sent.label())]
    VersionMismatch {
        operation: &'static str,
        sent: SoapVersion,
        answered: SoapVersion,
    },
    /// The answer was a well-formed envelope holding another element than the response.
    #[error("ERP {operation}: expected {operation}Response, got {found}")]
    Unexpected {
        operation: &'static str,
        found: &'static str,
    },
    /// The client could not be set up from its configuration.
    #[error("ERP client: {0}")]
    Config(String),
}

impl ErpError {
    /// The fault, when the ERP answered with one.
    pub fn fault(&self) -> Option<&SoapFault> {
        match self {
            Self::Fault { fault, .. } => Some(fault),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: the ERP was unreachable, overloaded or failed on
    /// its side; not when it refused the request itself (a caller fault, a bad answer).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Fault { fault, .. } => !fault.is_caller_fault(),
            Self::Outbound { source, .. } => match source.status() {
                Some(status) => status.is_server_error() || status.as_u16() == 429,
                None => !matches!(source, OutboundError::InvalidRequest { .. }),
            },
            _ => false,
        }
    }
}
