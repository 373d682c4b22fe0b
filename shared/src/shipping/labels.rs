//! Buying the label of a shipped order, once: the flow `ShippingLabel` runs for each `shipped`
//! order event.
//!
//! 1. The order's shipment is looked up: one with a label means a redelivered event (done).
//! 2. Otherwise the shipment is recorded (`requested`) with the audit entry of the address
//!    disclosed to the carrier, in one transaction; a concurrent or earlier delivery finds it.
//! 3. The shipment is created at the carrier (its id stored at once), unless it was before; the
//!    cheapest rate is bought. A label the carrier says was bought already (a lost answer, a
//!    crash after the purchase) is read back instead of bought again.
//! 4. The label (tracking number, label URL, tracker) is stored on the shipment.
//!
//! So a duplicate event never buys a second label: the store holds one shipment per order,
//! and the carrier refuses to buy postage twice for one shipment.

use crate::config::ShippingSettings;
use crate::domain::audit::AuditEntry;
use crate::domain::messages::OrderEvent;
use crate::domain::order::Order;
use crate::domain::shipment::Shipment;
use crate::domain::tenant::TenantId;
use crate::store::{ShipmentBegun, Store, StoreError};

use super::carrier::{Carrier, CarrierShipment, Label, ShipmentRequest};
use super::error::CarrierError;
use super::parcel::{Parcel, ShipAddress};

/// What the label flow did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelOutcome {
    /// The label was bought (or read back from the carrier) and stored now.
    Bought(Shipment),
    /// The order's shipment had its label already: nothing sent.
    AlreadyBought(Shipment),
    /// Nothing to do, and why (no such order, no address, not this customer's).
    Skipped(&'static str),
}

/// Why the label flow stopped; the event is to be delivered again.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("order {order_id}: the store failed: {source}")]
    Store {
        order_id: String,
        #[source]
        source: StoreError,
    },
    #[error("order {order_id}: {source}")]
    Carrier {
        order_id: String,
        #[source]
        source: CarrierError,
    },
    #[error("order {order_id} needs a label, and no carrier is configured (CARRIER_BASE_URL)")]
    NoCarrier { order_id: String },
}

/// The audit action of a disclosure to `carrier` (its name ends the action).
pub fn disclosure_action(carrier: &str) -> String {
    format!("gdpr.disclosure.{carrier}")
}

/// The shipment request of `order` to `to`.
pub fn request_for(order: &Order, to: ShipAddress, settings: &ShippingSettings) -> ShipmentRequest {
    ShipmentRequest {
        reference: order.id.clone(),
        from: settings.from_address.clone(),
        to,
        parcel: Parcel::of(order, f64::from(settings.item_weight_oz)),
    }
}

/// The label flow for a `shipped` event (see the module doc). `actor` names the function.
/// `carrier` is `None` when none is configured: an order that needs no label (unknown, or
/// without an address) is still skipped, one that needs a label is [`LabelError::NoCarrier`].
pub async fn label_for_shipped(
    store: &dyn Store,
    carrier: Option<&dyn Carrier>,
    settings: &ShippingSettings,
    event: &OrderEvent,
    actor: &str,
) -> Result<LabelOutcome, LabelError> {
    let Ok(tenant) = TenantId::new(&event.tenant_id) else {
        return Ok(LabelOutcome::Skipped("invalid tenant id"));
    };
    let failed = |source| LabelError::Store {
        order_id: event.order_id.clone(),
        source,
    };
    let order = match store.get_order(&tenant, &event.order_id).await {
        Ok(order) if order.customer_id == event.customer_id => order,
        Ok(_) | Err(StoreError::NotFound) => return Ok(LabelOutcome::Skipped("order not found")),
        Err(error) => return Err(failed(error)),
    };
    let Some(address) = &order.shipping_address else {
        return Ok(LabelOutcome::Skipped("the order has no shipping address"));
    };
    let Some(carrier) = carrier else {
        return Err(LabelError::NoCarrier {
            order_id: order.id.clone(),
        });
    };
    let shipment = match store
        .get_shipment(&tenant, &order.id)
        .await
        .map_err(failed)?
    {
        Some(shipment) if shipment.has_label() => return Ok(LabelOutcome::AlreadyBought(shipment)),
        Some(shipment) => shipment,
        None => {
            let audit = AuditEntry::now(
                tenant.as_str(),
                actor,
                &disclosure_action(carrier.name()),
                "order",
                &order.id,
                &event.event_id,
            )
            .about_customer(&order.customer_id);
            let requested = Shipment::requested(
                tenant.as_str(),
                &order.id,
                &order.customer_id,
                carrier.name(),
                &event.event_id,
            );
            match store
                .begin_shipment(&tenant, requested, audit)
                .await
                .map_err(failed)?
            {
                ShipmentBegun::Existing(existing) if existing.has_label() => {
                    return Ok(LabelOutcome::AlreadyBought(existing))
                }
                begun => begun.shipment().clone(),
            }
        }
    };
    let mut to = ShipAddress::of(address);
    to.name = recipient_name(store, &tenant, &order.customer_id).await;
    let request = request_for(&order, to, settings);
    let carrier_failed = |source| LabelError::Carrier {
        order_id: order.id.clone(),
        source,
    };
    let (shipment, quoted, label) = created(store, carrier, &tenant, shipment, &request)
        .await
        .map_err(|error| match error {
            Step::Store(source) => failed(source),
            Step::Carrier(source) => carrier_failed(source),
        })?;
    let label = match label {
        Some(label) => label,
        None => buy(carrier, &quoted).await.map_err(carrier_failed)?,
    };
    let stored = store
        .save_shipment(&tenant, labelled(shipment, label))
        .await
        .map_err(failed)?;
    tracing::info!(order_id = %stored.order_id, event_id = %event.event_id, carrier = carrier.name(), "label bought for a shipped order");
    Ok(LabelOutcome::Bought(stored))
}

