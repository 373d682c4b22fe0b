//! `POST /payments/webhooks/{provider}`: the gateway's notifications. No token: the provider's
//! signature over the raw body is the authentication, checked before anything is read. A
//! verified notice about one of our payments is one store write (the payment's events leave
//! through the outbox); the provider's event id makes a redelivered notice change nothing.
//! Only the event and payment ids are logged.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use serde::Serialize;
use shared::domain::audit::AuditEntry;
use shared::domain::tenant::TenantId;
use shared::payments::{WebhookError, WebhookNotice};
use shared::store::StoreError;

use super::{gateway, not_configured, retry_later};
use crate::api::openapi::{Access, Operation};
use crate::api::ApiError;
use crate::problem::Problem;
use crate::startup::AppState;

/// The actor of a webhook's audit entries.
const WEBHOOK_ACTOR: &str = "payment-gateway-webhook";

pub(super) fn operation() -> Operation {
    Operation::new(Method::POST, "/api/v1/payments/webhooks/{provider}", "receivePaymentWebhook", "The payment gateway's signed notifications (PayPal: provider `paypal`)", post(receive))
        .access(Access::Anonymous)
        .returns::<WebhookReceipt>(200, "Verified: applied, duplicate (changed nothing) or ignored (not about one of our payments). Authentication is the provider's signature headers (PayPal: PAYPAL-TRANSMISSION-SIG and its companions), not a token; 400 when it does not verify, 503 when it cannot be verified now (the provider redelivers)")
        .errors(&[400, 404, 503])
}

/// What became of a notice.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct WebhookReceipt {
    /// `applied`, `duplicate` or `ignored`.
    pub status: &'static str,
}

async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(gateway) = gateway(&state) else {
        return Ok(not_configured());
    };
    if provider != gateway.provider() {
        return Err(ApiError::NotFound(format!(
            "no payment provider {provider:?}"
        )));
    }
    let notice = match gateway.verify_webhook(&headers, &body).await {
        Ok(notice) => notice,
        Err(error) => return Ok(refused(error)),
    };
    let status = apply(&state, &notice).await?;
    Ok(Json(WebhookReceipt { status }).into_response())
}

/// Applies a verified notice: `applied`, `duplicate` or `ignored`.
async fn apply(state: &AppState, notice: &WebhookNotice) -> Result<&'static str, ApiError> {
    let event_id = notice.event_id.as_str();
    let Some(reference) = &notice.reference else {
        tracing::info!(event_id, "payment webhook not about one of our payments");
        return Ok("ignored");
    };
    let payment_id = reference.payment_id.as_str();
    let Ok(tenant) = TenantId::new(&reference.tenant_id) else {
        tracing::info!(event_id, "payment webhook with an unknown tenant");
        return Ok("ignored");
    };
    let audit = AuditEntry::now(
        tenant.as_str(),
        WEBHOOK_ACTOR,
        "payment.webhook",
        "payment",
        payment_id,
        event_id,
    );
    let result = state
        .ports
        .payments
        .update_payment(
            &tenant,
            payment_id,
            &notice.to_update(),
            Some(event_id),
            audit,
        )
        .await;
    match result {
        Ok((_, applied)) if applied.changed => {
            tracing::info!(event_id, payment_id, "payment webhook applied");
            Ok("applied")
        }
        Ok(_) => Ok("duplicate"),
        Err(StoreError::NotFound) => {
            tracing::info!(
                event_id,
                payment_id,
                "payment webhook for no stored payment"
            );
            Ok("ignored")
        }
        Err(error) => Err(ApiError::Store(error)),
    }
}

/// 400 for a notice that does not verify (nothing applied); 503 when it cannot be verified now.
fn refused(error: WebhookError) -> Response {
    let (title, detail) = match &error {
        WebhookError::Unverifiable(_) => {
            tracing::warn!("payment webhook not verifiable now");
            return retry_later(
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Webhook Unverifiable")
                    .detail("the webhook could not be verified now; send it again later"),
            );
        }
        WebhookError::BadSignature(_) => {
            ("Webhook Signature Invalid", "the signature does not verify")
        }
        WebhookError::Stale => (
            "Webhook Stale",
            "the webhook was sent outside the accepted time window",
        ),
        WebhookError::Malformed(_) => (
            "Webhook Malformed",
            "the webhook's body or headers are malformed",
        ),
    };
    tracing::warn!(problem = title, "payment webhook refused");
    Problem::new(StatusCode::BAD_REQUEST, title)
        .detail(detail)
        .into_response()
}
