//! Employees' reads of a customer's data: each one is an audit entry (ids only: tenant, the
//! employee's id and roles, what was read, the customer, correlation id, time), so the
//! customer's GDPR trail answers "who saw my data", and each one is counted by breach
//! detection (rule `bulk-read`). A client reading their own data is not recorded: it is their
//! data, and the hot path stays one read.

use shared::security::{role_list, Rule};

use super::{ApiError, Caller};
use crate::startup::AppState;

/// What was read.
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    /// The audit action, `<what>.read` (`customer.read`, `order.read`, ...).
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
    /// Whose data it is.
    pub customer_id: &'a str,
}

/// Records `read` when `caller` is an employee: one audit insert, before the data is answered
/// (a read that cannot be recorded fails rather than going unrecorded).
pub async fn record_read(
    state: &AppState,
    caller: &Caller,
    read: Read<'_>,
) -> Result<(), ApiError> {
    let Some(roles) = caller.principal.roles() else {
        return Ok(());
    };
    let roles: Vec<_> = roles.iter().copied().collect();
    let entry = caller
        .audit(read.action, read.target_type, read.target_id)
        .about_customer(read.customer_id)
        .by_role(&role_list(&roles));
    state
        .ports
        .audit
        .append_audit(caller.tenant(), entry)
        .await?;
    super::security::observe(state, caller, Rule::BulkRead, read.customer_id).await;
    Ok(())
}
