//! Orders v2: authorize a vaulted card (`POST /v2/checkout/orders`, intent `AUTHORIZE`), read an
//! order back.

use serde_json::json;

use crate::outbound::OutboundRequest;

use super::client::{path_id, PayPalClient};
use super::error::{from_outbound, PayPalError};
use super::money::Money;
use super::types::{
    AuthorizationStatus, AuthorizeOutcome, AuthorizeRequest, Authorized, Order, Refusal,
};
use super::wire::{Amount, OrderBody};

/// 422 issues that mean the payment source was declined (the order is not worth retrying as is);
/// also what a capture of an authorization can be refused with.
pub(super) const DECLINE_ISSUES: &[&str] = &[
    "INSTRUMENT_DECLINED",
    "CARD_EXPIRED",
    "CARD_CLOSED",
    "TRANSACTION_REFUSED",
    "PAYER_CANNOT_PAY",
    "PAYER_ACCOUNT_RESTRICTED",
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED",
    "DECLINED_DUE_TO_RELATED_TXN",
    "COMPLIANCE_VIOLATION",
    "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED",
    "TRANSACTION_LIMIT_EXCEEDED",
    "PAYER_ACTION_REQUIRED",
];

impl PayPalClient {
    /// Creates an order with intent `AUTHORIZE` paid by the vaulted card: PayPal authorizes at
    /// once. A declined card or a denied authorization is [`AuthorizeOutcome::Declined`].
    pub async fn authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<AuthorizeOutcome, PayPalError> {
        let money = Money::new(request.amount_minor, &request.currency).positive()?;
        let body = json!({
            "intent": "AUTHORIZE",
            "purchase_units": [{
                "reference_id": request.order_id,
                "custom_id": request.payment_id,
                "invoice_id": request.payment_id,
                "amount": Amount::from_money(&money)?,
            }],
            "payment_source": {"card": {"vault_id": request.vault_id}},
        });
        let call = self
            .post("/v2/checkout/orders".into(), &request.idempotency_key)?
            .json(&body)
            .map_err(|e| PayPalError::Unexpected(e.to_string()))?;
        match self.outbound.send(call).await.map_err(from_outbound) {
            Ok(response) => authorized(response.json()?),
            Err(PayPalError::Api {
                status: 422,
                issue: Some(issue),
                debug_id,
                ..
            }) if DECLINE_ISSUES.contains(&issue.as_str()) => {
                Ok(AuthorizeOutcome::Declined(Refusal {
                    issue,
                    debug_id,
                    paypal_order_id: None,
                    authorization_id: None,
                }))
            }
            Err(other) => Err(other),
        }
    }

    /// `GET /v2/checkout/orders/{id}`.
    pub async fn get_order(&self, paypal_order_id: &str) -> Result<Order, PayPalError> {
        let path = format!("/v2/checkout/orders/{}", path_id(paypal_order_id)?);
        let body: OrderBody = self.call(OutboundRequest::get(path)).await?;
        Ok(body.into_order()?)
    }
}

fn authorized(order: OrderBody) -> Result<AuthorizeOutcome, PayPalError> {
    let payer = order.payer();
    let order_id = order.id.clone();
    let status = order.status.clone();
    let first = order
        .purchase_units
        .into_iter()
        .next()
        .and_then(|unit| unit.payments.authorizations.into_iter().next());
    let Some(authorization) = first else {
        // A saved card that needs the buyer (3-D Secure): nobody is there to act, a decline.
        if status == "PAYER_ACTION_REQUIRED" {
            return Ok(declined(status, order_id, None));
        }
        return Err(PayPalError::Unexpected(format!(
            "order {order_id} ({status}) has no authorization"
        )));
    };
    let authorization = authorization.into_authorization()?;
    if authorization.status == AuthorizationStatus::Denied {
        return Ok(declined("DENIED".into(), order_id, Some(authorization.id)));
    }
    Ok(AuthorizeOutcome::Authorized(Authorized {
        paypal_order_id: order_id,
        authorization,
        payer,
    }))
}

fn declined(issue: String, order_id: String, authorization_id: Option<String>) -> AuthorizeOutcome {
    AuthorizeOutcome::Declined(Refusal {
        issue,
        debug_id: None,
        paypal_order_id: Some(order_id),
        authorization_id,
    })
}
