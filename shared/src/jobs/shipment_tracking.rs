//! `ShipmentTracking` (timer, `SHIPMENT_TRACKING_SCHEDULE`): polls the carrier's tracker of
//! every shipment that has one and is not in a final status (delivered, returned to sender,
//! cancelled, failed), across tenants in (tenant, order) order, and stores what changed. When
//! the carrier says delivered, the order moves from `shipped` to `delivered` through the order
//! store's status change (conditional on the order as read), so the `delivered` order event
//! goes out through the outbox and the customer is told as for any status change; then the
//! shipment is stored delivered (so a crash between the two is repaired by the next run, which
//! finds the order delivered and only stores the shipment).
//!
//! Checkpointed after every batch (the last shipment done), so a run out of time resumes there.
//! When the carrier cannot be reached the run stops (`outcome: partial`,
//! `findings.carrierUnavailable`) and the next one resumes. Counts per tenant: `updated`,
//! `unchanged`, `ordersDelivered`, `orderNotShipped`, `orderChangedConcurrently`,
//! `trackerRefused` (and `wouldUpdate` in a dry run).

use crate::domain::audit::AuditEntry;
use crate::domain::etag::ETag;
use crate::domain::order::{OrderStatus, StatusInput};
use crate::domain::shipment::{Shipment, TrackingStatus};
use crate::domain::tenant::TenantId;
use crate::shipping::{Carrier, Tracking};
use crate::store::jobs::Cursor;
use crate::store::{IfMatch, StoreError, TrackingCursor};

use super::run::Run;
use super::{JobError, StepEnd};

pub(crate) const KEEPS_CHECKPOINT: bool = false;
pub(crate) const STEPS: &[&str] = &["shipments"];

const ACTOR: &str = "system:ShipmentTracking";

pub async fn run(run: &mut Run<'_>) -> Result<StepEnd, JobError> {
    let Some(carrier) = run.context.carrier.clone() else {
        run.report.findings.insert(
            "carrier".to_owned(),
            serde_json::json!("not configured: nothing to track"),
        );
        return Ok(StepEnd::Done);
    };
    let Some(resume) = run.resume_cursor(STEPS[0], None) else {
        return Ok(StepEnd::Done);
    };
    let mut after = resume.map(|cursor| TrackingCursor {
        tenant_id: cursor.key,
        order_id: cursor.id,
    });
    run.progress_step(STEPS[0], None);
    loop {
        let batch = to_track(run, after.as_ref()).await?;
        if batch.is_empty() {
            return Ok(StepEnd::Done);
        }
        for shipment in batch {
            if run.out_of_time() {
                return Ok(StepEnd::OutOfTime);
            }
            if track(run, carrier.as_ref(), &shipment).await? == Tracked::CarrierDown {
                return Ok(StepEnd::OutOfTime);
            }
            after = Some(TrackingCursor {
                tenant_id: shipment.tenant_id.clone(),
                order_id: shipment.order_id.clone(),
            });
            run.advance(1);
        }
        if let Some(at) = &after {
            let mut checkpoint = run.checkpoint(STEPS[0], None);
            checkpoint.cursor = Some(Cursor::new(at.tenant_id.clone(), at.order_id.clone()));
            run.save(&checkpoint).await?;
        }
    }
}

pub(crate) async fn count_left(run: &mut Run<'_>) -> Result<(), JobError> {
    let left = to_track(run, None).await?.len();
    run.report.leave("shipmentsToTrack", left as u64);
    Ok(())
}

async fn to_track(
    run: &Run<'_>,
    after: Option<&TrackingCursor>,
) -> Result<Vec<Shipment>, JobError> {
    run.context
        .store
        .shipments_to_track(after, run.batch_size() as usize)
        .await
        .map_err(JobError::store("shipments to track"))
}

/// What tracking one shipment came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracked {
    Done,
    /// The carrier could not be reached: stop the run.
    CarrierDown,
}

