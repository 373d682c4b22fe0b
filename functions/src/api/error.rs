//! [`ApiError`]: every way an API request can fail, each rendered as an RFC 9457 problem
//! document with the right status. Messages say what is wrong without echoing tokens or
//! personal data.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shared::auth::AuthError;
use shared::domain::rejection::Rejection;
use shared::domain::validation::{FieldError, Invalid};
use shared::store::StoreError;

use crate::problem::Problem;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    /// Authenticated, but this caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A write that must name the version it replaces came without `If-Match` (428).
    #[error("{0}")]
    PreconditionRequired(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The body holds something that looks like a card number (never logged or stored).
    #[error("the request holds card data")]
    CardDataRefused,
    /// The body holds something that looks like an email address or a phone number where only
    /// ids may be (never logged or stored).
    #[error("the request holds contact data")]
    ContactDataRefused,
    /// An id the caller chose for an event (an audit intake's `eventId`) came again with
    /// another body (422).
    #[error("{0}")]
    EventIdReused(String),
    /// Something on our side that the caller cannot fix (the output sink is missing, say).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn forbidden(action: &str) -> Self {
        Self::Forbidden(format!("your role may not {action}"))
    }
}

impl From<shared::protocol::ProtocolError> for ApiError {
    fn from(error: shared::protocol::ProtocolError) -> Self {
        Self::Internal(error.to_string())
    }
}

fn field_errors(errors: &[FieldError]) -> serde_json::Value {
    json!(errors)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated(error) => {
                let status = error.status();
                let title = if error.is_server_side() {
                    "Service Unavailable"
                } else {
                    "Unauthorized"
                };
                let challenge = error.www_authenticate();
                let mut response = Problem::new(status, title)
                    .detail(error.public_message())
                    .extension("code", json!(error.code()))
                    .into_response();
                if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            Self::Forbidden(detail) => Problem::new(StatusCode::FORBIDDEN, "Forbidden")
                .detail(detail)
                .into_response(),
            Self::NotFound(detail) => Problem::not_found(detail).into_response(),
            Self::PreconditionRequired(detail) => {
                Problem::new(StatusCode::PRECONDITION_REQUIRED, "Precondition Required")
                    .detail(detail)
                    .into_response()
            }
            Self::Invalid(Invalid(errors)) => {
                Problem::new(StatusCode::BAD_REQUEST, "Invalid Request")
                    .detail(format!("{} field(s) are invalid", errors.len()))
                    .extension("errors", field_errors(&errors))
                    .into_response()
            }
            Self::BadRequest(detail) => Problem::new(StatusCode::BAD_REQUEST, "Bad Request")
                .detail(detail)
                .into_response(),
            Self::TooLarge { limit } => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large")
                    .detail(format!("the request body is larger than {limit} bytes"))
                    .into_response()
            }
            Self::UnsupportedMediaType(detail) => {
                Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type")
                    .detail(detail)
                    .into_response()
            }
            Self::CardDataRefused => Problem::new(StatusCode::BAD_REQUEST, "Card Data Refused")
                .detail("the request holds what looks like a card number; send the payment source's vault id, never card data")
                .into_response(),
            Self::ContactDataRefused => Problem::new(StatusCode::BAD_REQUEST, "Contact Data Refused")
                .detail("the request holds what looks like an email address or a phone number; send ids only")
                .into_response(),
            Self::EventIdReused(detail) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Event Id Reused")
                .detail(detail)
                .into_response(),
            Self::Store(error) => store_problem(error).into_response(),
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                    .detail(detail)
                    .into_response()
            }
        }
    }
}

fn store_problem(error: StoreError) -> Problem {
    match error {
        StoreError::NotFound => Problem::not_found("no such resource in your tenant"),
        StoreError::PreconditionFailed { current } => Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "Precondition Failed",
        )
        .detail("the resource changed since you read it; read it again and retry with its new ETag")
        .extension("currentETag", json!(current.to_header())),
        StoreError::Conflict(detail) => {
            Problem::new(StatusCode::CONFLICT, "Conflict").detail(detail)
        }
        StoreError::InvalidContinuation(detail) => {
            Problem::new(StatusCode::BAD_REQUEST, "Invalid Continuation Token")
                .detail(detail)
                .extension(
                    "errors",
                    json!([{"field": "continuation", "message": "not a token from this listing"}]),
                )
        }
        StoreError::Rejected(rejection) => rejection_problem(rejection),
        StoreError::Unavailable { backend, reason } => {
            tracing::error!(backend, %reason, "store unavailable");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Store Unavailable")
                .detail(format!("{backend} is unavailable; retry later"))
        }
        StoreError::Throttled {
            backend,
            attempts,
            retry_after,
        } => {
            tracing::warn!(backend, attempts, "store throttled");
            let wait_seconds = retry_after.map_or(1, |wait| wait.as_secs().max(1));
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Store Busy")
                .detail(format!(
                    "{backend} is throttling requests; retry after {wait_seconds} s"
                ))
                .extension("retryAfterSeconds", json!(wait_seconds))
        }
    }
}

fn rejection_problem(rejection: Rejection) -> Problem {
    let detail = rejection.to_string();
    match rejection {
        Rejection::IllegalTransition(illegal) => Problem::new(StatusCode::CONFLICT, "Illegal Status Transition")
            .detail(detail)
            .extension("allowed", json!(illegal.allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>()))
            .extension("currentStatus", json!(illegal.from.as_str())),
        Rejection::InsufficientStock { product_id, available, requested } => Problem::new(StatusCode::CONFLICT, "Insufficient Stock")
            .detail(detail)
            .extension("productId", json!(product_id))
            .extension("available", json!(available))
            .extension("requested", json!(requested)),
        Rejection::UnknownProducts(ids) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Unknown Products").detail(detail).extension("productIds", json!(ids)),
        Rejection::MixedCurrencies(_) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Mixed Currencies").detail(detail),
        Rejection::IdempotencyKeyReused => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Idempotency Key Reused").detail(detail),
        Rejection::IdempotencyKeyUnusable(_) => Problem::new(StatusCode::BAD_REQUEST, "Invalid Idempotency Key")
            .detail(detail)
            .extension("errors", json!([{"field": "Idempotency-Key", "message": "too long once escaped; use a shorter key (a UUID, say)"}])),
        Rejection::SkuTaken(sku) => Problem::new(StatusCode::CONFLICT, "SKU In Use").detail(detail).extension("sku", json!(sku)),
        Rejection::OwnedByErp { sku, fields } => Problem::new(StatusCode::CONFLICT, "Owned By The ERP").detail(detail).extension("sku", json!(sku)).extension("fields", json!(fields)),
        Rejection::CustomerNotActive(_) => Problem::new(StatusCode::CONFLICT, "Customer Not Active").detail(detail),
        Rejection::RefundExceedsCaptured { requested, refundable } => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Refund Exceeds Captured Amount")
            .detail(detail)
            .extension("requestedCents", json!(requested))
            .extension("refundableCents", json!(refundable)),
        Rejection::PaymentNotRefundable(_) => Problem::new(StatusCode::CONFLICT, "Payment Not Refundable").detail(detail),
        Rejection::OrderNotPayable(_) => Problem::new(StatusCode::CONFLICT, "Order Not Payable").detail(detail),
        Rejection::OrderAlreadyPaid(payment_id) => Problem::new(StatusCode::CONFLICT, "Order Already Has A Payment")
            .detail(detail)
            .extension("paymentId", json!(payment_id)),
    }
}
