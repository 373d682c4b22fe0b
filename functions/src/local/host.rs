//! [`LocalHost`]: plays the Functions host's part towards the handler.
//!
//! It calls the handler's routes with the host's encodings (envelopes built by
//! `shared::protocol`), in process through the same axum router that serves Azure's calls,
//! with an invocation id and a `traceparent` on every call. Output-binding messages in a reply
//! are sent to the local queue, so the functions bound to that queue or topic run next;
//! `signalR` outputs go to the local SignalR service.
//!
//! Every invocation is logged at `info` as `func start` logs it, ids only (never a body):
//! `Executing 'Functions.OrdersApi' (Reason='...', Id=<invocation id>)` when it starts and
//! `Executed 'Functions.OrdersApi' (Succeeded, Id=..., Duration=12ms)` when it ends.

use std::fmt;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use shared::protocol::{
    output_messages, InvocationRequest, InvocationResponse, SysMetadata, TimerInfo,
};
use shared::store::StoreError;
use shared::telemetry::TraceParent;
use tower::ServiceExt;

use super::queue::{LocalQueue, LockedMessage, NewMessage};
use super::signalr::LocalSignalR;
use crate::invocation_span::INVOCATION_ID_HEADER;
use crate::registry::FunctionDef;

/// Why an invocation did not succeed, as the host would see it.
#[derive(Debug, thiserror::Error)]
pub enum InvocationFailure {
    /// The handler answered non-2xx.
    #[error("{function} failed with HTTP {status}: {message}")]
    Failed {
        function: &'static str,
        status: u16,
        message: String,
    },
    /// The handler answered 2xx with a body that is not a reply envelope.
    #[error("{function} answered with a body the host cannot read: {reason}")]
    BadReply {
        function: &'static str,
        reason: String,
    },
    /// Sending its output messages failed.
    #[error("{function} succeeded but its output messages could not be queued: {source}")]
    Outputs {
        function: &'static str,
        #[source]
        source: StoreError,
    },
}

/// Why the host runs a function: the `Reason` of its `Executing` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// An HTTP request, the admin API or `handler invoke` (the host gives one reason for all).
    HostApi,
    /// A timer's schedule, due at this time.
    Timer(chrono::DateTime<chrono::Utc>),
    /// New changes of a Cosmos DB container (here: of the SQLite outbox).
    Changes {
        container: String,
        at: chrono::DateTime<chrono::Utc>,
    },
    /// A Service Bus message of a queue or subscription.
    Message {
        entity: String,
        sequence_number: i64,
        delivery_count: u32,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HostApi => f.write_str("This function was programmatically called via the host APIs."),
            Self::Timer(due) => write!(f, "Timer fired at {}", due.to_rfc3339()),
            Self::Changes { container, at } => {
                write!(f, "New changes on container {container} at {}", at.to_rfc3339())
            }
            Self::Message {
                entity,
                sequence_number,
                delivery_count,
            } => write!(
                f,
                "New ServiceBus message detected on '{entity}' (SequenceNumber={sequence_number}, DeliveryCount={delivery_count})"
            ),
        }
    }
}

/// One invocation between its `Executing` and `Executed` lines.
struct Logged {
    function: &'static str,
    id: String,
    started: Instant,
}

impl Logged {
    fn start(function: &'static str, reason: &Reason) -> Self {
        let id = shared::telemetry::fast_uuid();
        tracing::info!("Executing 'Functions.{function}' (Reason='{reason}', Id={id})");
        Self {
            function,
            id,
            started: Instant::now(),
        }
    }

    fn finish(self, succeeded: bool) {
        let (function, id) = (self.function, &self.id);
        let duration = self.started.elapsed().as_millis();
        if succeeded {
            tracing::info!(
                "Executed 'Functions.{function}' (Succeeded, Id={id}, Duration={duration}ms)"
            );
        } else {
            tracing::warn!(
                "Executed 'Functions.{function}' (Failed, Id={id}, Duration={duration}ms)"
            );
        }
    }
}

