//! Shared behaviour of functions whose issue has not landed yet.
//!
//! They are declared, routed and typed now, so everything else can refer to them:
//! - timers parse their `TimerInfo` strictly, then succeed with a log line saying nothing was
//!   done (a timer has nothing to lose);
//! - Service Bus functions parse their message strictly (a malformed one fails as bad input),
//!   then fail as not implemented, so the message is kept: redelivered, then dead-lettered,
//!   and replayable once the function lands.

use serde::de::DeserializeOwned;
use serde_json::json;
use shared::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage, TimerInfo};

use crate::invoke::FunctionError;
use crate::registry::{MESSAGE_BINDING, TIMER_BINDING};

/// A timer function that is not built yet: the input is checked and described.
pub fn timer(request: &InvocationRequest, function: &'static str, issue: u32) -> Result<InvocationResponse, FunctionError> {
    let timer = TimerInfo::from_request(request, TIMER_BINDING)?;
    tracing::info!(function, is_past_due = timer.is_past_due, "timer fired; the job is not implemented yet");
    Ok(InvocationResponse::empty()
        .log(format!("{function} fired (IsPastDue={}); the job is not implemented yet (issue {issue}), nothing was changed", timer.is_past_due))
        .with_return_value(json!({ "implemented": false, "issue": issue, "timer": timer })))
}

/// A Service Bus function that is not built yet: the message is checked, then kept.
pub fn message<T: DeserializeOwned>(request: &InvocationRequest, function: &'static str, issue: u32) -> Result<InvocationResponse, FunctionError> {
    let message = ServiceBusMessage::<T>::from_request(request, MESSAGE_BINDING)?;
    tracing::info!(function, message_id = %message.message_id, delivery_count = message.delivery_count, "message received; not processed");
    Err(FunctionError::NotImplemented {
        function,
        issue,
        detail: format!("message {} (delivery {}) was kept, not processed", message.message_id, message.delivery_count),
    })
}
