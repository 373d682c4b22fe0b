//! Payments v2: capture or void an authorization, refund a capture, read each back.

use serde_json::json;

use crate::outbound::OutboundRequest;

use super::client::{path_id, PayPalClient};
use super::error::{from_outbound, PayPalError};
use super::money::Money;
use super::types::{Authorization, Capture, Refund, RefundOutcome, Refusal};
use super::wire::{Amount, AuthorizationBody, CaptureBody, RefundBody};

/// 422 issues that mean the refund cannot be made (not worth retrying as is).
const REFUND_REFUSALS: &[&str] = &[
    "REFUND_AMOUNT_EXCEEDED",
    "CAPTURE_FULLY_REFUNDED",
    "REFUND_NOT_ALLOWED",
    "REFUND_TIME_LIMIT_EXCEEDED",
    "PARTIAL_REFUND_NOT_ALLOWED",
    "REFUND_CAPTURE_CURRENCY_MISMATCH",
    "REFUND_FAILED_INSUFFICIENT_FUNDS",
    "PENDING_CAPTURE",
    "CANNOT_PROCESS_REFUNDS",
    "MAX_NUMBER_OF_REFUNDS_EXCEEDED",
];

impl PayPalClient {
    /// `POST /v2/payments/authorizations/{id}/capture` of `amount` (`final_capture`: no later
    /// capture of the rest).
    pub async fn capture(
        &self,
        authorization_id: &str,
        amount: &Money,
        idempotency_key: &str,
        final_capture: bool,
    ) -> Result<Capture, PayPalError> {
        let path = format!(
            "/v2/payments/authorizations/{}/capture",
            path_id(authorization_id)?
        );
        let amount = Amount::from_money(&amount.clone().positive()?)?;
        let body = json!({"amount": amount, "final_capture": final_capture});
        let request = self
            .post(path, idempotency_key)?
            .json(&body)
            .map_err(|e| PayPalError::Unexpected(e.to_string()))?;
        let capture: CaptureBody = self.call(request).await?;
        Ok(capture.into_capture()?)
    }

    /// `POST /v2/payments/authorizations/{id}/void` (PayPal answers 204, or 200 with the
    /// authorization).
    pub async fn void(
        &self,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<(), PayPalError> {
        let path = format!(
            "/v2/payments/authorizations/{}/void",
            path_id(authorization_id)?
        );
        let request = self.post(path, idempotency_key)?;
        self.outbound.send(request).await.map_err(from_outbound)?;
        Ok(())
    }

    /// `POST /v2/payments/captures/{id}/refund` of `amount`. A refund PayPal will not make
    /// (amount exceeded, fully refunded...) is [`RefundOutcome::Refused`].
    pub async fn refund(
        &self,
        capture_id: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<RefundOutcome, PayPalError> {
        let path = format!("/v2/payments/captures/{}/refund", path_id(capture_id)?);
        let body = json!({"amount": Amount::from_money(&amount.clone().positive()?)?});
        let request = self
            .post(path, idempotency_key)?
            .json(&body)
            .map_err(|e| PayPalError::Unexpected(e.to_string()))?;
        match self.outbound.send(request).await.map_err(from_outbound) {
            Ok(response) => {
                let refund: RefundBody = response.json()?;
                Ok(RefundOutcome::Refunded(
                    refund.into_refund(Some(capture_id))?,
                ))
            }
            Err(PayPalError::Api {
                status: 422,
                issue: Some(issue),
                debug_id,
                ..
            }) if REFUND_REFUSALS.contains(&issue.as_str()) => {
                Ok(RefundOutcome::Refused(Refusal {
                    issue,
                    debug_id,
                    paypal_order_id: None,
                    authorization_id: None,
                }))
            }
            Err(other) => Err(other),
        }
    }

    /// `GET /v2/payments/authorizations/{id}`.
    pub async fn get_authorization(&self, id: &str) -> Result<Authorization, PayPalError> {
        let path = format!("/v2/payments/authorizations/{}", path_id(id)?);
        let body: AuthorizationBody = self.call(OutboundRequest::get(path)).await?;
        Ok(body.into_authorization()?)
    }

    /// `GET /v2/payments/captures/{id}`.
    pub async fn get_capture(&self, id: &str) -> Result<Capture, PayPalError> {
        let path = format!("/v2/payments/captures/{}", path_id(id)?);
        let body: CaptureBody = self.call(OutboundRequest::get(path)).await?;
        Ok(body.into_capture()?)
    }

    /// `GET /v2/payments/refunds/{id}`.
    pub async fn get_refund(&self, id: &str) -> Result<Refund, PayPalError> {
        let path = format!("/v2/payments/refunds/{}", path_id(id)?);
        let body: RefundBody = self.call(OutboundRequest::get(path)).await?;
        Ok(body.into_refund(None)?)
    }
}
