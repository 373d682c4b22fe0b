//! `ErpGoodsMovement`: stock movements back to the ERP, from the `order-events` topic
//! (subscription `erp`, [`OrderEvent`]).
//!
//! - `shipped`: a goods issue (`PostGoodsMovement` kind `issue`) of the order's lines whose
//!   products are linked to the ERP (have a SKU), quantities summed per SKU.
//! - `returned`: a goods return (kind `return`) of the same lines.
//! - Other events, orders of a tenant the ERP does not feed (`ERP_TENANTS`), orders with no
//!   linked product, and a missing or other customer's order: complete with no effect.
//!
//! The event id is the movement's `documentReference`: the ERP posts a reference once and
//! answers the same document again (`duplicate: true`) to a redelivered event, so a movement is
//! posted once however often its event arrives. The call goes through the ERP client (breaker,
//! retries of transient failures). When the ERP cannot be reached or answers a fault, the
//! invocation fails with the ERP's fault text; Service Bus delivers the event again and, after
//! its delivery count, dead-letters it with that text as the reason. Logs carry ids only.

use std::collections::BTreeMap;

use serde_json::json;
use shared::domain::messages::{OrderEvent, OrderEventType};
use shared::domain::order::Order;
use shared::domain::tenant::TenantId;
use shared::erp::{ErpClient, GoodsMovement, MovementKind, MovementLine, MovementLineList};
use shared::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};
use shared::store::StoreError;

use crate::invoke::{checked_message_ids, FunctionError, InvokeFuture, MESSAGE_BINDING};
use crate::startup::AppState;

/// The function's name.
pub const FUNCTION: &str = "ErpGoodsMovement";

pub fn invoke(state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { run(state, request).await })
}

async fn run(
    state: AppState,
    request: InvocationRequest,
) -> Result<InvocationResponse, FunctionError> {
    let message = ServiceBusMessage::<OrderEvent>::from_request(&request, MESSAGE_BINDING)?;
    let event = message.body;
    let tenant = checked_message_ids(
        &event.tenant_id,
        &[
            ("eventId", &event.event_id),
            ("orderId", &event.order_id),
            ("customerId", &event.customer_id),
        ],
    )?;
    let handled = match movement_kind(event.event_type) {
        None => "ignored".to_owned(),
        Some(kind) => post(&state, &tenant, &event, kind).await?,
    };
    tracing::info!(event_id = %event.event_id, order_id = %event.order_id, result = %handled, "order event sent to the ERP");
    Ok(InvocationResponse::empty()
        .log(format!(
            "event {} (order.{}) for order {}: {handled}",
            event.event_id,
            event.event_type.as_str(),
            event.order_id
        ))
        .with_return_value(
            json!({ "eventId": event.event_id, "orderId": event.order_id, "result": handled }),
        ))
}

/// The movement an order event makes, if any.
fn movement_kind(event: OrderEventType) -> Option<MovementKind> {
    match event {
        OrderEventType::Shipped => Some(MovementKind::Issue),
        OrderEventType::Returned => Some(MovementKind::Return),
        _ => None,
    }
}

/// Posts the movement of the event's order; what happened, as text.
async fn post(
    state: &AppState,
    tenant: &TenantId,
    event: &OrderEvent,
    kind: MovementKind,
) -> Result<String, FunctionError> {
    let Some(erp) = state.outbound.erp.as_ref() else {
        return Ok("unchanged: no ERP configured".into());
    };
    if !state.settings.erp.tenants.contains(tenant) {
        return Ok("unchanged: the ERP does not feed this tenant".into());
    }
    let order = match state.ports.orders.get_order(tenant, &event.order_id).await {
        Ok(order) if order.customer_id == event.customer_id => order,
        Ok(_) | Err(StoreError::NotFound) => {
            return Ok("unchanged: order not found for this customer".into())
        }
        Err(error) => return Err(failed(event, kind, &error.to_string())),
    };
    let lines = linked_lines(state, tenant, &order)
        .await
        .map_err(|error| failed(event, kind, &error.to_string()))?;
    if lines.is_empty() {
        return Ok("unchanged: no product of the order is linked to the ERP".into());
    }
    send(erp, event, kind, lines).await
}

async fn send(
    erp: &ErpClient,
    event: &OrderEvent,
    kind: MovementKind,
    lines: Vec<MovementLine>,
) -> Result<String, FunctionError> {
    let movement = GoodsMovement {
        document_reference: event.event_id.clone(),
        kind,
        lines: MovementLineList { lines },
    };
    match erp.post_goods_movement(&movement).await {
        Ok(posted) if posted.duplicate => Ok(format!(
            "goods {} already posted as {} (duplicate)",
            kind.as_str(),
            posted.document_number
        )),
        Ok(posted) => Ok(format!(
            "goods {} posted as {}",
            kind.as_str(),
            posted.document_number
        )),
        Err(error) => {
            tracing::warn!(event_id = %event.event_id, order_id = %event.order_id, %error, "goods movement not posted; the event is delivered again");
            Err(failed(event, kind, &error.to_string()))
        }
    }
}

/// The order's lines whose product has a SKU, summed per SKU.
async fn linked_lines(
    state: &AppState,
    tenant: &TenantId,
    order: &Order,
) -> Result<Vec<MovementLine>, StoreError> {
    let mut per_sku: BTreeMap<String, u32> = BTreeMap::new();
    for item in &order.items {
        let product = match state
            .ports
            .products
            .get_product(tenant, &item.product_id)
            .await
        {
            Ok(product) => product,
            Err(StoreError::NotFound) => continue,
            Err(error) => return Err(error),
        };
        if let Some(sku) = product.sku {
            let quantity = u32::try_from(item.quantity).unwrap_or(0);
            *per_sku.entry(sku).or_insert(0) += quantity;
        }
    }
    Ok(per_sku
        .into_iter()
        .filter(|(_, quantity)| *quantity > 0)
        .map(|(sku, quantity)| MovementLine { sku, quantity })
        .collect())
}

fn failed(event: &OrderEvent, kind: MovementKind, reason: &str) -> FunctionError {
    FunctionError::Failed(format!(
        "event {}: goods {} for order {} not posted: {reason}",
        event.event_id,
        kind.as_str(),
        event.order_id
    ))
}
