//! What a function's code works with when it runs as an invocation: the shape of a timer or
//! Service Bus function ([`InvokeFn`]), its failures ([`FunctionError`], each a non-2xx reply
//! so the host counts a failure, and Service Bus redelivers, then dead-letters), the
//! [`OutputSink`] an HTTP function queues output-binding messages on, and the binding names
//! the app's function.json files use. Running an envelope is [`crate::envelope`]'s.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use shared::protocol::{InvocationRequest, InvocationResponse, ProtocolError};

use crate::startup::AppState;

/// Binding names used across the app.
pub const HTTP_TRIGGER_BINDING: &str = "req";
pub const HTTP_OUTPUT_BINDING: &str = "res";
pub const TIMER_BINDING: &str = "timer";
pub const MESSAGE_BINDING: &str = "message";
/// The change-feed trigger binding of `OutboxRelay`.
pub const DOCUMENTS_BINDING: &str = "documents";

/// The future an [`InvokeFn`] returns.
pub type InvokeFuture =
    Pin<Box<dyn Future<Output = Result<InvocationResponse, FunctionError>> + Send>>;

/// A timer or Service Bus function: envelope in, reply out.
pub type InvokeFn = fn(AppState, InvocationRequest) -> InvokeFuture;

/// Why an invocation failed. Every kind is a non-2xx reply, so the host counts a failure.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The input cannot be processed, however often it is retried (a malformed message).
    #[error("bad input: {0}")]
    BadInput(String),
    /// Anything else; retrying may help.
    #[error("{0}")]
    Failed(String),
}

/// The tenant of a message and its ids checked: bad input (400) naming the first field that is
/// not a tenant id or not a valid id, so a malformed message is dead-lettered with the reason.
pub fn checked_message_ids(
    tenant_id: &str,
    ids: &[(&str, &str)],
) -> Result<shared::domain::tenant::TenantId, FunctionError> {
    let tenant = shared::domain::tenant::TenantId::new(tenant_id)
        .map_err(|error| FunctionError::BadInput(format!("tenantId: {error}")))?;
    for (field, value) in ids {
        if !shared::domain::validation::is_valid_id(value) {
            return Err(FunctionError::BadInput(format!(
                "{field}: not a valid id (1 to 64 letters, digits, '-' or '_')"
            )));
        }
    }
    Ok(tenant)
}

impl From<ProtocolError> for FunctionError {
    fn from(error: ProtocolError) -> Self {
        Self::BadInput(error.to_string())
    }
}

impl FunctionError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadInput(_) => StatusCode::BAD_REQUEST,
            Self::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for FunctionError {
    /// The host logs a failed invocation's body, so it carries the message in `Logs` too.
    fn into_response(self) -> Response {
        let message = self.to_string();
        let body = json!({
            "Outputs": {},
            "Logs": [message.clone()],
            "ReturnValue": null,
            "Error": message,
        });
        (self.status(), axum::Json(body)).into_response()
    }
}

/// The values of an enveloped HTTP function's input bindings (beside its trigger), by binding
/// name, as the envelope's `Data` carried them: an extension of the rebuilt request.
#[derive(Clone, Debug, Default)]
pub struct InputValues(pub serde_json::Map<String, Value>);

impl InputValues {
    /// The envelope `request`'s values of the bindings named in `names`.
    pub fn from_request(request: &InvocationRequest, names: &[&str]) -> Self {
        Self(
            request
                .data
                .iter()
                .filter(|(key, _)| names.iter().any(|name| name.eq_ignore_ascii_case(key)))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        )
    }
}

/// Messages an HTTP function queues on its output bindings while handling an enveloped request.
#[derive(Clone, Default)]
pub struct OutputSink {
    messages: Arc<Mutex<BTreeMap<String, Vec<Value>>>>,
}

impl OutputSink {
    /// Queues `message` on the output binding `binding`.
    pub fn send(&self, binding: &str, message: Value) {
        let mut messages = self
            .messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        messages
            .entry(binding.to_owned())
            .or_default()
            .push(message);
    }

    pub(crate) fn take(&self) -> BTreeMap<String, Vec<Value>> {
        std::mem::take(
            &mut *self
                .messages
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}
