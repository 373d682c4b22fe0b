//! The ERP's messages (the elements of `wsdl/erp-inventory.wsdl`) as typed values, and
//! [`Payload`]: whatever one SOAP body holds, a request, a response or a fault.
//!
//! Field names follow the WSDL; serde renames them. Written without prefixes: the envelope's
//! `Body` declares the ERP namespace as the default one, so every payload element is qualified
//! as the schema wants (`elementFormDefault="qualified"`). Read by local name, so a server that
//! writes `tns:` prefixes (or any other) reads the same.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fault::FaultXml;

/// One SOAP body's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    GetStockChanges(GetStockChanges),
    GetStockChangesResponse(StockChanges),
    GetProducts(GetProducts),
    GetProductsResponse(ProductPage),
    PostGoodsMovement(GoodsMovement),
    PostGoodsMovementResponse(GoodsMovementPosted),
    /// A fault, in either SOAP version's shape.
    #[serde(rename(serialize = "soap:Fault", deserialize = "Fault"))]
    Fault(FaultXml),
}

impl Payload {
    /// The element's name, for errors and logs.
    pub fn element(&self) -> &'static str {
        match self {
            Self::GetStockChanges(_) => "GetStockChanges",
            Self::GetStockChangesResponse(_) => "GetStockChangesResponse",
            Self::GetProducts(_) => "GetProducts",
            Self::GetProductsResponse(_) => "GetProductsResponse",
            Self::PostGoodsMovement(_) => "PostGoodsMovement",
            Self::PostGoodsMovementResponse(_) => "PostGoodsMovementResponse",
            Self::Fault(_) => "Fault",
        }
    }
}

/// `GetStockChanges`: stock levels changed after a checkpoint, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetStockChanges {
    /// The `nextToken` of the previous page; `None` for the first call ever.
    #[serde(
        rename = "sinceToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub since_token: Option<String>,
    #[serde(rename = "pageSize")]
    pub page_size: u32,
}

/// `GetStockChangesResponse`: one page of changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChanges {
    pub items: StockItemList,
    /// The checkpoint after this page's last item.
    #[serde(rename = "nextToken")]
    pub next_token: String,
    #[serde(rename = "hasMore")]
    pub has_more: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockItemList {
    #[serde(rename = "item", default)]
    pub items: Vec<StockItem>,
}

/// A SKU's units on hand in the ERP, and when that last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockItem {
    pub sku: String,
    #[serde(rename = "onHand")]
    pub on_hand: i64,
    #[serde(rename = "changedAt")]
    pub changed_at: DateTime<Utc>,
}

/// `GetProducts`: master data changed since a time (all when `None`), by page from 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetProducts {
    #[serde(
        rename = "changedSince",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub changed_since: Option<DateTime<Utc>>,
    pub page: u32,
    #[serde(rename = "pageSize", default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}

/// `GetProductsResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductPage {
    pub products: ProductList,
    #[serde(rename = "hasMore")]
    pub has_more: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductList {
    #[serde(rename = "product", default)]
    pub products: Vec<ErpProduct>,
}

/// A product as the ERP, which owns these fields, describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErpProduct {
    pub sku: String,
    pub name: String,
    pub category: String,
    pub price: Price,
    pub active: bool,
}

/// A price: `amount` is an `xs:decimal` with at most two decimals, `currency` ISO 4217.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub amount: String,
    pub currency: String,
}

impl Price {
    /// A price from minor units (cents).
    pub fn from_minor_units(cents: i64, currency: &str) -> Self {
        let sign = if cents < 0 { "-" } else { "" };
        let abs = cents.unsigned_abs();
        Self {
            amount: format!("{sign}{}.{:02}", abs / 100, abs % 100),
            currency: currency.to_owned(),
        }
    }

    /// The amount in minor units (cents); `None` if it is not a decimal with at most two
    /// decimals (or out of range).
    pub fn minor_units(&self) -> Option<i64> {
        let text = self.amount.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let fraction = fraction.trim_end_matches('0');
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || fraction.len() > 2 || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        let cents: i64 = format!("{whole}{fraction:0<2}").parse().ok()?;
        Some(if negative { -cents } else { cents })
    }
}

/// `PostGoodsMovement`: a goods issue or a return, idempotent on `document_reference`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsMovement {
    #[serde(rename = "documentReference")]
    pub document_reference: String,
    pub kind: MovementKind,
    pub lines: MovementLineList,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementLineList {
    #[serde(rename = "line", default)]
    pub lines: Vec<MovementLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementLine {
    pub sku: String,
    pub quantity: u32,
}

/// `issue` (goods leave the warehouse: an order shipped) or `return` (they come back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    Issue,
    Return,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Return => "return",
        }
    }
}

impl Serialize for MovementKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MovementKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.trim() {
            "issue" => Ok(Self::Issue),
            "return" => Ok(Self::Return),
            other => Err(serde::de::Error::custom(format!(
                "kind {other:?} is neither issue nor return"
            ))),
        }
    }
}

/// `PostGoodsMovementResponse`: the ERP's document, and whether the reference was seen before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsMovementPosted {
    #[serde(rename = "documentNumber")]
    pub document_number: String,
    pub duplicate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_convert_between_decimals_and_minor_units() {
        let price = Price::from_minor_units(2999, "EUR");
        assert_eq!(price.amount, "29.99");
        assert_eq!(price.minor_units(), Some(2999));
        for (amount, cents) in [("5", Some(500)), ("5.5", Some(550)), ("0.050", Some(5))] {
            let price = Price {
                amount: amount.into(),
                currency: "EUR".into(),
            };
            assert_eq!(price.minor_units(), cents, "{amount}");
        }
        for amount in ["", "1.234", "abc", "1e3", ".5"] {
            let price = Price {
                amount: amount.into(),
                currency: "EUR".into(),
            };
            assert_eq!(price.minor_units(), None, "{amount}");
        }
    }
}
