//! [`PayPalGateway`]: the [`PaymentGateway`] port on PayPal. It maps the app's requests to the
//! PayPal client's calls and PayPal's answers to payment statuses: a declined or denied
//! authorization fails the payment, a call without an answer leaves it unknown, a capture that
//! PayPal holds (`PENDING`) keeps it authorized until PayPal's webhook or reconciliation says, a
//! capture refused because the payer's instrument was declined (`422 INSTRUMENT_DECLINED` and
//! the like) is [`GatewayError::Declined`].

use chrono::{DateTime, Utc};

use super::types::{
    AuthorizationStatus, AuthorizeOutcome, AuthorizeRequest as PayPalAuthorize, CaptureStatus,
    RefundOutcome, RefundStatus as PayPalRefundStatus,
};
use super::{
    Money, PayPalClient, PayPalError, WebhookConfig, WebhookEvent, WebhookEventKind,
    WebhookVerifier,
};
use crate::domain::payment::{GatewayRefs, Payer, PaymentStatus, RefundStatus, RefundUpdate};
use crate::outbound::{OutboundClient, OutboundError, Secret};
use crate::payments::{
    AuthorizeRequest, CaptureRequest, GatewayAnswer, GatewayError, GatewayTransaction,
    PaymentGateway, PaymentReference, RefundAnswer, RefundRequest, TransactionKind, WebhookError,
    WebhookNotice,
};

/// PayPal behind the payment port.
pub struct PayPalGateway {
    client: PayPalClient,
    webhooks: WebhookVerifier,
}

/// Where and how to reach PayPal.
#[derive(Debug, Clone)]
pub struct PayPalSetup {
    pub base_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub webhook_ids: Vec<String>,
    pub webhook_tolerance: std::time::Duration,
    /// Certificate origins trusted besides PayPal's hosts (a local sandbox's `http://127.0.0.1:port`).
    pub extra_cert_origins: Vec<String>,
    /// How long one call may take, retries included (the outbound client's total timeout).
    pub timeout: std::time::Duration,
    /// How long the circuit breaker stays open before it lets a probe through.
    pub breaker_open_for: std::time::Duration,
}

impl PayPalGateway {
    pub fn new(client: PayPalClient, webhooks: WebhookVerifier) -> Self {
        Self { client, webhooks }
    }

    /// The gateway for `setup`, and its outbound client (for readiness).
    pub fn connect(setup: PayPalSetup) -> Result<(Self, OutboundClient), OutboundError> {
        let mut config =
            PayPalClient::outbound_config(setup.base_url, setup.client_id, setup.client_secret);
        config.total_timeout = setup.timeout;
        config.breaker.open_for = setup.breaker_open_for;
        let outbound = OutboundClient::new(config)?;
        let mut webhooks = WebhookConfig::new(setup.webhook_ids);
        webhooks.tolerance = setup.webhook_tolerance;
        webhooks.extra_cert_origins = setup.extra_cert_origins;
        let verifier = WebhookVerifier::new(reqwest::Client::new(), webhooks);
        Ok((
            Self::new(PayPalClient::new(outbound.clone()), verifier),
            outbound,
        ))
    }
}

fn gateway_error(error: PayPalError) -> GatewayError {
    if error.outcome_unknown() {
        return GatewayError::OutcomeUnknown(error.to_string());
    }
    match &error {
        PayPalError::Outbound(outbound) if outbound.nothing_sent() => {
            GatewayError::Unavailable(error.to_string())
        }
        PayPalError::Outbound(outbound) => match outbound.status() {
            // A 5xx or 429 after the retries: PayPal may have done it; the same key settles it.
            Some(status) if status.is_server_error() || status.as_u16() == 429 => {
                GatewayError::OutcomeUnknown(error.to_string())
            }
            Some(status) if status.as_u16() == 401 || status.as_u16() == 403 => {
                GatewayError::Misconfigured(error.to_string())
            }
            _ => GatewayError::Unavailable(error.to_string()),
        },
        PayPalError::Api {
            status,
            issue,
            name,
            ..
        } => {
            if *status >= 500 || *status == 429 {
                GatewayError::OutcomeUnknown(error.to_string())
            } else if *status == 401 || *status == 403 {
                GatewayError::Misconfigured(error.to_string())
            } else {
                GatewayError::Refused {
                    status: *status,
                    code: issue.clone().or_else(|| name.clone()).unwrap_or_default(),
                }
            }
        }
        _ => GatewayError::Misconfigured(error.to_string()),
    }
}

