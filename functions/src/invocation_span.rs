//! The span around every request the handler serves: the function's name, the host's
//! invocation id and the W3C trace id, so that whatever the code logs while serving it can be
//! found by invocation in Application Insights. Finished invocations are logged at `debug`.
//!
//! A plain tower layer rather than `middleware::from_fn`, which clones and boxes the inner
//! service and its future on every request (measurable at tens of thousands of requests per
//! second, `BENCHMARKS.md`).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use shared::telemetry::TraceParent;

use crate::registry;

/// The header carrying the host's id for one invocation.
pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// Wraps each request but the readiness probe in an invocation span (when `info` is enabled).
#[derive(Debug, Clone, Copy, Default)]
pub struct InvocationSpanLayer;

impl<S> tower::Layer<S> for InvocationSpanLayer {
    type Service = InvocationSpan<S>;

    fn layer(&self, inner: S) -> InvocationSpan<S> {
        InvocationSpan { inner }
    }
}

/// The service of [`InvocationSpanLayer`].
#[derive(Debug, Clone)]
pub struct InvocationSpan<S> {
    inner: S,
}

impl<S> tower::Service<Request> for InvocationSpan<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = InInvocationSpan<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let path = request.uri().path();
        let traced = (path != "/" && tracing::enabled!(tracing::Level::INFO)).then(|| Traced {
            span: span_of(&request, path),
            started: Instant::now(),
            method: request.method().clone(),
        });
        InInvocationSpan {
            inner: self.inner.call(request),
            traced,
        }
    }
}

/// What a traced request carries until its response.
struct Traced {
    span: tracing::Span,
    started: Instant,
    method: Method,
}

pin_project_lite::pin_project! {
    /// The response future of [`InvocationSpan`]: polls the request's future inside its span.
    pub struct InInvocationSpan<F> {
        #[pin]
        inner: F,
        traced: Option<Traced>,
    }
}

impl<F, E> Future for InInvocationSpan<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.traced.as_ref().map(|traced| traced.span.enter());
        let response = ready!(this.inner.poll(context))?;
        if let Some(traced) = this.traced.as_ref() {
            tracing::debug!(
                method = %traced.method,
                status = response.status().as_u16(),
                elapsed_ms = traced.started.elapsed().as_secs_f64() * 1000.0,
                "invocation finished"
            );
        }
        Poll::Ready(Ok(response))
    }
}

/// The span of one invocation: the function's name, the host's invocation id, the trace id.
fn span_of(request: &Request, path: &str) -> tracing::Span {
    let function = function_for_path(request.method().as_str(), path);
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let invocation_id = header(INVOCATION_ID_HEADER).unwrap_or("-");
    let trace_id = header("traceparent")
        .and_then(TraceParent::parse)
        .map_or_else(TraceParent::new_trace_id, |trace| trace.trace_id);
    tracing::info_span!(
        "invocation",
        function = %function,
        invocation_id = %invocation_id,
        trace_id = %trace_id,
    )
}

/// The function serving `path`: an API route (`/api/...`) or an envelope (`/{FunctionName}`).
fn function_for_path<'a>(method: &str, path: &'a str) -> &'a str {
    if path.starts_with("/api/") {
        return registry::http_function_for(method, path).map_or("-", |def| def.name);
    }
    registry::find(path.trim_start_matches('/')).map_or("-", |def| def.name)
}
