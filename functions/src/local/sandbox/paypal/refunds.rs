//! `/v2/payments/captures/{id}/refund` and `GET /v2/payments/refunds/{id}`: full or partial
//! refunds of a completed capture, never more than what is left, in the capture's currency.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;

use super::auth::Authorized;
use super::context::{Sandbox, Shared};
use super::errors::ApiError;
use super::fields;
use super::idempotency::{self, Effects, Post};
use super::ids;
use super::money::Money;
use super::payments::{behaviour_of_order, refused, take_from, API};
use super::render;
use super::state::{CaptureStatus, Inner, Outcome, Refund};
use super::webhooks;

/// `POST /v2/payments/captures/{id}/refund`.
pub async fn refund(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = fields::object(&body, API)?;
    let amount = fields::amount(&body, "", API)?;
    let invoice_id = fields::text(&body, "invoice_id", "", 127, API)?;
    let post = Post::new(format!("refund:{id}"), &headers, body, API);
    let lookup = id.clone();
    Ok(idempotency::run(
        &sandbox,
        post,
        move |inner| {
            let order = inner.captures.get(&lookup).map(|capture| &capture.order_id);
            behaviour_of_order(inner, order)
        },
        move |inner, sandbox| refund_capture(inner, sandbox, &id, amount, invoice_id),
    )
    .await)
}

fn refund_capture(
    inner: &mut Inner,
    sandbox: &Sandbox,
    id: &str,
    amount: Option<Money>,
    invoice_id: Option<String>,
) -> Result<Effects, ApiError> {
    let capture = inner
        .captures
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(API, id))?;
    match capture.status {
        CaptureStatus::Refunded => {
            return Err(refused(
                "CAPTURE_FULLY_REFUNDED",
                "The capture has already been fully refunded.",
            ))
        }
        CaptureStatus::Pending => {
            return Err(refused(
                "PENDING_CAPTURE",
                "Cannot initiate a refund as the capture is pending.",
            ))
        }
        CaptureStatus::Declined => {
            return Err(refused(
                "TRANSACTION_REFUSED",
                "A declined capture cannot be refunded.",
            ))
        }
        CaptureStatus::Completed | CaptureStatus::PartiallyRefunded => {}
    }
    let amount = take_from(
        &capture.amount,
        capture.refunded_minor,
        amount,
        [
            "REFUND_CAPTURE_CURRENCY_MISMATCH",
            "Refund must be in the same currency as the capture.",
        ],
        [
            "REFUND_AMOUNT_EXCEEDED",
            "The refund amount must be less than or equal to the capture amount that has not yet been refunded.",
        ],
    )?;
    let refunded = capture.refunded_minor + amount.minor;
    let refund_id = ids::resource_id();
    let refund = Refund {
        id: refund_id.clone(),
        capture_id: capture.id.clone(),
        order_id: capture.order_id.clone(),
        amount,
        invoice_id: invoice_id.or(capture.invoice_id.clone()),
        create_time: Utc::now(),
    };
    if let Some(capture) = inner.captures.get_mut(id) {
        capture.refunded_minor = refunded;
        capture.status = if refunded >= capture.amount.minor {
            CaptureStatus::Refunded
        } else {
            CaptureStatus::PartiallyRefunded
        };
        capture.update_time = refund.create_time;
    }
    let summary = format!(
        "A {} {} capture payment was refunded",
        refund.amount.value(),
        refund.amount.currency
    );
    let resource = render::refund(&sandbox.base_url, inner, &refund, true);
    inner.refunds.insert(refund_id.clone(), refund);
    let mut effects = Effects::new(Outcome::Refund(refund_id));
    effects.events.push(webhooks::record(
        inner,
        &sandbox.base_url,
        "PAYMENT.CAPTURE.REFUNDED",
        "refund",
        summary,
        resource,
    ));
    Ok(effects)
}

/// `GET /v2/payments/refunds/{id}`.
pub async fn show_refund(
    State(sandbox): State<Shared>,
    _auth: Authorized,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let inner = sandbox.memory.lock();
    let refund = inner
        .refunds
        .get(&id)
        .ok_or_else(|| ApiError::not_found(API, &id))?;
    Ok(Json(render::refund(
        &sandbox.base_url,
        &inner,
        refund,
        true,
    )))
}
