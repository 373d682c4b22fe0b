//! The legacy ERP's SOAP service: the contract ([`WSDL`], kept in `wsdl/erp-inventory.wsdl`)
//! and a typed client ([`ErpClient`]) of its three operations: `GetStockChanges` (stock levels
//! changed since a checkpoint, paged), `GetProducts` (product master data) and
//! `PostGoodsMovement` (goods issues and returns, idempotent on the document reference).
//!
//! - [`envelope`]: SOAP 1.1 and 1.2 envelopes, written and read with `quick-xml` and serde.
//! - [`protocol`]: the SOAP version and the namespaces.
//! - [`messages`]: the WSDL's elements as typed values, [`Payload`] one body's content.
//! - [`fault`]: SOAP faults of both versions, [`SoapFault`] what they say.
//! - [`security`]: the WS-Security UsernameToken header.
//!
//! Calls go through the outbound client (service `erp`): breaker, concurrency cap, timeout,
//! retries. The fake ERP of `handler local` uses the same envelope code to answer.

pub mod envelope;
pub mod fault;
pub mod messages;
pub mod protocol;
pub mod security;

mod client;
mod error;

pub use client::{ErpAuth, ErpClient, ErpConfig};
pub use envelope::{decode, encode, EnvelopeError, Incoming};
pub use error::ErpError;
pub use fault::{FaultSide, SoapFault};
pub use messages::{
    ErpProduct, GetProducts, GetStockChanges, GoodsMovement, GoodsMovementPosted, MovementKind,
    MovementLine, MovementLineList, Payload, Price, ProductList, ProductPage, StockChanges,
    StockItem, StockItemList,
};
pub use protocol::{SoapVersion, NAMESPACE};
pub use security::UsernameToken;

/// The ERP's WSDL: the contract the client speaks and the fake ERP serves at `?wsdl`.
pub const WSDL: &str = include_str!("wsdl/erp-inventory.wsdl");

#[cfg(test)]
mod tests;
