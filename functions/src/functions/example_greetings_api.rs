//! `ExampleGreetingsApi` (built only with the `example-function` feature): the worked example of
//! the README's "How to add a function", and what `functions/tests/adding_a_function.rs` adds to
//! prove the section right. `POST /api/v1/example/greetings` with `{"word": "..."}` queues the
//! word on `example-greetings` (an output binding) and answers 202; `ExampleGreeter` consumes it.

use axum::extract::Extension;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::openapi::{Access, Operation};
use crate::api::{ApiError, JsonBody};
use crate::invoke::OutputSink;

/// The output binding the greeting leaves through (declared in the registry).
pub const GREETINGS_OUTPUT: &str = "exampleGreetings";

/// A greeting: one word.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Greeting {
    /// The word to pass on (1 to 32 ASCII letters; a word of `fail` makes the greeter fail).
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[A-Za-z]+$"))]
    pub word: String,
}

/// The operations of this function (routes and their documentation).
pub fn operations() -> Vec<Operation> {
    vec![Operation::new(
        Method::POST,
        "/api/v1/example/greetings",
        "sendExampleGreeting",
        "Queue a greeting for ExampleGreeter",
        post(send),
    )
    .tag("example")
    .access(Access::Anonymous)
    .body::<Greeting>()
    .example(|| serde_json::json!({"word": "hello"}))
    .returns_nothing(202, "Queued")
    .errors(&[400, 415])]
}

async fn send(sink: Option<Extension<OutputSink>>, body: JsonBody) -> Result<Response, ApiError> {
    let greeting: Greeting = body.parse()?;
    let valid = (1..=32).contains(&greeting.word.len())
        && greeting.word.bytes().all(|b| b.is_ascii_alphabetic());
    if !valid {
        return Err(ApiError::BadRequest(
            "word: 1 to 32 ASCII letters".to_owned(),
        ));
    }
    let Some(Extension(sink)) = sink else {
        return Err(ApiError::Internal(
            "ExampleGreetingsApi was invoked without its output binding".into(),
        ));
    };
    let message =
        serde_json::to_value(&greeting).map_err(|error| ApiError::Internal(error.to_string()))?;
    sink.send(GREETINGS_OUTPUT, message);
    Ok(StatusCode::ACCEPTED.into_response())
}