/// The local stand-in for the Functions host.
#[derive(Clone)]
pub struct LocalHost {
    handler: Router,
    queue: LocalQueue,
    signalr: Option<LocalSignalR>,
}

impl LocalHost {
    pub fn new(handler: Router, queue: LocalQueue) -> Self {
        Self {
            handler,
            queue,
            signalr: None,
        }
    }

    /// Sends `signalR` outputs to `signalr` (without it they are dropped, logged).
    pub fn with_signalr(mut self, signalr: LocalSignalR) -> Self {
        self.signalr = Some(signalr);
        self
    }

    /// The local SignalR service, if this host has one.
    pub fn signalr(&self) -> Option<&LocalSignalR> {
        self.signalr.as_ref()
    }

    pub fn queue(&self) -> &LocalQueue {
        &self.queue
    }

    /// POSTs an envelope to `/{FunctionName}`, then queues the reply's output messages; logs
    /// the invocation as the host does, for `reason`.
    pub async fn invoke(
        &self,
        def: &'static FunctionDef,
        reason: &Reason,
        request: &InvocationRequest,
    ) -> Result<InvocationResponse, InvocationFailure> {
        let logged = Logged::start(def.name, reason);
        let outcome = self.invoke_as(def, &logged.id, request).await;
        logged.finish(outcome.is_ok());
        outcome
    }

    async fn invoke_as(
        &self,
        def: &'static FunctionDef,
        invocation_id: &str,
        request: &InvocationRequest,
    ) -> Result<InvocationResponse, InvocationFailure> {
        let body = serde_json::to_vec(request).map_err(|error| InvocationFailure::BadReply {
            function: def.name,
            reason: error.to_string(),
        })?;
        let http_request = self
            .request_to(&format!("/{}", def.name), invocation_id)
            .body(Body::from(body));
        let response = self
            .call(http_request.map_err(|error| InvocationFailure::BadReply {
                function: def.name,
                reason: error.to_string(),
            })?)
            .await;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|error| InvocationFailure::BadReply {
                function: def.name,
                reason: error.to_string(),
            })?
            .to_bytes();
        if !status.is_success() {
            return Err(InvocationFailure::Failed {
                function: def.name,
                status: status.as_u16(),
                message: failure_message(&bytes),
            });
        }
        let reply: InvocationResponse =
            serde_json::from_slice(&bytes).map_err(|error| InvocationFailure::BadReply {
                function: def.name,
                reason: error.to_string(),
            })?;
        self.send_outputs(def, &reply).await?;
        Ok(reply)
    }

    /// Runs a timer function now with the given timer input.
    pub async fn invoke_timer(
        &self,
        def: &'static FunctionDef,
        reason: &Reason,
        timer: &TimerInfo,
    ) -> Result<InvocationResponse, InvocationFailure> {
        let mut request = InvocationRequest::default();
        request
            .data
            .insert(def.trigger_binding.to_owned(), timer.to_host_value());
        request
            .metadata
            .insert("sys".to_owned(), sys_metadata(def).to_value());
        self.invoke(def, reason, &request).await
    }

    /// Delivers one locked message to a Service Bus function.
    pub async fn invoke_message(
        &self,
        def: &'static FunctionDef,
        locked: &LockedMessage,
    ) -> Result<InvocationResponse, InvocationFailure> {
        let request = locked
            .message
            .to_host_request(def.trigger_binding, def.name);
        let reason = Reason::Message {
            entity: locked.entity.clone(),
            sequence_number: locked.sequence_number,
            delivery_count: locked.message.delivery_count,
        };
        self.invoke(def, &reason, &request).await
    }

    /// Passes an HTTP request to the handler as it is (`enableForwardingHttpRequest`); the
    /// invocation failed when the handler answered 5xx.
    pub async fn forward(&self, def: &'static FunctionDef, mut request: Request<Body>) -> Response {
        let logged = Logged::start(def.name, &Reason::HostApi);
        let headers = request.headers_mut();
        if let Ok(value) = logged.id.parse() {
            headers.insert(INVOCATION_ID_HEADER, value);
        }
        ensure_traceparent(headers);
        let response = self.call(request).await;
        logged.finish(!response.status().is_server_error());
        response
    }

    async fn call(&self, request: Request<Body>) -> Response {
        match self.handler.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    fn request_to(&self, path: &str, invocation_id: &str) -> axum::http::request::Builder {
        let trace = TraceParent::new_root();
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(INVOCATION_ID_HEADER, invocation_id)
            .header("traceparent", trace.child_header())
    }

    /// Sends every output binding's messages to its queue or topic.
    async fn send_outputs(
        &self,
        def: &'static FunctionDef,
        reply: &InvocationResponse,
    ) -> Result<(), InvocationFailure> {
        for output in def.outputs {
            let Some(value) = reply.outputs.get(output.name) else {
                continue;
            };
            if !output.target.is_service_bus() {
                self.send_to_signalr(def, value);
                continue;
            }
            for body in output_messages(value) {
                let message = NewMessage {
                    body,
                    content_type: Some("application/json".into()),
                    ..NewMessage::default()
                };
                self.queue
                    .send(output.target, message)
                    .await
                    .map_err(|source| InvocationFailure::Outputs {
                        function: def.name,
                        source,
                    })?;
            }
        }
        Ok(())
    }
}

