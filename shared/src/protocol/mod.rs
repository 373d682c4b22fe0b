//! The Azure Functions custom-handler protocol, in one typed module.
//!
//! The host talks to the handler over HTTP on loopback. Non-HTTP triggers (timers, Service Bus)
//! and HTTP functions that have extra output bindings arrive as `POST /{FunctionName}` with an
//! [`InvocationRequest`] envelope (`{"Data": {...}, "Metadata": {...}}`); the handler answers
//! with an [`InvocationResponse`] (`{"Outputs": {...}, "Logs": [...], "ReturnValue": ...}`).
//!
//! The host's encodings have quirks (scalars JSON-encoded a second time, JSON strings holding
//! JSON, dates without `Z` or fractions, `Query` as an object or a string). This module parses
//! them tolerantly and hands functions strictly typed values: [`TimerInfo`],
//! [`ServiceBusMessage<T>`], [`HttpRequestData`], [`SignalRConnectionInfo`] (and the
//! [`SignalRAction`]s of the `signalR` output). It also encodes them the way the host does,
//! so the local runtime speaks to the handler exactly as Azure would.

pub mod change_feed;
mod envelope;
mod http_data;
mod lenient;
mod service_bus;
mod signalr;
mod timer;

pub use envelope::{InvocationRequest, InvocationResponse, SysMetadata};
pub use http_data::{FromEnvelope, HttpRequestData, HttpResponseData};
pub use lenient::{format_host_datetime, parse_host_datetime};
pub use service_bus::{output_messages, OutgoingMessage, ServiceBusMessage};
pub use signalr::{GroupAction, SignalRAction, SignalRConnectionInfo};
pub use timer::{ScheduleStatus, TimerInfo};

/// What can go wrong turning a host envelope into typed values.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("the invocation body is not a JSON envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    #[error("binding `{binding}` is missing from Data (present: {present})")]
    MissingBinding { binding: String, present: String },
    #[error("binding `{binding}` does not hold a valid {expected}: {reason}")]
    InvalidBinding {
        binding: String,
        expected: &'static str,
        reason: String,
    },
    #[error("metadata `{key}` is not a valid {expected}: got {got}")]
    InvalidMetadata {
        key: String,
        expected: &'static str,
        got: String,
    },
}