/// A capture's error: a `422` whose issue says the instrument was declined is a decline (the
/// authorization still holds the funds), anything else as [`gateway_error`] maps it.
fn capture_error(error: PayPalError) -> GatewayError {
    match &error {
        PayPalError::Api {
            status: 422,
            issue: Some(issue),
            ..
        } if super::orders::DECLINE_ISSUES.contains(&issue.as_str()) => GatewayError::Declined {
            code: issue.clone(),
        },
        _ => gateway_error(error),
    }
}

fn payer(payer: super::types::Payer) -> Option<Payer> {
    (payer.name.is_some() || payer.email.is_some()).then_some(Payer {
        name: payer.name,
        email: payer.email,
    })
}

fn authorization_status(status: &AuthorizationStatus) -> PaymentStatus {
    match status {
        AuthorizationStatus::Created => PaymentStatus::Authorized,
        AuthorizationStatus::Captured | AuthorizationStatus::PartiallyCaptured => {
            PaymentStatus::Captured
        }
        AuthorizationStatus::Denied => PaymentStatus::Failed,
        AuthorizationStatus::Voided | AuthorizationStatus::Expired => PaymentStatus::Voided,
        AuthorizationStatus::Pending | AuthorizationStatus::Other(_) => PaymentStatus::Pending,
    }
}

#[async_trait::async_trait]
impl PaymentGateway for PayPalGateway {
    fn provider(&self) -> &'static str {
        "paypal"
    }

    async fn authorize(&self, request: &AuthorizeRequest) -> Result<GatewayAnswer, GatewayError> {
        let outcome = self
            .client
            .authorize(&PayPalAuthorize {
                idempotency_key: request.idempotency_key.clone(),
                payment_id: request.reference.encode(),
                order_id: request.order_id.clone(),
                amount_minor: request.amount_cents,
                currency: request.currency.clone(),
                vault_id: request.source_id.clone(),
            })
            .await
            .map_err(gateway_error)?;
        Ok(match outcome {
            AuthorizeOutcome::Authorized(granted) => GatewayAnswer {
                status: authorization_status(&granted.authorization.status),
                gateway: GatewayRefs {
                    order_id: Some(granted.paypal_order_id),
                    authorization_id: Some(granted.authorization.id),
                    capture_id: None,
                },
                captured_cents: None,
                failure_code: None,
                payer: payer(granted.payer),
            },
            AuthorizeOutcome::Declined(refusal) => GatewayAnswer {
                status: PaymentStatus::Failed,
                gateway: GatewayRefs {
                    order_id: refusal.paypal_order_id,
                    authorization_id: refusal.authorization_id,
                    capture_id: None,
                },
                captured_cents: None,
                failure_code: Some(refusal.issue),
                payer: None,
            },
        })
    }

    async fn capture(&self, request: &CaptureRequest) -> Result<GatewayAnswer, GatewayError> {
        let amount = Money::new(request.amount_cents, request.currency.clone());
        let capture = self
            .client
            .capture(
                &request.authorization_id,
                &amount,
                &request.idempotency_key,
                true,
            )
            .await
            .map_err(capture_error)?;
        let status = match capture.status {
            CaptureStatus::Completed
            | CaptureStatus::Refunded
            | CaptureStatus::PartiallyRefunded => PaymentStatus::Captured,
            CaptureStatus::Declined | CaptureStatus::Failed => PaymentStatus::Failed,
            CaptureStatus::Pending | CaptureStatus::Other(_) => PaymentStatus::Authorized,
        };
        Ok(GatewayAnswer {
            status,
            gateway: GatewayRefs {
                order_id: None,
                authorization_id: Some(request.authorization_id.clone()),
                capture_id: Some(capture.id),
            },
            captured_cents: capture.amount.map(|money| money.minor),
            failure_code: (status == PaymentStatus::Failed)
                .then(|| capture.status_reason.unwrap_or_else(|| "DECLINED".into())),
            payer: None,
        })
    }

    async fn void(
        &self,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        self.client
            .void(authorization_id, idempotency_key)
            .await
            .map_err(gateway_error)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundAnswer, GatewayError> {
        let amount = Money::new(request.amount_cents, request.currency.clone());
        let outcome = self
            .client
            .refund(&request.capture_id, &amount, &request.idempotency_key)
            .await
            .map_err(gateway_error)?;
        match outcome {
            RefundOutcome::Refunded(refund) => Ok(RefundAnswer {
                status: match refund.status {
                    PayPalRefundStatus::Completed => RefundStatus::Completed,
                    PayPalRefundStatus::Failed | PayPalRefundStatus::Cancelled => {
                        RefundStatus::Failed
                    }
                    PayPalRefundStatus::Pending | PayPalRefundStatus::Other(_) => {
                        RefundStatus::Pending
                    }
                },
                gateway_refund_id: refund.id,
            }),
            RefundOutcome::Refused(refusal) => Err(GatewayError::Refused {
                status: 422,
                code: refusal.issue,
            }),
        }
    }

    async fn transactions(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<GatewayTransaction>, GatewayError> {
        let rows = self
            .client
            .transactions(from, to)
            .await
            .map_err(gateway_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let amount = row.amount?;
                let kind = match row.event_code.as_deref() {
                    Some("T0006") | Some("T0003") | Some("T0004") => TransactionKind::Capture,
                    Some(code) if code.starts_with("T11") => TransactionKind::Refund,
                    _ => TransactionKind::Other,
                };
                Some(GatewayTransaction {
                    transaction_id: row.id,
                    kind,
                    reference: row
                        .custom_field
                        .as_deref()
                        .and_then(PaymentReference::decode),
                    amount_cents: amount.minor,
                    currency: amount.currency,
                    at: row.initiated_at.unwrap_or(from),
                })
            })
            .collect())
    }

    async fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<WebhookNotice, WebhookError> {
        let event = self.webhooks.verify(headers, body).await.map_err(|error| {
            use super::WebhookError as PayPal;
            match error {
                PayPal::CertFetch(_) => WebhookError::Unverifiable(error.to_string()),
                PayPal::StaleTime { .. } => WebhookError::Stale,
                PayPal::MalformedBody(_) => WebhookError::Malformed(error.to_string()),
                other => WebhookError::BadSignature(other.to_string()),
            }
        })?;
        Ok(notice(event))
    }
}

