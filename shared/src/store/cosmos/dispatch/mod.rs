//! Cosmos DB adapter of [`DispatchStore`]: one event, handled once.
//!
//! The processed-event marker ([`ProcessedEvent`], `processedEvent:{consumer}:{eventId}` in the
//! customer's partition, 14 days to live: [`PROCESSED_EVENT_TTL_SECONDS`]) is created in one
//! transactional batch with the notifications to the customer, the plan's audit entries and
//! the outbox records of its outbound messages, so a redelivered event has no second effect
//! and its messages are written exactly when it was handled. The batch also rewrites the
//! customer's document unchanged, if-match on the `_etag` read when the customer was checked:
//! an erasure started meanwhile (it marks the customer) refuses the batch, and the retry finds
//! the customer no longer active, so no notification is left behind. A marker create refused
//! with 409 is a concurrent delivery of the same event: the retry reads its marker and answers
//! `Duplicate` (the other delivery wrote the outbox records), as SQLite does after serialising
//! the two.
//!
//! Notifications to staff roles live in the tenant scope, outside the customer's partition, so
//! they cannot join the batch: they are written right after it, idempotently (create, 409 =
//! written already, which never resets a read mark the way an upsert would), and kept in the
//! marker, so a redelivery after a crash between the two writes finishes them.

use azure_data_cosmos::TransactionalBatch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::doc::{customer_scope, doc_id, kind, Doc};
use super::notifications::recipient_scope;
use super::orders::CosmosOrder;
use super::support::{
    attempt_of, audit_doc, batch_create, batch_replace, busy, pk, Attempt, CONCURRENCY_ATTEMPTS,
    MAX_BATCH_OPERATIONS,
};
use super::{CosmosStore, BACKEND};
use crate::domain::customer::{Customer, CustomerStatus};
use crate::domain::messages::CustomerEvent;
use crate::domain::notification::Notification;
use crate::domain::now;
use crate::domain::tenant::TenantId;
use crate::store::{
    ts, DispatchOutcome, DispatchStore, FanoutPlan, SkipReason, StoreError, StoreResult,
};

/// How long a processed-event marker lives (the window in which a redelivery is recognised):
/// 14 days, as long as Service Bus keeps a message (`defaultMessageTimeToLive` `P14D`), so an
/// event redelivered at any time in its life is still recognised.
pub(super) const PROCESSED_EVENT_TTL_SECONDS: i64 = 14 * 24 * 3600;

/// The stored body of a processed-event marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProcessedEvent {
    pub consumer: String,
    pub event_id: String,
    /// The customer whose records the event changed; `None` when it changed nothing (so an
    /// erasure deletes only the markers naming the customer, as in SQLite).
    #[serde(default)]
    pub customer_id: Option<String>,
    /// `dispatched`, or why the event was skipped.
    pub outcome: String,
    /// The `MessageId`s of the outbound messages the delivery produced (their outbox records
    /// were written in the marker's batch).
    #[serde(default)]
    pub outputs: Vec<Value>,
    /// Notifications outside the customer's partition (to staff roles), written after the
    /// marker; a redelivery writes any that are missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<Notification>,
    pub processed_at: DateTime<Utc>,
}

/// The record id of a marker (`{consumer}:{eventId}`; the document id adds the type).
fn marker_id(consumer: &str, event_id: &str) -> String {
    format!("{consumer}:{event_id}")
}

/// A marker for `event`, in the partition of the customer the event names.
fn marker_doc(
    tenant: &str,
    consumer: &str,
    event: &CustomerEvent,
    body: MarkerBody,
) -> Doc<ProcessedEvent> {
    let processed_at = now();
    let marker = ProcessedEvent {
        consumer: consumer.to_owned(),
        event_id: event.event_id().to_owned(),
        customer_id: body.customer_id,
        outcome: body.outcome,
        outputs: body.outputs,
        elsewhere: body.elsewhere,
        processed_at,
    };
    Doc::new(
        kind::PROCESSED_EVENT,
        &marker_id(consumer, event.event_id()),
        tenant,
        customer_scope(event.customer_id()),
        ts(processed_at),
        marker,
    )
    .with_at(processed_at)
    .with_ttl(Some(PROCESSED_EVENT_TTL_SECONDS))
}

/// What a marker records.
struct MarkerBody {
    customer_id: Option<String>,
    outcome: String,
    outputs: Vec<Value>,
    elsewhere: Vec<Notification>,
}

impl MarkerBody {
    fn skipped(reason: SkipReason) -> Self {
        Self {
            customer_id: None,
            outcome: reason.as_str().to_owned(),
            outputs: Vec::new(),
            elsewhere: Vec::new(),
        }
    }
}

impl CosmosStore {
    /// The marker of `event` for `consumer`, if it was processed.
    async fn dispatch_marker(
        &self,
        tenant: &str,
        consumer: &str,
        event: &CustomerEvent,
    ) -> StoreResult<Option<Doc<ProcessedEvent>>> {
        let id = doc_id(
            kind::PROCESSED_EVENT,
            &marker_id(consumer, event.event_id()),
        );
        self.read_doc(
            self.data(),
            pk(tenant, &customer_scope(event.customer_id())),
            &id,
        )
        .await
    }

