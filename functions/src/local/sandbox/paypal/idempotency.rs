//! One path for every `POST` that changes state: `PayPal-Request-Id` replay and conflict, the
//! `sandbox-flaky` and `sandbox-timeout` behaviours, webhook delivery and late completions
//! after the state is unlocked, and the reply rendered from the resource's current state.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::context::{Sandbox, Shared};
use super::errors::{Api, ApiError, Detail};
use super::render;
use super::sources::Behaviour;
use super::state::{Inner, Outcome, StoredRequest};
use super::webhooks;

/// One state-changing request.
pub struct Post {
    /// What the request id is scoped to (the route and the resource id in its path).
    pub scope: String,
    pub request_id: Option<String>,
    pub body: Value,
    pub api: Api,
    pub prefer: Prefer,
}

/// The `Prefer` header: `return=minimal` or `return=representation`, if given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    Unspecified,
    Minimal,
    Representation,
}

impl Post {
    /// Reads `PayPal-Request-Id` and `Prefer` from `headers`.
    pub fn new(scope: String, headers: &HeaderMap, body: Value, api: Api) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        let prefer = match header("prefer").as_deref() {
            Some("return=minimal") => Prefer::Minimal,
            Some("return=representation") => Prefer::Representation,
            _ => Prefer::Unspecified,
        };
        Self {
            scope,
            request_id: header("paypal-request-id"),
            body,
            api,
            prefer,
        }
    }
}

/// What a processed request changed, beyond the state itself.
pub struct Effects {
    pub outcome: Outcome,
    /// Webhook events recorded, to deliver once the state is unlocked.
    pub events: Vec<String>,
    /// A `sandbox-slow` capture to complete later.
    pub slow_capture: Option<String>,
}

impl Effects {
    pub fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            events: Vec::new(),
            slow_capture: None,
        }
    }
}

/// Runs `op` once per `PayPal-Request-Id` and answers as PayPal does.
pub async fn run(
    sandbox: &Shared,
    post: Post,
    behaviour_of: impl FnOnce(&Inner) -> Option<Behaviour>,
    op: impl FnOnce(&mut Inner, &Sandbox) -> Result<Effects, ApiError>,
) -> Response {
    let (reply, effects, late) = {
        let mut inner = sandbox.memory.lock();
        match process(sandbox, &mut inner, &post, behaviour_of, op) {
            Ok(Processed::Replayed(reply)) => return reply,
            Ok(Processed::Done { effects, behaviour }) => {
                let (status, body) = reply(sandbox, &inner, &effects.outcome, false, post.prefer);
                (
                    respond(status, body),
                    effects,
                    behaviour == Some(Behaviour::Timeout),
                )
            }
            Err(error) => return error.into_response(),
        }
    };
    for event in effects.events {
        webhooks::spawn_delivery(sandbox, event);
    }
    if let Some(capture_id) = effects.slow_capture {
        sandbox.spawn(webhooks::complete_later(sandbox.clone(), capture_id));
    }
    if late {
        tokio::time::sleep(sandbox.config.scaled(sandbox.config.timeout_reply_delay)).await;
    }
    reply
}

enum Processed {
    Replayed(Response),
    Done {
        effects: Effects,
        behaviour: Option<Behaviour>,
    },
}

fn process(
    sandbox: &Sandbox,
    inner: &mut Inner,
    post: &Post,
    behaviour_of: impl FnOnce(&Inner) -> Option<Behaviour>,
    op: impl FnOnce(&mut Inner, &Sandbox) -> Result<Effects, ApiError>,
) -> Result<Processed, ApiError> {
    let mut attempt = 0;
    if let Some(id) = &post.request_id {
        let count = inner.attempts.entry(id.clone()).or_default();
        *count += 1;
        attempt = *count;
        let key = (post.scope.clone(), id.clone());
        if let Some(stored) = inner.requests.get(&key) {
            if stored.body != post.body {
                return Err(ApiError::unprocessable(
                    post.api,
                    Detail::issue(
                        "PAYPAL_REQUEST_ID_PREVIOUSLY_USED",
                        "The PayPal-Request-Id has already been used for another request.",
                    ),
                ));
            }
            let (status, body) = reply(sandbox, inner, &stored.outcome, true, post.prefer);
            return Ok(Processed::Replayed(respond(status, body)));
        }
    }
    let behaviour = behaviour_of(inner);
    if behaviour == Some(Behaviour::Flaky) && post.request_id.is_some() && attempt <= 2 {
        return Err(ApiError::Unavailable);
    }
    let effects = op(inner, sandbox)?;
    if let Some(id) = &post.request_id {
        inner.requests.insert(
            (post.scope.clone(), id.clone()),
            StoredRequest {
                body: post.body.clone(),
                outcome: effects.outcome.clone(),
            },
        );
    }
    Ok(Processed::Done { effects, behaviour })
}

fn respond(status: StatusCode, body: Option<Value>) -> Response {
    match body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    }
}

/// The answer for `outcome`, from the current state: orders replay with `200`, payments with
/// `201` as first answered; `return=minimal` keeps `id`, `status` and `links`.
fn reply(
    sandbox: &Sandbox,
    inner: &Inner,
    outcome: &Outcome,
    replay: bool,
    prefer: Prefer,
) -> (StatusCode, Option<Value>) {
    let base = &sandbox.base_url;
    let created = if replay {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body = match outcome {
        Outcome::Order(id) => {
            let body = inner
                .orders
                .get(id)
                .map(|order| render::order(base, inner, order));
            return (created, body);
        }
        Outcome::Capture(id) => inner
            .captures
            .get(id)
            .map(|capture| render::capture(base, inner, capture, false)),
        Outcome::Refund(id) => inner
            .refunds
            .get(id)
            .map(|refund| render::refund(base, inner, refund, false)),
        Outcome::Voided(id) => {
            if prefer != Prefer::Representation {
                return (StatusCode::NO_CONTENT, None);
            }
            let body = inner
                .authorizations
                .get(id)
                .map(|auth| render::authorization(base, inner, auth, false));
            return (StatusCode::OK, body);
        }
    };
    let body = match (prefer, body) {
        (Prefer::Minimal, Some(body)) => Some(json!({
            "id": body["id"],
            "status": body["status"],
            "links": body["links"],
        })),
        (_, body) => body,
    };
    (StatusCode::CREATED, body)
}
