//! Employees' reads of a customer's data: each one is an audit entry (ids only: tenant, the
//! employee's id and roles, what was read, the customer, correlation id, time), so the
//! customer's GDPR trail answers "who saw my data", and each one is counted by breach
//! detection (rule `bulk-read`). A client reading their own data is not recorded: it is their
//! data, and the hot path stays one read.
//!
//! A read of an erased customer's records (or of one whose erasure is under way) names the
//! customer by their keyed pseudonym, as the erasure leaves the rest of the trail, so a read
//! after an erasure never links the trail back to the customer.

use shared::domain::customer::CustomerStatus;
use shared::security::{role_list, Rule};
use shared::store::StoreError;

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
    /// The customer's status when the read fetched the profile; `None`: looked up (one point
    /// read more, for employees only).
    pub status: Option<CustomerStatus>,
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
    let status = match read.status {
        Some(status) => Some(status),
        None => customer_status(state, caller, read.customer_id).await?,
    };
    let customer = match status {
        Some(CustomerStatus::Active) => read.customer_id.to_owned(),
        _ => state
            .watch
            .customer_pseudonym(caller.tenant().as_str(), read.customer_id),
    };
    let target = if read.target_id == read.customer_id {
        customer.as_str()
    } else {
        read.target_id
    };
    let entry = caller
        .audit(read.action, read.target_type, target)
        .about_customer(&customer)
        .by_role(&role_list(&roles));
    state
        .ports
        .audit
        .append_audit(caller.tenant(), entry)
        .await?;
    super::security::observe(state, caller, Rule::BulkRead, read.customer_id).await;
    Ok(())
}

/// The customer's status; `None` when there is no such customer (any more).
async fn customer_status(
    state: &AppState,
    caller: &Caller,
    customer_id: &str,
) -> Result<Option<CustomerStatus>, ApiError> {
    match state
        .ports
        .customers
        .get_customer(caller.tenant(), customer_id)
        .await
    {
        Ok(customer) => Ok(Some(customer.status)),
        Err(StoreError::NotFound) => Ok(None),
        Err(error) => Err(error.into()),
    }
}