impl LocalHost {
    /// Delivers a `signalR` output; a push that cannot be delivered is logged, never an error
    /// (the host sends outputs after the invocation succeeded).
    fn send_to_signalr(&self, def: &'static FunctionDef, value: &Value) {
        match &self.signalr {
            Some(signalr) => {
                let reached = signalr.apply_output(def.name, value);
                tracing::debug!(function = def.name, reached, "signalR output delivered");
            }
            None => tracing::warn!(
                function = def.name,
                "signalR output dropped: no local SignalR service"
            ),
        }
    }
}

fn sys_metadata(def: &FunctionDef) -> SysMetadata {
    SysMetadata {
        method_name: Some(def.name.to_owned()),
        utc_now: Some(chrono::Utc::now()),
        rand_guid: Some(shared::telemetry::fast_uuid()),
    }
}

fn ensure_traceparent(headers: &mut axum::http::HeaderMap) {
    let incoming = headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::parse);
    let context = incoming.unwrap_or_else(TraceParent::new_root);
    if let Ok(value) = context.child_header().parse() {
        headers.insert("traceparent", value);
    }
}

/// The message of a failed reply: its `Error`, its problem `detail`, or its text.
fn failure_message(bytes: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    let from_json = parsed.as_ref().and_then(|value| {
        value
            .get("Error")
            .or_else(|| value.get("detail"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    from_json.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(bytes).into_owned();
        if text.is_empty() {
            "(empty body)".to_owned()
        } else {
            text
        }
    })
}

/// An HTTP function's `res` output turned into the response the host sends to the client.
pub fn response_from_reply(reply: &InvocationResponse) -> Response {
    let res = reply
        .outputs
        .get(crate::invoke::HTTP_OUTPUT_BINDING)
        .and_then(shared::protocol::HttpResponseData::from_output);
    let Some(res) = res else {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "the function set no `res` output"}),
        );
    };
    let mut builder =
        Response::builder().status(StatusCode::from_u16(res.status_code).unwrap_or(StatusCode::OK));
    for (name, value) in &res.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Body::from(res.body)).unwrap_or_else(|_| {
        json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "the function set invalid headers"}),
        )
    })
}

