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
use shared::domain::payment::{Payment, PaymentStatus, PaymentUpdate, UpdateSource};
use shared::payments::{
    AuthorizeRequest, CaptureRequest, GatewayAnswer, GatewayError, PaymentGateway, PaymentReference,
};

use super::retry_later;
use crate::api::{ApiError, Caller};
use crate::problem::Problem;
use crate::startup::AppState;

/// Takes a payment this request holds as far as the gateway lets it, then answers.
pub(super) async fn pay(
    state: &AppState,
    gateway: &dyn PaymentGateway,
    caller: &Caller,
    mut payment: Payment,
) -> Result<Response, ApiError> {
    if matches!(
        payment.status,
        PaymentStatus::Pending | PaymentStatus::Unknown
    ) {
        let outcome = gateway.authorize(&authorize_request(&payment)).await;
        payment = match record(state, caller, &payment, outcome).await? {
            Step::Done(payment) => *payment,
            Step::Stop(response) => return Ok(response),
        };
    }
    if payment.status == PaymentStatus::Authorized && !payment.capture_declined() {
        let Some(request) = capture_request(&payment) else {
            return Err(ApiError::Internal(format!(
                "payment {} is authorized without an authorization id",
                payment.id
            )));
        };
        let outcome = gateway.capture(&request).await;
        payment = match declined_capture(&outcome) {
            Some(code) => note_declined_capture(state, caller, &payment, outcome, code).await?,
            None => match record(state, caller, &payment, outcome).await? {
                Step::Done(payment) => *payment,
                Step::Stop(response) => return Ok(response),
            },
        };
    }
    if payment.capture_declined() {
        payment = void_authorization(state, gateway, caller, payment).await?;
    }
    if payment.in_flight_until.is_some() {
        let release = release_only();
        payment = write(state, caller, &payment.id, &release).await?;
    }
    Ok(answer(&payment))
}

/// Where a step left the flow.
enum Step {
    /// Recorded; go on with the payment as it now is.
    Done(Box<Payment>),
    /// Answer now (the gateway could not be reached).
    Stop(Response),
}

/// Records what the gateway said of one step. A step that did not end authorized releases the
/// payment (nothing follows it).
async fn record(
    state: &AppState,
    caller: &Caller,
    payment: &Payment,
    outcome: Result<GatewayAnswer, GatewayError>,
) -> Result<Step, ApiError> {
    let mut update = match outcome {
        Ok(answer) => answer.into_update(UpdateSource::Api),
        Err(GatewayError::Declined { code }) | Err(GatewayError::Refused { code, .. }) => {
            failed(code)
        }
        Err(GatewayError::OutcomeUnknown(reason)) => {
            tracing::warn!(payment_id = %payment.id, %reason, "payment outcome unknown");
            PaymentUpdate::status(PaymentStatus::Unknown, UpdateSource::Api)
        }
        Err(GatewayError::Unavailable(reason)) => {
            tracing::warn!(payment_id = %payment.id, %reason, "payment gateway unavailable");
            write(state, caller, &payment.id, &release_only()).await?;
            return Ok(Step::Stop(unavailable(&payment.id)));
        }
        Err(GatewayError::Misconfigured(reason)) => {
            write(state, caller, &payment.id, &release_only()).await?;
            return Err(ApiError::Internal(format!(
                "the payment gateway is misconfigured: {reason}"
            )));
        }
    };
    update.release_in_flight = update.status != Some(PaymentStatus::Authorized);
    Ok(Step::Done(Box::new(
        write(state, caller, &payment.id, &update).await?,
    )))
}

/// The gateway's reason when a capture was definitely not made (declined or refused, or a
/// capture it reports `DECLINED`/`FAILED`); `None` when it was made, is pending, or its outcome
/// is unknown.
fn declined_capture(outcome: &Result<GatewayAnswer, GatewayError>) -> Option<String> {
    match outcome {
        Err(GatewayError::Declined { code }) | Err(GatewayError::Refused { code, .. }) => {
            Some(code.clone())
        }
        Ok(answer) if answer.status == PaymentStatus::Failed => Some(
            answer
                .failure_code
                .clone()
                .unwrap_or_else(|| "DECLINED".into()),
        ),
        _ => None,
    }
}

