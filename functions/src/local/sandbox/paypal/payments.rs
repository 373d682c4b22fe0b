//! `/v2/payments/authorizations`: capture and void an authorization, `GET` it and its
//! captures; plus the late completion of `sandbox-slow` captures. Refunds are in `refunds`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;

use super::auth::Authorized;
use super::context::{Sandbox, Shared};
use super::errors::{Api, ApiError, Detail};
use super::fields;
use super::idempotency::{self, Effects, Post};
use super::ids;
use super::money::Money;
use super::render;
use super::sources::Behaviour;
use super::state::{AuthorizationStatus, Capture, CaptureStatus, Inner, Outcome};
use super::webhooks;

pub(super) const API: Api = Api::Payments;

/// The amount taken from `total` of which `used` is gone: `asked`, or all that is left; refused
/// with PayPal's `[issue, description]` when in another currency or more than is left.
pub(super) fn take_from(
    total: &Money,
    used: i64,
    asked: Option<Money>,
    other_currency: [&str; 2],
    too_much: [&str; 2],
) -> Result<Money, ApiError> {
    let remaining = total.minor - used;
    let amount = asked.unwrap_or_else(|| total.with_minor(remaining));
    if amount.currency != total.currency {
        return Err(refused(other_currency[0], other_currency[1]));
    }
    if amount.minor > remaining {
        return Err(refused(too_much[0], too_much[1]));
    }
    Ok(amount)
}

pub(super) fn refused(issue: &str, description: &str) -> ApiError {
    ApiError::unprocessable(API, Detail::issue(issue, description))
}

/// Records a capture of `amount` for the order, `PENDING` for `sandbox-slow` and `DECLINED`
/// for `sandbox-deny` and `sandbox-capture-decline`; returns its id.
pub fn record_capture(
    inner: &mut Inner,
    order_id: &str,
    authorization_id: Option<String>,
    amount: Money,
    final_capture: bool,
    invoice_id: Option<String>,
    behaviour: Behaviour,
) -> String {
    let now = Utc::now();
    let id = ids::resource_id();
    let status = match behaviour {
        Behaviour::Slow => CaptureStatus::Pending,
        Behaviour::Deny | Behaviour::CaptureDecline => CaptureStatus::Declined,
        _ => CaptureStatus::Completed,
    };
    inner.captures.insert(
        id.clone(),
        Capture {
            id: id.clone(),
            order_id: order_id.to_owned(),
            authorization_id,
            amount,
            status,
            final_capture,
            invoice_id,
            refunded_minor: 0,
            create_time: now,
            update_time: now,
        },
    );
    id
}

/// The behaviour of the order behind an authorization or a capture.
pub(super) fn behaviour_of_order(inner: &Inner, order_id: Option<&String>) -> Option<Behaviour> {
    order_id
        .and_then(|id| inner.orders.get(id))
        .map(|order| order.behaviour)
}

/// `POST /v2/payments/authorizations/{id}/capture`.
pub async fn capture(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = fields::object(&body, API)?;
    let amount = fields::amount(&body, "", API)?;
    let invoice_id = fields::text(&body, "invoice_id", "", 127, API)?;
    let final_capture = match body.get("final_capture") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => {
            return Err(fields::invalid_value(
                API,
                "/final_capture",
                &other.to_string(),
            ))
        }
    };
    let post = Post::new(format!("capture:{id}"), &headers, body, API);
    let lookup = id.clone();
    Ok(idempotency::run(
        &sandbox,
        post,
        move |inner| {
            let order = inner.authorizations.get(&lookup).map(|auth| &auth.order_id);
            behaviour_of_order(inner, order)
        },
        move |inner, sandbox| {
            capture_authorization(inner, sandbox, &id, amount, final_capture, invoice_id)
        },
    )
    .await)
}

