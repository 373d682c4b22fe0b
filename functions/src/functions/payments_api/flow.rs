//! The payment flow of `POST /payments`: authorize, then capture, recording each answer of the
//! gateway as it comes (so a crash between the steps resumes where it stopped), and the answer
//! to the caller for where the payment ended.
//!
//! The gateway's request ids come from the payment id (`{id}` for the authorization,
//! `{id}-capture`, `{id}-void`): unique across tenants and customers, and the same on a resumed
//! attempt (the store hands back the payment the key first made), so a retry never pays twice.
//!
//! A capture the gateway declines (or refuses) after a successful authorization is first
//! noted on the still-authorized payment (its `failureCode`, audited `payment.capture.declined`),
//! then the authorization is voided so the payer's funds are not held until it expires: the
//! payment ends `voided` (audited `payment.void`; the state machine announces no event, since
//! nothing was taken) and the answer is `402`. If the void gets no answer or PayPal cannot be
//! reached, the payment stays `authorized` with its `failureCode`
//! ([`Payment::capture_declined`]), released: reconciliation (which looks at authorized
//! payments once stale) or a retry with the same `Idempotency-Key` voids it with the same
//! request id. A capture whose outcome is unknown is never voided (it may have taken the
//! money): the payment becomes `unknown`, as before.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use shared::domain::payment::{Payment, PaymentStatus, UpdateSource};
use shared::payments::drive::{Driven, Driver};
use shared::payments::PaymentGateway;

use super::retry_later;
use crate::api::{ApiError, Caller};
use crate::problem::Problem;
use crate::startup::AppState;

/// Takes a payment this request holds as far as the gateway lets it
/// ([`shared::payments::drive`]), then answers.
pub(super) async fn pay(
    state: &AppState,
    gateway: &dyn PaymentGateway,
    caller: &Caller,
    payment: Payment,
) -> Result<Response, ApiError> {
    let audit = |action: &str, id: &str| caller.audit(action, "payment", id);
    let driver = Driver {
        store: state.ports.payments.as_ref(),
        gateway,
        tenant: caller.tenant(),
        correlation_id: Some(&caller.correlation_id),
        source: UpdateSource::Api,
        audit: &audit,
        step_action: "payment.create",
        capture: true,
        release: true,
    };
    match driver.drive(payment).await? {
        Driven::Done(payment) => Ok(answer(&payment)),
        Driven::NotSent {
            reason,
            misconfigured: true,
            ..
        } => Err(ApiError::Internal(format!(
            "the payment gateway is misconfigured: {reason}"
        ))),
        Driven::NotSent { payment, .. } => Ok(unavailable(&payment.id)),
    }
}

/// 201 captured; 202 while it settles; 402 failed, voided, or its capture declined.
fn answer(payment: &Payment) -> Response {
    if payment.capture_declined() {
        return declined(payment);
    }
    let status = match payment.status {
        PaymentStatus::Failed | PaymentStatus::Voided => return declined(payment),
        PaymentStatus::Pending | PaymentStatus::Unknown | PaymentStatus::Authorized => {
            StatusCode::ACCEPTED
        }
        _ => StatusCode::CREATED,
    };
    let mut response = (status, Json(payment)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/payments/{}", payment.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// 402: the gateway declined or refused the payment (for a declined capture: whether the
/// authorization was released yet).
fn declined(payment: &Payment) -> Response {
    let detail = match payment.status {
        PaymentStatus::Voided => "the payment gateway declined the capture; the authorization was voided, no funds are held; try another payment source",
        PaymentStatus::Authorized => "the payment gateway declined the capture; the authorization will be voided shortly; try another payment source once it is",
        _ => "the payment gateway declined the payment; try another payment source",
    };
    Problem::new(StatusCode::PAYMENT_REQUIRED, "Payment Declined")
        .detail(detail)
        .extension("paymentId", json!(payment.id))
        .extension("paymentStatus", json!(payment.status))
        .extension("failureCode", json!(payment.failure_code))
        .into_response()
}

/// 503: nothing reached the gateway; a retry with the same key resumes the payment.
fn unavailable(payment_id: &str) -> Response {
    retry_later(
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Payment Gateway Unavailable",
        )
        .detail("the payment gateway could not be reached; retry with the same Idempotency-Key")
        .extension("paymentId", json!(payment_id)),
    )
}
