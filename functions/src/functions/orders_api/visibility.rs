//! Which orders a caller may see, and how an employee's read of one is recorded: shared by the
//! orders API and the shipping operations on an order.

use shared::domain::order::Order;

use crate::api::reads::Read;
use crate::api::{ApiError, Caller};
use crate::startup::AppState;

/// The order if the caller may see it (another customer's: 404, as if it did not exist).
pub(crate) async fn visible_order(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Order, ApiError> {
    let order = state.ports.orders.get_order(caller.tenant(), id).await?;
    caller.check_customer(&order.customer_id)?;
    Ok(order)
}

/// An employee's read of `order`, for the GDPR trail (`action`: what was read).
pub(crate) fn order_read<'a>(action: &'a str, order: &'a Order) -> Read<'a> {
    Read {
        action,
        target_type: "order",
        target_id: &order.id,
        customer_id: &order.customer_id,
        status: None,
    }
}
