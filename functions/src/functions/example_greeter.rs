//! `ExampleGreeter` (built only with the `example-function` feature): the Service Bus half of
//! the README's "How to add a function" example. It takes a greeting from the
//! `example-greetings` queue and replies with it as its `ReturnValue`; the word `fail` fails
//! the invocation, so the message is retried, then dead-lettered with this function's error.

use serde_json::json;
use shared::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};

use super::example_greetings_api::Greeting;
use crate::invoke::{FunctionError, InvokeFuture, MESSAGE_BINDING};
use crate::startup::AppState;

pub fn invoke(_state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { greet(&request) })
}

fn greet(request: &InvocationRequest) -> Result<InvocationResponse, FunctionError> {
    let message = ServiceBusMessage::<Greeting>::from_request(request, MESSAGE_BINDING)?;
    if message.body.word == "fail" {
        return Err(FunctionError::Failed(
            "ExampleGreeter was asked to fail".to_owned(),
        ));
    }
    Ok(InvocationResponse::empty()
        .log(format!("greeted message {}", message.message_id))
        .with_return_value(json!({ "greeted": message.body.word })))
}
