//! A fake of the legacy ERP's SOAP service (`shared/src/erp/wsdl/erp-inventory.wsdl`), served by
//! `handler local` on a loopback port so that the app has an ERP with no network.
//!
//! Start it with [`ErpSandbox::start`]; [`RunningErp::endpoint`] is the endpoint URL the app's
//! client calls (`http://127.0.0.1:{port}/sap/inventory/v1`). State lives in memory.
//!
//! # The service
//!
//! - `GET {endpoint}?wsdl`: the WSDL.
//! - `POST {endpoint}`: SOAP 1.1 (`text/xml`) or SOAP 1.2 (`application/soap+xml`), the version
//!   the `Content-Type` says; the envelope must be of that version. Authentication: HTTP Basic
//!   or a WS-Security UsernameToken (PasswordText), either one, with the configured user name and
//!   password.
//! - `GetStockChanges`: the stock log after a checkpoint (`sinceToken`, a sequence number),
//!   oldest first, `pageSize` (1-1000) at a time; `nextToken` is the last sequence number of the
//!   page. At start the log holds one change per seeded product.
//! - `GetProducts`: the products changed after `changedSince`, by SKU, `page` from 1,
//!   `pageSize` (1-1000, 100 when absent).
//! - `PostGoodsMovement`: an `issue` takes the quantities off hand, a `return` puts them back
//!   (each line a stock change). The same `documentReference` with the same content answers the
//!   first document with `duplicate` true and changes nothing; with other content it is refused
//!   (`DOCUMENT_REFERENCE_CONFLICT`).
//!
//! Faults: `AUTHENTICATION_FAILED`, `INVALID_REQUEST`, `UNKNOWN_SKU`,
//! `DOCUMENT_REFERENCE_CONFLICT` are caller faults, `INTERNAL_ERROR` the service's. SOAP 1.1
//! faults come with HTTP 500; SOAP 1.2 caller faults with 400, the others 500 (each version's
//! HTTP binding).
//!
//! # Seeded products
//!
//! | SKU | name | category | price | on hand | active |
//! | --- | --- | --- | --- | --- | --- |
//! | `KET-001` | Kettle | kitchen | 29.99 EUR | 10 | yes |
//! | `MUG-002` | Mug | kitchen | 7.50 EUR | 120 | yes |
//! | `TEA-003` | Teapot | kitchen | 34.00 EUR | 5 | yes |
//! | `LMP-004` | Desk lamp | home | 45.00 EUR | 0 | yes |
//! | `TST-005` | Toaster | kitchen | 39.90 EUR | 3 | no (discontinued) |
//!
//! # Admin routes (not the ERP's)
//!
//! - `POST /sandbox/stock` `{"sku":"KET-001","onHand":7}`: a stock change, as a warehouse
//!   booking would make.
//! - `POST /sandbox/fail-next` `{"count":N}`: the next N SOAP calls answer an `INTERNAL_ERROR`
//!   fault (HTTP 500).
//! - `POST /sandbox/outage` `{"mode":"unavailable"|"refuse"|"none"}`: every SOAP call answers
//!   `503`, or every connection is dropped, or back to normal.
//! - `GET /sandbox/state`: stock on hand per SKU, the documents posted, the calls received.

mod admin;
mod context;
mod operations;
mod server;
mod soap;
mod state;

pub use context::ErpSandboxConfig;
pub use server::{ErpSandbox, ErpSandboxError, RunningErp};
