//! Erasing long-inactive customers: `DataRetentionCleanup` finds them and erases them with the
//! GDPR erasure ([`crate::erasure::erase_inactive_customer`]), with the same masking rules;
//! this names their erasure requests.

/// Who requests the erasures of inactive customers (`requested_by` of their erasure requests):
/// a started one that a crash interrupted is found again by this name and finished.
pub const RETENTION_REQUESTER: &str = "system:DataRetentionCleanup";

/// The erasure request id for the retention erasure of `customer_id`: fixed per customer, so
/// a run resumed after a crash continues the same request instead of starting a second one.
pub fn request_id(customer_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(customer_id.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("retention-{hex}")
}
