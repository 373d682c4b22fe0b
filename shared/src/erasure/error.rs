//! Why an erasure could not run.

use crate::store::StoreError;

/// Why an erasure could not run. `CustomerMissing` and `Conflict` are bad input (the request is
/// wrong); `Key` and `Store` are failures (trying again later may succeed).
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("customer {customer_id} does not exist in tenant {tenant}; nothing to erase (check the request)")]
    CustomerMissing { tenant: String, customer_id: String },
    #[error("erasure request {request_id} cannot be processed: {reason}")]
    Conflict { request_id: String, reason: String },
    #[error("the GDPR pseudonym key is unusable: {0}")]
    Key(String),
    #[error("erasure request {request_id} failed at step {step}: {source}")]
    Store {
        request_id: String,
        step: &'static str,
        #[source]
        source: StoreError,
    },
}