fn capture_authorization(
    inner: &mut Inner,
    sandbox: &Sandbox,
    id: &str,
    amount: Option<Money>,
    final_capture: bool,
    invoice_id: Option<String>,
) -> Result<Effects, ApiError> {
    let auth = inner
        .authorizations
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(API, id))?;
    match auth.status {
        AuthorizationStatus::Voided => {
            return Err(refused(
                "AUTHORIZATION_VOIDED",
                "A voided authorization cannot be captured or reauthorized.",
            ))
        }
        AuthorizationStatus::Captured => {
            return Err(refused(
                "AUTHORIZATION_ALREADY_CAPTURED",
                "Authorization has already been captured.",
            ))
        }
        AuthorizationStatus::Denied => {
            return Err(refused(
                "AUTHORIZATION_DENIED",
                "A denied authorization cannot be captured.",
            ))
        }
        AuthorizationStatus::Created | AuthorizationStatus::PartiallyCaptured => {}
    }
    let amount = take_from(
        &auth.amount,
        auth.captured_minor,
        amount,
        [
            "CURRENCY_MISMATCH",
            "Currency of capture must be the same as currency of authorization.",
        ],
        [
            "MAX_CAPTURE_AMOUNT_EXCEEDED",
            "Capture amount exceeds allowable limit.",
        ],
    )?;
    let order = inner.orders.get(&auth.order_id);
    let behaviour = order.map_or(Behaviour::Ok, |order| order.behaviour);
    if behaviour == Behaviour::CaptureDecline {
        // PayPal's answer when the funding instrument is refused at capture time: no capture
        // is made and the authorization keeps its funds until it is voided or expires.
        return Err(refused(
            "INSTRUMENT_DECLINED",
            "The instrument presented was either declined by the processor or bank, or it can't be used for this payment.",
        ));
    }
    let invoice_id = invoice_id.or_else(|| order.and_then(|o| o.labels.invoice_id.clone()));
    let captured = auth.captured_minor + amount.minor;
    let capture_id = record_capture(
        inner,
        &auth.order_id,
        Some(auth.id.clone()),
        amount,
        final_capture,
        invoice_id,
        behaviour,
    );
    if let Some(auth) = inner.authorizations.get_mut(id) {
        auth.captured_minor = captured;
        auth.status = if final_capture || captured >= auth.amount.minor {
            AuthorizationStatus::Captured
        } else {
            AuthorizationStatus::PartiallyCaptured
        };
        auth.update_time = Utc::now();
    }
    let mut effects = Effects::new(Outcome::Capture(capture_id.clone()));
    effects.events.extend(webhooks::record_capture(
        inner,
        &sandbox.base_url,
        &capture_id,
    ));
    if behaviour == Behaviour::Slow {
        effects.slow_capture = Some(capture_id);
    }
    Ok(effects)
}

/// `POST /v2/payments/authorizations/{id}/void`.
pub async fn void(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = fields::object(&body, API)?;
    let post = Post::new(format!("void:{id}"), &headers, body, API);
    let lookup = id.clone();
    Ok(idempotency::run(
        &sandbox,
        post,
        move |inner| {
            let order = inner.authorizations.get(&lookup).map(|auth| &auth.order_id);
            behaviour_of_order(inner, order)
        },
        move |inner, sandbox| void_authorization(inner, sandbox, &id),
    )
    .await)
}

fn void_authorization(inner: &mut Inner, sandbox: &Sandbox, id: &str) -> Result<Effects, ApiError> {
    let auth = inner
        .authorizations
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found(API, id))?;
    match auth.status {
        AuthorizationStatus::Captured | AuthorizationStatus::PartiallyCaptured => {
            return Err(refused(
                "PREVIOUSLY_CAPTURED",
                "Authorization has been previously captured and hence cannot be voided.",
            ))
        }
        AuthorizationStatus::Voided => {
            return Err(refused(
                "PREVIOUSLY_VOIDED",
                "Authorization has been previously voided and hence cannot be voided again.",
            ))
        }
        AuthorizationStatus::Denied => {
            return Err(refused(
                "CANNOT_BE_VOIDED",
                "A denied authorization cannot be voided.",
            ))
        }
        AuthorizationStatus::Created => {}
    }
    auth.status = AuthorizationStatus::Voided;
    auth.update_time = Utc::now();
    let auth = auth.clone();
    let summary = format!(
        "A payment authorization was voided for {} {}",
        auth.amount.value(),
        auth.amount.currency
    );
    let resource = render::authorization(&sandbox.base_url, inner, &auth, true);
    let mut effects = Effects::new(Outcome::Voided(id.to_owned()));
    effects.events.push(webhooks::record(
        inner,
        &sandbox.base_url,
        "PAYMENT.AUTHORIZATION.VOIDED",
        "authorization",
        summary,
        resource,
    ));
    Ok(effects)
}

/// `GET /v2/payments/authorizations/{id}`.
pub async fn show_authorization(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let inner = sandbox.memory.lock();
    let auth = inner
        .authorizations
        .get(&id)
        .ok_or_else(|| ApiError::not_found(API, &id))?;
    Ok(Json(render::authorization(
        &sandbox.base_url,
        &inner,
        auth,
        true,
    )))
}

/// `GET /v2/payments/captures/{id}`.
pub async fn show_capture(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let inner = sandbox.memory.lock();
    let capture = inner
        .captures
        .get(&id)
        .ok_or_else(|| ApiError::not_found(API, &id))?;
    Ok(Json(render::capture(
        &sandbox.base_url,
        &inner,
        capture,
        true,
    )))
}