    /// Why the event changes nothing for an existing customer, if it does not: the customer is
    /// not active, or the order is missing or another customer's (it would be in another
    /// partition).
    async fn dispatch_skip_reason(
        &self,
        tenant: &str,
        event: &CustomerEvent,
        customer: &Doc<Customer>,
    ) -> StoreResult<Option<SkipReason>> {
        if customer.body.status != CustomerStatus::Active {
            return Ok(Some(SkipReason::CustomerErased));
        }
        let order: Option<Doc<CosmosOrder>> = self
            .read_doc(
                self.data(),
                pk(tenant, &customer_scope(event.customer_id())),
                &doc_id(kind::ORDER, event.order_id()),
            )
            .await?;
        let owned = order.is_some_and(|doc| doc.body.order.customer_id == event.customer_id());
        Ok((!owned).then_some(SkipReason::OrderMissing))
    }

    /// Writes notifications outside the customer's partition; one that exists already (an
    /// earlier delivery wrote it) is left as it is.
    async fn dispatch_elsewhere(
        &self,
        tenant: &str,
        notifications: &[Notification],
    ) -> StoreResult<()> {
        for notification in notifications {
            let doc = self.notification_doc(notification);
            match self
                .create_doc(self.data(), pk(tenant, &doc.scope), &doc.id, &doc)
                .await
            {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Records a skipped event; a concurrent delivery that recorded it first makes this try
    /// start again (and find its marker).
    async fn dispatch_skip(
        &self,
        tenant: &str,
        consumer: &str,
        event: &CustomerEvent,
        reason: SkipReason,
    ) -> StoreResult<Attempt<DispatchOutcome>> {
        let marker = marker_doc(tenant, consumer, event, MarkerBody::skipped(reason));
        match self
            .create_doc(self.data(), pk(tenant, &marker.scope), &marker.id, &marker)
            .await
        {
            Ok(_) => Ok(Attempt::Done(DispatchOutcome::Skipped(reason))),
            Err(StoreError::Conflict(_)) => Ok(Attempt::Again),
            Err(error) => Err(error),
        }
    }

    async fn dispatch_once(
        &self,
        tenant: &TenantId,
        consumer: &str,
        event: &CustomerEvent,
        plan: FanoutPlan,
    ) -> StoreResult<Attempt<DispatchOutcome>> {
        let tenant = tenant.as_str();
        if let Some(marker) = self.dispatch_marker(tenant, consumer, event).await? {
            self.dispatch_elsewhere(tenant, &marker.body.elsewhere)
                .await?;
            return Ok(Attempt::Done(DispatchOutcome::Duplicate));
        }
        let Some(customer) = self.customer_doc(tenant, event.customer_id()).await? else {
            return self
                .dispatch_skip(tenant, consumer, event, SkipReason::CustomerMissing)
                .await;
        };
        if let Some(reason) = self.dispatch_skip_reason(tenant, event, &customer).await? {
            return self.dispatch_skip(tenant, consumer, event, reason).await;
        }
        let preferences = self
            .preferences_or_defaults(tenant, &customer.body.id)
            .await?;
        let fanout = plan(&customer.body, &preferences, event);
        let (here, elsewhere): (Vec<Notification>, Vec<Notification>) = fanout
            .notifications
            .iter()
            .cloned()
            .partition(|notification| recipient_scope(&notification.recipient) == customer.scope);
        let operations = 2 + here.len() + fanout.audit.len() + fanout.outbound.len();
        if operations > MAX_BATCH_OPERATIONS {
            return Err(StoreError::Unavailable { backend: BACKEND, reason: format!("event {} produces {operations} writes; one transactional batch holds {MAX_BATCH_OPERATIONS}", event.event_id()) });
        }
        let body = MarkerBody {
            customer_id: Some(customer.body.id.clone()),
            outcome: "dispatched".into(),
            outputs: fanout
                .outbound
                .iter()
                .map(|message| serde_json::Value::String(message.message_id.clone()))
                .collect(),
            elsewhere: elsewhere.clone(),
        };
        let marker = marker_doc(tenant, consumer, event, body);
        // The customer unchanged, if still as checked: the guard against a concurrent erasure.
        let mut batch = batch_replace(
            self,
            TransactionalBatch::new(pk(tenant, &customer.scope)),
            &customer,
        )?;
        for notification in &here {
            batch = batch_create(self, batch, &self.notification_doc(notification))?;
        }
        for entry in &fanout.audit {
            batch = batch_create(self, batch, &audit_doc(entry, &customer.scope))?;
        }
        for message in &fanout.outbound {
            batch = self.batch_outbox(batch, tenant, &customer.scope, message)?;
        }
        batch = batch_create(self, batch, &marker)?;
        if let Attempt::Again = attempt_of(self.run_batch(self.data(), batch).await?, ())? {
            return Ok(Attempt::Again);
        }
        // Role notifications: after the marker (see the module doc), idempotently.
        self.dispatch_elsewhere(tenant, &elsewhere).await?;
        Ok(Attempt::Done(DispatchOutcome::Dispatched {
            notifications: fanout.notifications.len(),
            outbound: fanout.outbound.len(),
        }))
    }
}

#[async_trait::async_trait]
impl DispatchStore for CosmosStore {
    async fn dispatch_event(
        &self,
        tenant: &TenantId,
        consumer: &str,
        event: &CustomerEvent,
        plan: FanoutPlan,
    ) -> StoreResult<DispatchOutcome> {
        for _ in 0..CONCURRENCY_ATTEMPTS {
            if let Attempt::Done(outcome) =
                self.dispatch_once(tenant, consumer, event, plan).await?
            {
                return Ok(outcome);
            }
            tracing::debug!(event_id = %event.event_id(), "dispatch refused by a concurrent change; checking again");
        }
        Err(busy("customer"))
    }
}

#[cfg(all(test, feature = "cosmos-emulator"))]
mod tests;
