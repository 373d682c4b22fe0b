//! The GDPR erasure: erasing one customer across all data, for a request from the
//! `gdpr-requests` queue (`GDPRDataAnonymization`) and for long-inactive customers
//! (`DataRetentionCleanup`).
//!
//! What it does, in order, each step in bounded batches committed with a durable progress
//! marker on the erasure request ([`crate::store::ErasureStep::ALL`]): masks the customer's
//! orders (shipping address, status-change actors and reasons; amounts, items and dates kept),
//! masks their payments (payer removed, payment source pseudonymised, refund reasons removed;
//! ids, amounts, currency, statuses, dates and gateway references kept; each marked with the
//! rule version and time), deletes their idempotency keys, notifications and processed-event
//! markers, pseudonymises the audit trail (HMAC-SHA256 under `GDPR_PSEUDONYM_KEY`), deletes
//! queued messages about the customer (through a [`QueuedMessageScrubber`], which only local
//! mode installs), and finally masks the profile (status `erased`). The rules come from
//! [`crate::domain::masking::RULES`]. It ends with a report ([`build_report`]: counts per
//! store and table, the rule version, timings, the SHA-256 of the report's canonical JSON)
//! stored on the request and an audit entry `gdpr.erasure.completed` (ids only).
//!
//! - The same request again, or a request for a customer already erased: no effect, no second
//!   report ([`ErasureOutcome`]).
//! - A crash mid-way: the next attempt resumes after the last committed batch.
//! - A customer that does not exist, a request id naming another customer: an error saying so
//!   ([`ErasureError`]).
//!
//! - [`context`]: what an erasure works with besides the store ([`ErasureContext`]).
//! - [`key`]: the pseudonym key (`GDPR_PSEUDONYM_KEY`, or a local key file in `DATA_DIR`).
//! - [`run`]: the erasure itself ([`erase_customer`], [`erase_inactive_customer`]).
//! - [`report`]: the report.
//! - [`scrub`]: the hook that deletes queued messages.

pub mod context;
mod error;
pub mod key;
pub mod report;
pub mod run;
pub mod scrub;

pub use context::ErasureContext;
pub use error::ErasureError;
pub use key::{load_or_create_key_file, pseudonym_key, KEY_FILE};
pub use report::build_report;
pub use run::{erase_customer, erase_inactive_customer, ErasureOutcome};
pub use scrub::QueuedMessageScrubber;