/// Records that the capture was declined (`code`, and whatever ids the gateway gave) on the
/// payment, which stays authorized and held by this request until its authorization is voided.
async fn note_declined_capture(
    state: &AppState,
    caller: &Caller,
    payment: &Payment,
    outcome: Result<GatewayAnswer, GatewayError>,
    code: String,
) -> Result<Payment, ApiError> {
    tracing::info!(payment_id = %payment.id, %code, "capture declined; voiding the authorization");
    let mut update = match outcome {
        Ok(answer) => answer.into_update(UpdateSource::Api),
        Err(_) => PaymentUpdate::status(PaymentStatus::Authorized, UpdateSource::Api),
    };
    update.status = None;
    update.failure_code = Some(code);
    update.release_in_flight = false;
    write_as(
        state,
        caller,
        &payment.id,
        &update,
        "payment.capture.declined",
    )
    .await
}

/// Voids the authorization of a payment whose capture was declined, with the request id
/// `{id}-void`: `voided` when PayPal released it (or had already); otherwise the payment stays
/// authorized with its failure code, released, for reconciliation or a retry to void.
async fn void_authorization(
    state: &AppState,
    gateway: &dyn PaymentGateway,
    caller: &Caller,
    payment: Payment,
) -> Result<Payment, ApiError> {
    let Some(authorization_id) = payment.gateway.authorization_id.clone() else {
        return Err(ApiError::Internal(format!(
            "payment {} is authorized without an authorization id",
            payment.id
        )));
    };
    let key = format!("{}-void", payment.id);
    match gateway.void(&authorization_id, &key).await {
        Ok(()) => voided(state, caller, &payment).await,
        Err(GatewayError::Refused { code, .. }) if code == "PREVIOUSLY_VOIDED" => {
            voided(state, caller, &payment).await
        }
        Err(error) => {
            tracing::warn!(
                payment_id = %payment.id,
                %error,
                "the authorization of a declined capture could not be voided now; the payment stays authorized for reconciliation"
            );
            write(state, caller, &payment.id, &release_only()).await
        }
    }
}

/// Records the void: the payment ends `voided`, keeping the capture's failure code.
async fn voided(state: &AppState, caller: &Caller, payment: &Payment) -> Result<Payment, ApiError> {
    let mut update = PaymentUpdate::status(PaymentStatus::Voided, UpdateSource::Api);
    update.failure_code.clone_from(&payment.failure_code);
    update.release_in_flight = true;
    write_as(state, caller, &payment.id, &update, "payment.void").await
}

/// One store write of what the gateway said, with its audit entry.
async fn write(
    state: &AppState,
    caller: &Caller,
    id: &str,
    update: &PaymentUpdate,
) -> Result<Payment, ApiError> {
    write_as(state, caller, id, update, "payment.create").await
}

/// One store write of what the gateway said, audited as `action`.
async fn write_as(
    state: &AppState,
    caller: &Caller,
    id: &str,
    update: &PaymentUpdate,
    action: &str,
) -> Result<Payment, ApiError> {
    let audit = caller.audit(action, "payment", id);
    let (payment, _) = state
        .ports
        .payments
        .update_payment(
            caller.tenant(),
            id,
            update,
            Some(&caller.correlation_id),
            audit,
        )
        .await?;
    Ok(payment)
}

fn failed(code: String) -> PaymentUpdate {
    let mut update = PaymentUpdate::status(PaymentStatus::Failed, UpdateSource::Api);
    update.failure_code = Some(code);
    update
}

/// An update that only lets go of the payment.
fn release_only() -> PaymentUpdate {
    let mut update = PaymentUpdate::status(PaymentStatus::Pending, UpdateSource::Api);
    update.status = None;
    update.release_in_flight = true;
    update
}

fn reference(payment: &Payment) -> PaymentReference {
    PaymentReference {
        tenant_id: payment.tenant_id.clone(),
        payment_id: payment.id.clone(),
    }
}

fn authorize_request(payment: &Payment) -> AuthorizeRequest {
    AuthorizeRequest {
        idempotency_key: payment.id.clone(),
        reference: reference(payment),
        order_id: payment.order_id.clone(),
        amount_cents: payment.amount_cents,
        currency: payment.currency.clone(),
        source_id: payment.source_id.clone(),
    }
}

fn capture_request(payment: &Payment) -> Option<CaptureRequest> {
    Some(CaptureRequest {
        idempotency_key: format!("{}-capture", payment.id),
        reference: reference(payment),
        authorization_id: payment.gateway.authorization_id.clone()?,
        amount_cents: payment.amount_cents,
        currency: payment.currency.clone(),
    })
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
