//! SQLite adapter of [`DispatchStore`]: one order event, handled once, in one transaction
//! (the processed-event marker in `processed_events`, the notifications, their audit entries).

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::Value;

use super::customers::load_customer;
use super::notifications::insert_notification;
use super::support::{insert_audit, now, to_json, ts};
use super::Db;
use crate::domain::customer::{Customer, CustomerStatus};
use crate::domain::messages::OrderEvent;
use crate::domain::tenant::TenantId;
use crate::store::{DispatchOutcome, DispatchStore, FanoutPlan, SkipReason, StoreResult};

/// The outbound messages stored for an event processed before, if it was.
fn processed_outputs(
    conn: &Connection,
    tenant: &str,
    consumer: &str,
    event_id: &str,
) -> rusqlite::Result<Option<Vec<Value>>> {
    let outputs: Option<String> = conn
        .prepare_cached("SELECT outputs FROM processed_events WHERE tenant_id = ?1 AND consumer = ?2 AND event_id = ?3")?
        .query_row(params![tenant, consumer, event_id], |row| row.get(0))
        .optional()?;
    Ok(outputs.map(|text| serde_json::from_str(&text).unwrap_or_default()))
}

fn mark_processed(
    conn: &Connection,
    tenant: &str,
    consumer: &str,
    event_id: &str,
    customer_id: Option<&str>,
    outcome: &str,
    outputs: &[Value],
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO processed_events (tenant_id, consumer, event_id, customer_id, outcome, outputs, processed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![tenant, consumer, event_id, customer_id, outcome, to_json(&outputs), ts(now())])?;
    Ok(())
}

/// The active customer whose order the event is about, or why the event changes nothing.
fn event_customer(
    conn: &Connection,
    tenant: &str,
    event: &OrderEvent,
) -> rusqlite::Result<Result<Customer, SkipReason>> {
    let Some(customer) = load_customer(conn, tenant, &event.customer_id).optional()? else {
        return Ok(Err(SkipReason::CustomerMissing));
    };
    if customer.status != CustomerStatus::Active {
        return Ok(Err(SkipReason::CustomerErased));
    }
    let owner: Option<String> = conn
        .prepare_cached("SELECT customer_id FROM orders WHERE tenant_id = ?1 AND id = ?2")?
        .query_row(params![tenant, event.order_id], |row| row.get(0))
        .optional()?;
    if owner.as_deref() != Some(event.customer_id.as_str()) {
        return Ok(Err(SkipReason::OrderMissing));
    }
    Ok(Ok(customer))
}

fn dispatch_in(
    tx: &Transaction<'_>,
    tenant: &str,
    consumer: &str,
    event: &OrderEvent,
    plan: FanoutPlan,
) -> rusqlite::Result<DispatchOutcome> {
    if let Some(outbound) = processed_outputs(tx, tenant, consumer, &event.event_id)? {
        return Ok(DispatchOutcome::Duplicate { outbound });
    }
    let customer = match event_customer(tx, tenant, event)? {
        Ok(customer) => customer,
        Err(reason) => {
            mark_processed(
                tx,
                tenant,
                consumer,
                &event.event_id,
                None,
                reason.as_str(),
                &[],
            )?;
            return Ok(DispatchOutcome::Skipped(reason));
        }
    };
    let fanout = plan(&customer, event);
    for notification in &fanout.notifications {
        insert_notification(tx, tenant, notification)?;
    }
    for entry in &fanout.audit {
        insert_audit(tx, entry)?;
    }
    mark_processed(
        tx,
        tenant,
        consumer,
        &event.event_id,
        Some(&customer.id),
        "dispatched",
        &fanout.outbound,
    )?;
    Ok(DispatchOutcome::Dispatched {
        notifications: fanout.notifications.len(),
        outbound: fanout.outbound,
    })
}

#[async_trait::async_trait]
impl DispatchStore for Db {
    async fn dispatch_event(
        &self,
        tenant: &TenantId,
        consumer: &str,
        event: &OrderEvent,
        plan: FanoutPlan,
    ) -> StoreResult<DispatchOutcome> {
        let (tenant, consumer, event) = (
            tenant.as_str().to_owned(),
            consumer.to_owned(),
            event.clone(),
        );
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let outcome = dispatch_in(&tx, &tenant, &consumer, &event, plan)?;
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }
}