/// Why one step failed.
enum Step {
    Store(StoreError),
    Carrier(CarrierError),
}

/// The carrier's shipment of `shipment`: created now (its id stored at once), or read back
/// when it was created before (with its label, if one was bought).
async fn created(
    store: &dyn Store,
    carrier: &dyn Carrier,
    tenant: &TenantId,
    mut shipment: Shipment,
    request: &ShipmentRequest,
) -> Result<(Shipment, CarrierShipment, Option<Label>), Step> {
    if let Some(id) = &shipment.carrier_shipment_id {
        let (quoted, label) = carrier.read_shipment(id).await.map_err(Step::Carrier)?;
        return Ok((shipment, quoted, label));
    }
    let quoted = carrier
        .create_shipment(request)
        .await
        .map_err(Step::Carrier)?;
    let stored = store
        .claim_carrier_shipment(tenant, &shipment.order_id, &quoted.id)
        .await
        .map_err(Step::Store)?;
    if stored.carrier_shipment_id.as_deref() == Some(quoted.id.as_str()) {
        shipment.carrier_shipment_id = stored.carrier_shipment_id;
        return Ok((shipment, quoted, None));
    }
    // Another delivery created its carrier shipment first: buy that one (the carrier sells a
    // shipment once; ours stays unbought, which costs nothing).
    let winner = stored.carrier_shipment_id.clone().unwrap_or_default();
    let (quoted, label) = carrier
        .read_shipment(&winner)
        .await
        .map_err(Step::Carrier)?;
    Ok((stored, quoted, label))
}

/// Buys the cheapest rate; a shipment the carrier says has postage already is read back.
async fn buy(carrier: &dyn Carrier, quoted: &CarrierShipment) -> Result<Label, CarrierError> {
    let Some(rate) = quoted.cheapest() else {
        return Err(CarrierError::Unexpected {
            operation: "buy label",
            reason: format!("shipment {} has no rates", quoted.id),
        });
    };
    match carrier.buy_label(&quoted.id, &rate.id).await {
        Err(error) if error.is_already_bought() => {
            let (_, label) = carrier.read_shipment(&quoted.id).await?;
            label.ok_or(error)
        }
        other => other,
    }
}

fn labelled(mut shipment: Shipment, label: Label) -> Shipment {
    shipment.carrier_shipment_id = Some(label.shipment_id);
    shipment.tracking_number = Some(label.tracking_number);
    shipment.label_url = label.label_url;
    shipment.tracker_id = label.tracker_id;
    shipment.service = label.service;
    shipment.status = label.status;
    shipment.updated_at = crate::domain::now();
    shipment
}

/// The customer's name for the label (a carrier needs one); none when the profile is gone.
async fn recipient_name(store: &dyn Store, tenant: &TenantId, customer_id: &str) -> Option<String> {
    match store.get_customer(tenant, customer_id).await {
        Ok(customer) if customer.status == crate::domain::customer::CustomerStatus::Active => {
            Some(customer.name)
        }
        _ => None,
    }
}
