//! PayPal's JSON shapes (only the fields we read), and their conversion to [`super::types`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::money::{AmountError, Money};
use super::types::{
    Authorization, AuthorizationStatus, Capture, CaptureStatus, Order, Payer, Refund, RefundStatus,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Amount {
    pub currency_code: String,
    pub value: String,
}

impl Amount {
    pub(crate) fn from_money(money: &Money) -> Result<Self, AmountError> {
        Ok(Self {
            currency_code: money.currency.clone(),
            value: money.to_paypal_value()?,
        })
    }

    pub(crate) fn to_money(&self) -> Result<Money, AmountError> {
        Money::from_paypal(&self.value, &self.currency_code)
    }
}

fn money(amount: &Option<Amount>) -> Result<Option<Money>, AmountError> {
    amount.as_ref().map(Amount::to_money).transpose()
}

/// PayPal's error body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub debug_id: Option<String>,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub issue: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StatusDetails {
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RelatedIds {
    pub order_id: Option<String>,
    pub authorization_id: Option<String>,
    pub capture_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SupplementaryData {
    #[serde(default)]
    pub related_ids: RelatedIds,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuthorizationBody {
    pub id: String,
    pub status: String,
    pub amount: Option<Amount>,
    pub expiration_time: Option<DateTime<Utc>>,
    pub custom_id: Option<String>,
    #[serde(default)]
    pub supplementary_data: SupplementaryData,
}

impl AuthorizationBody {
    pub(crate) fn into_authorization(self) -> Result<Authorization, AmountError> {
        Ok(Authorization {
            amount: money(&self.amount)?,
            status: AuthorizationStatus::parse(&self.status),
            id: self.id,
            expires_at: self.expiration_time,
            custom_id: self.custom_id,
            order_id: self.supplementary_data.related_ids.order_id,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CaptureBody {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub status_details: StatusDetails,
    pub amount: Option<Amount>,
    pub custom_id: Option<String>,
    #[serde(default)]
    pub supplementary_data: SupplementaryData,
}

impl CaptureBody {
    pub(crate) fn into_capture(self) -> Result<Capture, AmountError> {
        Ok(Capture {
            amount: money(&self.amount)?,
            status: CaptureStatus::parse(&self.status),
            id: self.id,
            status_reason: self.status_details.reason,
            custom_id: self.custom_id,
            authorization_id: self.supplementary_data.related_ids.authorization_id,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Link {
    pub href: String,
    pub rel: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RefundBody {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub status_details: StatusDetails,
    pub amount: Option<Amount>,
    #[serde(default)]
    pub links: Vec<Link>,
}

impl RefundBody {
    /// `capture_id`: the one refunded, when the caller knows it; else from the `up` link.
    pub(crate) fn into_refund(self, capture_id: Option<&str>) -> Result<Refund, AmountError> {
        let from_link = self
            .links
            .iter()
            .find(|l| l.rel == "up" && l.href.contains("/captures/"))
            .and_then(|l| l.href.rsplit('/').next().map(str::to_owned));
        Ok(Refund {
            amount: money(&self.amount)?,
            status: RefundStatus::parse(&self.status),
            id: self.id,
            status_reason: self.status_details.reason,
            capture_id: capture_id.map(str::to_owned).or(from_link),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Payments {
    #[serde(default)]
    pub authorizations: Vec<AuthorizationBody>,
    #[serde(default)]
    pub captures: Vec<CaptureBody>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PurchaseUnit {
    pub reference_id: Option<String>,
    #[serde(default)]
    pub payments: Payments,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Name {
    pub given_name: Option<String>,
    pub surname: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PayerBody {
    #[serde(default)]
    pub name: Name,
    pub email_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CardSource {
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PaymentSource {
    pub card: Option<CardSource>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct OrderBody {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub purchase_units: Vec<PurchaseUnit>,
    pub payer: Option<PayerBody>,
    #[serde(default)]
    pub payment_source: PaymentSource,
}

impl OrderBody {
    /// The payer's name and e-mail: the PayPal payer's, else the card holder's name.
    pub(crate) fn payer(&self) -> Payer {
        let payer = self.payer.as_ref();
        let name = payer
            .map(|p| {
                [p.name.given_name.as_deref(), p.name.surname.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|n| !n.is_empty())
            .or_else(|| {
                self.payment_source
                    .card
                    .as_ref()
                    .and_then(|c| c.name.clone())
            });
        Payer {
            name,
            email: payer.and_then(|p| p.email_address.clone()),
        }
    }

    pub(crate) fn into_order(self) -> Result<Order, AmountError> {
        let mut order = Order {
            id: self.id,
            status: self.status,
            reference_id: self
                .purchase_units
                .first()
                .and_then(|u| u.reference_id.clone()),
            authorizations: Vec::new(),
            captures: Vec::new(),
        };
        for unit in self.purchase_units {
            for authorization in unit.payments.authorizations {
                order
                    .authorizations
                    .push(authorization.into_authorization()?);
            }
            for capture in unit.payments.captures {
                order.captures.push(capture.into_capture()?);
            }
        }
        Ok(order)
    }
}
