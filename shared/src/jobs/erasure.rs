//! Erasing long-inactive customers: `DataRetentionCleanup` finds them, the GDPR erasure
//! (issue 4, `GDPRDataAnonymization`) erases them, with the same masking rules.
//!
//! The job sees the erasure through [`InactiveCustomerEraser`], so it never carries masking
//! rules of its own. The function layer passes the real one; [`UnwiredEraser`] (the default)
//! erases nothing and the report counts those customers as `customersAwaitingErasure`.

/// Who requests the erasures of inactive customers (`requested_by` of their erasure requests):
/// a started one that a crash interrupted is found again by this name and finished.
pub const RETENTION_REQUESTER: &str = "system:DataRetentionCleanup";

/// What erasing one inactive customer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InactiveErasure {
    /// The customer was erased now.
    Erased,
    /// The customer was erased before (by a request or an earlier run).
    AlreadyErased,
    /// No erasure is wired in; nothing was done.
    NotWired,
}

/// Erases one customer with the GDPR erasure's rules, idempotently for a given `request_id`.
#[async_trait::async_trait]
pub trait InactiveCustomerEraser: Send + Sync {
    async fn erase(
        &self,
        tenant: &crate::domain::tenant::TenantId,
        customer_id: &str,
        request_id: &str,
    ) -> Result<InactiveErasure, String>;
}

/// The eraser of a [`super::JobContext`] that was given none: erases nothing, and the report
/// counts those customers as `customersAwaitingErasure`. Only this crate's own tests run with
/// it; the app always passes the GDPR erasure (`functions::functions::gdpr_data_anonymization::
/// RetentionEraser`, wired in `functions/src/jobs_cli.rs`).
pub struct UnwiredEraser;

#[async_trait::async_trait]
impl InactiveCustomerEraser for UnwiredEraser {
    async fn erase(
        &self,
        _tenant: &crate::domain::tenant::TenantId,
        _customer_id: &str,
        _request_id: &str,
    ) -> Result<InactiveErasure, String> {
        Ok(InactiveErasure::NotWired)
    }
}

/// The erasure request id for the retention erasure of `customer_id`: fixed per customer, so
/// a run resumed after a crash continues the same request instead of starting a second one.
pub fn request_id(customer_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(customer_id.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("retention-{hex}")
}
