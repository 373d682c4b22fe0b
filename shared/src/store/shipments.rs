//! The shipments' storage port: one shipment per order, recorded before the carrier is asked
//! for a label (with the audit entry of the address disclosed to the carrier, in the same
//! transaction), then updated as the label is bought and the tracker moves; and the
//! cross-tenant scan `ShipmentTracking` polls.

use super::StoreResult;
use crate::domain::audit::AuditEntry;
use crate::domain::shipment::Shipment;
use crate::domain::tenant::TenantId;

/// What recording a shipment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipmentBegun {
    /// Recorded now (with its audit entry).
    New(Shipment),
    /// The order has a shipment already (a redelivered event): that one, nothing written.
    Existing(Shipment),
}

impl ShipmentBegun {
    pub fn shipment(&self) -> &Shipment {
        match self {
            Self::New(shipment) | Self::Existing(shipment) => shipment,
        }
    }
}

/// Where a tracking scan continues: after this tenant and order.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrackingCursor {
    pub tenant_id: String,
    pub order_id: String,
}

#[async_trait::async_trait]
pub trait ShipmentStore: Send + Sync {
    /// Records `shipment` (and `audit`) unless its order has one; see [`ShipmentBegun`].
    async fn begin_shipment(
        &self,
        tenant: &TenantId,
        shipment: Shipment,
        audit: AuditEntry,
    ) -> StoreResult<ShipmentBegun>;

    /// Replaces the stored shipment of `shipment.order_id` (NotFound when there is none).
    async fn save_shipment(&self, tenant: &TenantId, shipment: Shipment) -> StoreResult<Shipment>;

    /// Records the carrier's shipment id on the order's shipment unless one is recorded
    /// already (first writer wins); the shipment as stored after, whoever won. Two deliveries
    /// racing each create a carrier shipment, and both then buy the winner's: the carrier sells
    /// it once.
    async fn claim_carrier_shipment(
        &self,
        tenant: &TenantId,
        order_id: &str,
        carrier_shipment_id: &str,
    ) -> StoreResult<Shipment>;

    /// The order's shipment, if it has one.
    async fn get_shipment(
        &self,
        tenant: &TenantId,
        order_id: &str,
    ) -> StoreResult<Option<Shipment>>;

    /// A customer's shipments, oldest first (the GDPR export).
    async fn customer_shipments(
        &self,
        tenant: &TenantId,
        customer_id: &str,
    ) -> StoreResult<Vec<Shipment>>;

    /// Up to `limit` shipments of every tenant with a tracker and a status that is not final,
    /// in (tenant, order) order after `after`.
    async fn shipments_to_track(
        &self,
        after: Option<&TrackingCursor>,
        limit: usize,
    ) -> StoreResult<Vec<Shipment>>;
}
