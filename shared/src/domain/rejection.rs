//! Writes the domain's rules refuse: not enough stock, unknown products, mixed currencies, an
//! illegal status change, a reused idempotency key, a customer who can no longer order.

/// A write that the domain's rules refuse; the API answers 409 (or 422) with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error(
        "not enough stock for product {product_id}: {available} available, {requested} requested"
    )]
    InsufficientStock {
        product_id: String,
        available: i64,
        requested: i64,
    },
    #[error("unknown or inactive products: {}", .0.join(", "))]
    UnknownProducts(Vec<String>),
    #[error("all items of an order must be in one currency; found {}", .0.join(", "))]
    MixedCurrencies(Vec<String>),
    #[error(transparent)]
    IllegalTransition(#[from] crate::domain::order::IllegalTransition),
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("this Idempotency-Key cannot be stored: {0}")]
    IdempotencyKeyUnusable(String),
    #[error("a refund of {requested} exceeds what may still be refunded ({refundable})")]
    RefundExceedsCaptured { requested: i64, refundable: i64 },
    #[error("the payment is {0} and cannot be refunded")]
    PaymentNotRefundable(&'static str),
    #[error("the order is {0} and cannot be paid")]
    OrderNotPayable(&'static str),
    #[error("the order already has a payment ({0}) that is not failed or voided")]
    OrderAlreadyPaid(String),
    #[error("SKU {0} is already used by another product of this tenant")]
    SkuTaken(String),
    #[error("product is linked to the ERP by SKU {sku}: {} are the ERP's and change only through ErpProductSync and ErpInventorySync", .fields.join(", "))]
    OwnedByErp {
        sku: String,
        fields: Vec<&'static str>,
    },
    #[error("the customer is {0} and cannot be changed or order")]
    CustomerNotActive(&'static str),
}