pub fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::post;
    use shared::store::sqlite::Db;

    use super::*;
    use crate::local::queue::QueueOptions;
    use crate::registry;

    /// A stand-in handler that answers every envelope with the given reply and status.
    fn handler_answering(status: StatusCode, reply: Value) -> Router {
        Router::new().route(
            "/{function}",
            post(move || async move { json_response(status, &reply) }),
        )
    }

    fn host_with(dir: &std::path::Path, handler: Router) -> LocalHost {
        let db = Db::open(&dir.join("app.db")).unwrap();
        let options = QueueOptions {
            max_delivery_count: 10,
            lock_duration: Duration::from_secs(60),
            retry_delay: Duration::ZERO,
        };
        LocalHost::new(handler, LocalQueue::new(db, options))
    }

    /// A function with output bindings (the app's own send through the outbox; a function
    /// added with output bindings still has them sent by the host).
    static WITH_OUTPUTS: registry::FunctionDef = registry::FunctionDef {
        name: "WithOutputs",
        trigger: registry::Trigger::Queue { queue: "in" },
        trigger_binding: "message",
        inputs: &[],
        outputs: &[
            registry::OutputBinding {
                name: "gdprRequests",
                target: registry::MessageTarget::Queue("gdpr-requests"),
            },
            registry::OutputBinding {
                name: "orderEvents",
                target: registry::MessageTarget::Topic("order-events"),
            },
        ],
        code: registry::Code::Invoke(crate::functions::notification_dispatch::invoke),
    };

    #[tokio::test]
    async fn output_bindings_are_sent_to_their_queue_and_topic_subscriptions() {
        let dir = tempfile::tempdir().unwrap();
        let reply = json!({
            "Outputs": {
                "res": {"statusCode": 202, "body": ""},
                "gdprRequests": [{"requestId": "r-1"}, {"requestId": "r-2"}],
                "unrelated": "ignored"
            },
            "Logs": [], "ReturnValue": null
        });
        let host = host_with(dir.path(), handler_answering(StatusCode::OK, reply));
        host.invoke(
            &WITH_OUTPUTS,
            &Reason::HostApi,
            &InvocationRequest::default(),
        )
        .await
        .unwrap();
        let queued = host.queue().peek("gdpr-requests").await.unwrap();
        assert_eq!(
            queued.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            [r#"{"requestId":"r-1"}"#, r#"{"requestId":"r-2"}"#]
        );

        let orders_reply = json!({"Outputs": {"orderEvents": {"eventId": "e-1"}}, "Logs": [], "ReturnValue": null});
        let host = host_with(dir.path(), handler_answering(StatusCode::OK, orders_reply));
        host.invoke(
            &WITH_OUTPUTS,
            &Reason::HostApi,
            &InvocationRequest::default(),
        )
        .await
        .unwrap();
        let delivered = host
            .queue()
            .peek("order-events/subscriptions/notifications")
            .await
            .unwrap();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].body, r#"{"eventId":"e-1"}"#);
    }

    #[tokio::test]
    async fn a_failed_invocation_sends_nothing_and_reports_the_handlers_message() {
        let dir = tempfile::tempdir().unwrap();
        let reply = json!({"Outputs": {"gdprRequests": [{"requestId": "r-1"}]}, "Logs": [], "ReturnValue": null, "Error": "store down"});
        let host = host_with(
            dir.path(),
            handler_answering(StatusCode::INTERNAL_SERVER_ERROR, reply),
        );
        let error = host
            .invoke(
                &WITH_OUTPUTS,
                &Reason::HostApi,
                &InvocationRequest::default(),
            )
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("HTTP 500: store down"),
            "{error}"
        );
        assert!(host.queue().peek("gdpr-requests").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_2xx_reply_that_is_not_an_envelope_is_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let host = host_with(
            dir.path(),
            handler_answering(StatusCode::OK, json!(["not", "an", "envelope"])),
        );
        let error = host
            .invoke(
                registry::find("DataRetentionCleanup").unwrap(),
                &Reason::HostApi,
                &InvocationRequest::default(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, InvocationFailure::BadReply { .. }),
            "{error}"
        );
    }
}
