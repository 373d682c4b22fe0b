//! `POST /payments/{id}/refund`: gives back money of a captured payment, within what was
//! captured and not refunded yet (`admin`, `order-manager`). The refund is recorded first
//! (pending, counting against the limit), then sent to the gateway with the refund id as its
//! request id, so a retry with the same `Idempotency-Key` never refunds twice.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::domain::field_rules::rules;
use shared::domain::payment::{Payment, Refund, RefundStatus};
use shared::domain::validation::{new_id, Validation};
use shared::payments::refunds::{send_refund, RefundContext, RefundError, RefundOutcome};
use shared::payments::PaymentGateway;
use shared::store::Started;

use super::{
    gateway, in_progress, not_configured, refuse_card_data, replayed, request_hash,
    required_idempotency_key, retry_later, visible_payment, IN_FLIGHT_SECONDS, PAYING_ROLES,
};
use crate::api::openapi::{Access, Operation};
use crate::api::{ApiError, Caller, JsonBody};
use crate::problem::Problem;
use crate::startup::AppState;

pub(super) fn operation() -> Operation {
    Operation::new(
        Method::POST,
        "/api/v1/payments/{id}/refund",
        "refundPayment",
        "Give back all or part of a captured payment",
        post(refund),
    )
    .access(Access::SignedIn("admin, order-manager"))
    .headers(&[(
        "Idempotency-Key",
        "required; a retry with the same key and body returns the first result",
    )])
    .require_headers(&["Idempotency-Key"])
    .body::<RefundInput>()
    .example(|| json!({"amountCents": 1500, "reason": "one item returned"}))
    .returns::<Payment>(201, "The payment with its refunds")
    .also_returns(&[(200, "A replay of a finished request with the same key and body (header Idempotent-Replayed: true)")])
    .errors(&[400, 401, 403, 404, 409, 413, 415, 422, 503])
}

/// `POST /payments/{id}/refund`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundInput {
    /// Minor units; all that may still be refunded when left out.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "shared::domain::field_rules::optional_whole_number"
    )]
    #[schemars(schema_with = "shared::domain::field_rules::optional_refund_cents_schema")]
    pub amount_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "shared::domain::field_rules::optional_reason_schema")]
    pub reason: Option<String>,
}

impl RefundInput {
    fn validate(&self) -> Result<(), ApiError> {
        let mut check = Validation::new();
        if let Some(cents) = self.amount_cents {
            rules::REFUND_CENTS.check(&mut check, "amountCents", cents);
        }
        if let Some(reason) = &self.reason {
            rules::REASON.check(&mut check, "reason", reason);
        }
        check.finish().map_err(ApiError::Invalid)
    }
}

async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    caller.require_role(PAYING_ROLES, "refund payments")?;
    refuse_card_data(&body)?;
    let input: RefundInput = body.parse()?;
    input.validate()?;
    let key = required_idempotency_key(&headers)?;
    let Some(gateway) = gateway(&state) else {
        return Ok(not_configured());
    };
    let payment = visible_payment(&state, &caller, &id).await?;
    let refund = new_refund(&input, &payment, &key)?;
    let audit = caller
        .audit("payment.refund", "payment", &id)
        .about_customer(&payment.customer_id);
    let until = Utc::now() + Duration::seconds(IN_FLIGHT_SECONDS);
    let started = state
        .ports
        .payments
        .begin_refund(caller.tenant(), &id, refund, until, audit)
        .await?;
    match started {
        Started::New(payment) | Started::Resumed(payment) => {
            send(&state, gateway.as_ref(), &caller, payment, &key).await
        }
        Started::Replayed(payment) => Ok(replayed(&payment)),
        Started::InProgress(payment) => Ok(in_progress(&payment.id)),
    }
}

fn new_refund(input: &RefundInput, payment: &Payment, key: &str) -> Result<Refund, ApiError> {
    let now = Utc::now();
    Ok(Refund {
        id: new_id(),
        amount_cents: input
            .amount_cents
            .unwrap_or_else(|| payment.refundable_cents()),
        status: RefundStatus::Pending,
        gateway_refund_id: None,
        idempotency_key: key.to_owned(),
        request_hash: request_hash(input)?,
        reason: input.reason.clone(),
        created_at: now,
        updated_at: now,
    })
}

/// Sends the refund this request holds to the gateway and records the answer
/// ([`send_refund`], shared with the refund of a cancelled order).
async fn send(
    state: &AppState,
    gateway: &dyn PaymentGateway,
    caller: &Caller,
    payment: Payment,
    key: &str,
) -> Result<Response, ApiError> {
    let context = RefundContext {
        source: shared::domain::payment::UpdateSource::Api,
        tenant: caller.tenant(),
        correlation_id: Some(&caller.correlation_id),
        audit: caller.audit("payment.refund", "payment", &payment.id),
    };
    let sent = send_refund(
        state.ports.payments.as_ref(),
        gateway,
        context,
        payment,
        key,
    )
    .await
    .map_err(|error| match error {
        RefundError::Store { source, .. } => ApiError::Store(source),
        other => ApiError::Internal(other.to_string()),
    })?;
    Ok(answer(&sent.outcome, &sent.payment, &sent.refund_id))
}

/// The API's answer for where the refund ended.
fn answer(outcome: &RefundOutcome, payment: &Payment, refund_id: &str) -> Response {
    match outcome {
        RefundOutcome::Refused(code) => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Refund Refused")
                .detail("the payment gateway refused the refund")
                .extension("paymentId", json!(payment.id))
                .extension("refundId", json!(refund_id))
                .extension("failureCode", json!(code))
                .into_response()
        }
        RefundOutcome::Unavailable(_) => retry_later(
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Payment Gateway Unavailable",
            )
            .detail("the refund was not sent; retry with the same Idempotency-Key")
            .extension("paymentId", json!(payment.id))
            .extension("refundId", json!(refund_id)),
        ),
        RefundOutcome::Recorded | RefundOutcome::Answered(..) | RefundOutcome::Unknown => {
            let mut response = (StatusCode::CREATED, Json(payment)).into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/payments/{}", payment.id))
            {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }
}
