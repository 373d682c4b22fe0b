//! Running one invocation that arrived as a host envelope (`POST /{FunctionName}`).
//!
//! Timer and Service Bus functions are plain async functions from envelope to reply
//! ([`crate::invoke::InvokeFn`]); housekeeping jobs run through [`crate::timer_jobs`]. HTTP
//! functions with output bindings also arrive here, with the request in `Data.req`: the request
//! is rebuilt and run through the same axum routes a forwarded request takes, the response
//! becomes `Outputs.res`, the values of its input bindings are the request's [`InputValues`]
//! extension, and messages the code queued on the [`OutputSink`] become the other
//! outputs. A failure is a non-2xx reply with a clear message, so the host fails the invocation.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::Value;
use shared::protocol::{HttpRequestData, InvocationRequest};
use tower::ServiceExt;

use crate::invoke::{FunctionError, InputValues, OutputSink, HTTP_OUTPUT_BINDING};
use crate::registry::{Code, FunctionDef};
use crate::startup::AppState;

/// Runs `def` on an envelope and renders the reply (2xx JSON) or the failure (non-2xx).
pub async fn run_envelope(
    state: &AppState,
    api: &axum::Router,
    def: &'static FunctionDef,
    body: &[u8],
) -> Response {
    let result = match def.code {
        Code::Invoke(invoke) => match InvocationRequest::from_slice(body) {
            Ok(request) => invoke(state.clone(), request)
                .await
                .map(|reply| (StatusCode::OK, axum::Json(reply)).into_response()),
            Err(error) => Err(FunctionError::from(error)),
        },
        Code::Job(job) => match InvocationRequest::from_slice(body) {
            Ok(request) => crate::timer_jobs::run_timer(state.clone(), request, job)
                .await
                .map(|reply| (StatusCode::OK, axum::Json(reply)).into_response()),
            Err(error) => Err(FunctionError::from(error)),
        },
        Code::Http(_) => run_http_envelope(api.clone(), def, body)
            .await
            .map(json_reply),
    };
    result.unwrap_or_else(|error| {
        tracing::warn!(function = def.name, error = %error, "invocation failed");
        error.into_response()
    })
}

/// A 200 reply with a JSON body already serialised.
fn json_reply(body: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// An HTTP request delivered in `Data.req`, run through the API routes; the serialised reply.
async fn run_http_envelope(
    api: axum::Router,
    def: &'static FunctionDef,
    body: &[u8],
) -> Result<Vec<u8>, FunctionError> {
    let body_bytes = body;
    let data = HttpRequestData::from_envelope_bytes(body_bytes, def.trigger_binding)?;
    let http_request = data.into_http_request().map_err(|error| {
        FunctionError::BadInput(format!(
            "the request in `{}` is not valid HTTP: {error}",
            def.trigger_binding
        ))
    })?;
    let sink = OutputSink::default();
    let (mut parts, body) = http_request.into_parts();
    parts.extensions.insert(sink.clone());
    if !def.inputs.is_empty() {
        let names: Vec<&str> = def.inputs.iter().map(|input| input.name()).collect();
        let request = InvocationRequest::from_slice(body_bytes)?;
        parts
            .extensions
            .insert(InputValues::from_request(&request, &names));
    }
    let routed = match api
        .oneshot(axum::http::Request::from_parts(parts, Body::from(body)))
        .await
    {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = routed.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|error| {
            FunctionError::Failed(format!("reading the response body failed: {error}"))
        })?
        .to_bytes();
    let messages = sink.take();
    if let Some(binding) = messages.keys().find(|binding| {
        !def.outputs
            .iter()
            .any(|output| output.name == binding.as_str())
    }) {
        return Err(FunctionError::Failed(format!(
            "{} has no output binding named `{binding}`",
            def.name
        )));
    }
    serialize_reply(parts.status, &parts.headers, &bytes, &messages)
}

/// `{"Outputs":{"res":{"body":…,"headers":{…},"statusCode":…},<binding>:[…]},"Logs":[],"ReturnValue":null}`
/// written straight from the routed response into one buffer sized for it: the same JSON as an
/// [`InvocationResponse`] holding an [`shared::protocol::HttpResponseData`] (outputs, header names and the `res`
/// keys in sorted order; a repeated header keeps its last value), without copying the body
/// into an intermediate JSON tree first.
fn serialize_reply(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    messages: &BTreeMap<String, Vec<Value>>,
) -> Result<Vec<u8>, FunctionError> {
    let res = ResOutput {
        body: String::from_utf8_lossy(body),
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect(),
        status_code: status.as_u16(),
    };
    let mut outputs: BTreeMap<&str, Output<'_>> = messages
        .iter()
        .map(|(binding, values)| (binding.as_str(), Output::Messages(values)))
        .collect();
    outputs.insert(HTTP_OUTPUT_BINDING, Output::Response(res));
    let reply = Reply {
        outputs,
        logs: [],
        return_value: (),
    };
    let mut buffer = Vec::with_capacity(body.len() + body.len() / 4 + 512);
    serde_json::to_writer(&mut buffer, &reply).map_err(|error| {
        FunctionError::Failed(format!("the reply cannot be serialised: {error}"))
    })?;
    Ok(buffer)
}

/// The reply of an enveloped HTTP invocation, borrowing from the routed response.
#[derive(Serialize)]
struct Reply<'a> {
    #[serde(rename = "Outputs")]
    outputs: BTreeMap<&'a str, Output<'a>>,
    #[serde(rename = "Logs")]
    logs: [&'a str; 0],
    #[serde(rename = "ReturnValue")]
    return_value: (),
}

#[derive(Serialize)]
#[serde(untagged)]
enum Output<'a> {
    Response(ResOutput<'a>),
    Messages(&'a [Value]),
}

/// The `res` output, in [`shared::protocol::HttpResponseData`]'s JSON form.
#[derive(Serialize)]
struct ResOutput<'a> {
    body: Cow<'a, str>,
    headers: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "statusCode")]
    status_code: u16,
}

/// The answer to `GET /`: the host polls it until the handler is up.
pub async fn ready_probe() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], "handler is running").into_response()
}