async fn track(
    run: &mut Run<'_>,
    carrier: &dyn Carrier,
    shipment: &Shipment,
) -> Result<Tracked, JobError> {
    let (Ok(tenant), Some(tracker_id)) = (TenantId::new(&shipment.tenant_id), &shipment.tracker_id)
    else {
        return Ok(Tracked::Done);
    };
    let tracking = match carrier.tracker(tracker_id).await {
        Ok(tracking) => tracking,
        Err(error) if error.is_transient() => {
            tracing::warn!(order_id = %shipment.order_id, error = %error, "the carrier cannot be reached; tracking stops for this run");
            run.report.findings.insert(
                "carrierUnavailable".to_owned(),
                serde_json::json!(error.to_string()),
            );
            return Ok(Tracked::CarrierDown);
        }
        Err(error) => {
            tracing::warn!(order_id = %shipment.order_id, error = %error, "the carrier refused a tracker read");
            run.report.add(tenant.as_str(), "trackerRefused", 1);
            return Ok(Tracked::Done);
        }
    };
    if tracking.status == shipment.status {
        run.report.add(tenant.as_str(), "unchanged", 1);
        return Ok(Tracked::Done);
    }
    if run.dry_run {
        run.report.add(tenant.as_str(), "wouldUpdate", 1);
        return Ok(Tracked::Done);
    }
    if tracking.status == TrackingStatus::Delivered
        && !deliver_order(run, &tenant, shipment).await?
    {
        return Ok(Tracked::Done);
    }
    save(run, &tenant, shipment, &tracking).await?;
    Ok(Tracked::Done)
}

/// Moves the order to `delivered` when it is `shipped`; false when the shipment is to be left
/// as it is for the next run (the order changed meanwhile).
async fn deliver_order(
    run: &mut Run<'_>,
    tenant: &TenantId,
    shipment: &Shipment,
) -> Result<bool, JobError> {
    let store = run.context.store.clone();
    let order = match store.get_order(tenant, &shipment.order_id).await {
        Ok(order) => order,
        Err(StoreError::NotFound) => return Ok(true),
        Err(error) => return Err(JobError::store("read order")(error)),
    };
    match order.status {
        OrderStatus::Shipped => {}
        OrderStatus::Delivered => return Ok(true),
        other => {
            tracing::warn!(order_id = %order.id, status = other.as_str(), "the carrier delivered a parcel of an order that is not shipped; the order is left as it is");
            run.report.add(tenant.as_str(), "orderNotShipped", 1);
            return Ok(true);
        }
    }
    let change = StatusInput {
        status: OrderStatus::Delivered,
        reason: Some(format!("delivered, as {} reported", shipment.carrier)),
    };
    let audit = AuditEntry::now(
        tenant.as_str(),
        ACTOR,
        "order.status.delivered",
        "order",
        &order.id,
        shipment.tracker_id.as_deref().unwrap_or_default(),
    )
    .about_customer(&order.customer_id);
    let if_match = IfMatch::OneOf(vec![ETag::new(order.etag.clone())]);
    match store
        .change_order_status(tenant, &order.id, change, ACTOR, if_match, audit)
        .await
    {
        Ok(_) => {
            run.report.add(tenant.as_str(), "ordersDelivered", 1);
            tracing::info!(order_id = %order.id, "order delivered, as the carrier reported");
            Ok(true)
        }
        Err(StoreError::PreconditionFailed { .. } | StoreError::Rejected(_)) => {
            run.report
                .add(tenant.as_str(), "orderChangedConcurrently", 1);
            Ok(false)
        }
        Err(error) => Err(JobError::store("deliver order")(error)),
    }
}

async fn save(
    run: &mut Run<'_>,
    tenant: &TenantId,
    shipment: &Shipment,
    tracking: &Tracking,
) -> Result<(), JobError> {
    let mut updated = shipment.clone();
    updated.status = tracking.status;
    updated.updated_at = crate::domain::now();
    if tracking.status == TrackingStatus::Delivered {
        updated.delivered_at = Some(tracking.delivered_at());
    }
    run.context
        .store
        .save_shipment(tenant, updated)
        .await
        .map_err(JobError::store("save shipment"))?;
    run.report.add(tenant.as_str(), "updated", 1);
    Ok(())
}