/// What a verified PayPal event says about one of our payments.
fn notice(event: WebhookEvent) -> WebhookNotice {
    let amount_cents = event.amount.as_ref().map(|money| money.minor);
    let mut gateway = GatewayRefs {
        order_id: event.order_id.clone(),
        authorization_id: event.authorization_id.clone(),
        capture_id: event.capture_id.clone(),
    };
    let (status, refund) = match event.kind {
        WebhookEventKind::AuthorizationCreated => {
            gateway.authorization_id = gateway.authorization_id.or(event.resource_id.clone());
            (Some(PaymentStatus::Authorized), None)
        }
        WebhookEventKind::AuthorizationVoided => (Some(PaymentStatus::Voided), None),
        WebhookEventKind::CaptureCompleted => {
            gateway.capture_id = gateway.capture_id.or(event.resource_id.clone());
            (Some(PaymentStatus::Captured), None)
        }
        WebhookEventKind::CaptureDenied | WebhookEventKind::CaptureDeclined => {
            (Some(PaymentStatus::Failed), None)
        }
        WebhookEventKind::CaptureRefunded | WebhookEventKind::CaptureReversed => (
            None,
            Some(RefundUpdate {
                refund_id: None,
                gateway_refund_id: event.resource_id.clone(),
                status: match event.resource_status.as_deref() {
                    Some("PENDING") => RefundStatus::Pending,
                    Some("FAILED") | Some("CANCELLED") => RefundStatus::Failed,
                    _ => RefundStatus::Completed,
                },
                amount_cents,
            }),
        ),
        WebhookEventKind::CapturePending | WebhookEventKind::Other => (None, None),
    };
    WebhookNotice {
        reference: event
            .custom_id
            .as_deref()
            .or(event.invoice_id.as_deref())
            .and_then(PaymentReference::decode),
        event_id: event.id,
        event_type: event.event_type,
        status,
        gateway,
        amount_cents,
        refund,
    }
}
