//! SQLite adapter of [`DispatchStore`]: one event, handled once, in one transaction
//! (the processed-event marker in `processed_events`, the notifications, their audit entries,
//! the outbound messages' outbox records).

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::customers::load_customer;
use super::notifications::insert_notification;
use super::outbox::{customer_scope, insert_outbox};
use super::support::{insert_audit, now, to_json, ts};
use super::Db;
use crate::domain::customer::{Customer, CustomerStatus};
use crate::domain::messages::CustomerEvent;
use crate::domain::tenant::TenantId;
use crate::store::{DispatchOutcome, DispatchStore, FanoutPlan, SkipReason, StoreResult};

/// Whether `consumer` processed the event before.
fn processed_before(
    conn: &Connection,
    tenant: &str,
    consumer: &str,
    event_id: &str,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM processed_events WHERE tenant_id = ?1 AND consumer = ?2 AND event_id = ?3")?
        .query_row(params![tenant, consumer, event_id], |_| Ok(()))
        .optional()?
        .is_some())
}

fn mark_processed(
    conn: &Connection,
    tenant: &str,
    consumer: &str,
    event_id: &str,
    customer_id: Option<&str>,
    outcome: &str,
    outputs: &[&str],
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
    event: &CustomerEvent,
) -> rusqlite::Result<Result<Customer, SkipReason>> {
    let Some(customer) = load_customer(conn, tenant, event.customer_id()).optional()? else {
        return Ok(Err(SkipReason::CustomerMissing));
    };
    if customer.status != CustomerStatus::Active {
        return Ok(Err(SkipReason::CustomerErased));
    }
    let owner: Option<String> = conn
        .prepare_cached("SELECT customer_id FROM orders WHERE tenant_id = ?1 AND id = ?2")?
        .query_row(params![tenant, event.order_id()], |row| row.get(0))
        .optional()?;
    if owner.as_deref() != Some(event.customer_id()) {
        return Ok(Err(SkipReason::OrderMissing));
    }
    Ok(Ok(customer))
}

fn dispatch_in(
    tx: &Transaction<'_>,
    outbox_ttl: chrono::Duration,
    tenant: &str,
    consumer: &str,
    event: &CustomerEvent,
    plan: FanoutPlan,
) -> rusqlite::Result<DispatchOutcome> {
    if processed_before(tx, tenant, consumer, event.event_id())? {
        return Ok(DispatchOutcome::Duplicate);
    }
    let customer = match event_customer(tx, tenant, event)? {
        Ok(customer) => customer,
        Err(reason) => {
            mark_processed(
                tx,
                tenant,
                consumer,
                event.event_id(),
                None,
                reason.as_str(),
                &[],
            )?;
            return Ok(DispatchOutcome::Skipped(reason));
        }
    };
    let preferences = super::preferences::effective_preferences(tx, tenant, &customer.id)?;
    let fanout = plan(&customer, &preferences, event);
    for notification in &fanout.notifications {
        insert_notification(tx, tenant, notification)?;
    }
    for entry in &fanout.audit {
        insert_audit(tx, entry)?;
    }
    let scope = customer_scope(&customer.id);
    for message in &fanout.outbound {
        insert_outbox(tx, outbox_ttl, tenant, &scope, message)?;
    }
    let message_ids: Vec<&str> = fanout
        .outbound
        .iter()
        .map(|message| message.message_id.as_str())
        .collect();
    mark_processed(
        tx,
        tenant,
        consumer,
        event.event_id(),
        Some(&customer.id),
        "dispatched",
        &message_ids,
    )?;
    Ok(DispatchOutcome::Dispatched {
        notifications: fanout.notifications.len(),
        outbound: fanout.outbound.len(),
    })
}

#[async_trait::async_trait]
impl DispatchStore for Db {
    async fn dispatch_event(
        &self,
        tenant: &TenantId,
        consumer: &str,
        event: &CustomerEvent,
        plan: FanoutPlan,
    ) -> StoreResult<DispatchOutcome> {
        let (tenant, consumer, event) = (
            tenant.as_str().to_owned(),
            consumer.to_owned(),
            event.clone(),
        );
        let outbox_ttl = self.outbox_ttl();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let outcome = dispatch_in(&tx, outbox_ttl, &tenant, &consumer, &event, plan)?;
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }
}
