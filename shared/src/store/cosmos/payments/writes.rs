//! One attempt of each payment write (see the [module doc](super)): read, decide with the rules
//! both adapters share, and write in one batch of the customer's partition; a batch refused
//! because a document changed or appeared meanwhile is [`Attempt::Again`].

use azure_data_cosmos::TransactionalBatch;
use chrono::{DateTime, Utc};

use super::{
    payment_doc, payment_of, rewritten, PaymentLock, PaymentMarker, KEY_TTL_SECONDS,
    WEBHOOK_TTL_SECONDS,
};
use crate::domain::audit::AuditEntry;
use crate::domain::etag::new_etag;
use crate::domain::now;
use crate::domain::payment::{Applied, Payment, PaymentUpdate, Refund};
use crate::domain::rejection::Rejection;
use crate::outbox::OutboxMessage;
use crate::store::cosmos::doc::{customer_scope, doc_id, kind, Doc, MAX_DOC_ID_LEN};
use crate::store::cosmos::support::{
    attempt_of, audit_doc, batch_create, batch_delete, batch_replace, pk,
};
use crate::store::cosmos::CosmosStore;
use crate::store::payment_record::{
    admit_refund, payment_key_seen, push_refund, refund_key_seen, KeySeen, StoredPayment,
};
use crate::store::{ts, Started, StoreResult};

use crate::store::cosmos::support::Attempt;

/// What an update writes besides the payment.
pub(super) struct UpdateWrite<'a> {
    pub update: &'a PaymentUpdate,
    pub correlation_id: Option<&'a str>,
    pub audit: &'a AuditEntry,
}

/// Refuses an idempotency key too long for a document id.
pub(super) fn check_key(key: &str) -> StoreResult<()> {
    let id = doc_id(kind::PAYMENT_KEY, key);
    if id.len() > MAX_DOC_ID_LEN {
        return Err(Rejection::IdempotencyKeyUnusable(format!(
            "{} bytes once '/', '\\', '?', '#' and '%' are escaped; at most {MAX_DOC_ID_LEN}",
            id.len()
        ))
        .into());
    }
    Ok(())
}

fn marker(
    kind: &str,
    name: &str,
    payment: &Payment,
    ttl: i64,
    at: DateTime<Utc>,
) -> Doc<PaymentMarker> {
    let body = PaymentMarker {
        name: name.to_owned(),
        payment_id: payment.id.clone(),
    };
    Doc::new(
        kind,
        name,
        &payment.tenant_id,
        customer_scope(&payment.customer_id),
        ts(at),
        body,
    )
    .with_at(at)
    .with_ttl(Some(ttl))
}

impl CosmosStore {
    /// Writes `payment` over `read` (if unchanged) alone: `Again` when it changed.
    async fn replace_payment(
        &self,
        read: &Doc<StoredPayment>,
        payment: &Payment,
    ) -> StoreResult<Attempt<()>> {
        let batch = TransactionalBatch::new(pk(&read.tenant_id, &read.scope));
        let batch = batch_replace(self, batch, &rewritten(read, payment))?;
        let outcome = self.run_batch(self.data(), batch).await?;
        attempt_of(outcome, ())
    }

    /// Answers a seen key, holding the payment again (until `until`) when resuming.
    async fn answer_seen(
        &self,
        read: &Doc<StoredPayment>,
        seen: KeySeen,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<Attempt<Started>> {
        let mut payment = payment_of(read);
        if seen == KeySeen::Resume {
            payment.in_flight_until = until;
            payment.etag = new_etag();
            if let Attempt::Again = self.replace_payment(read, &payment).await? {
                return Ok(Attempt::Again);
            }
        }
        Ok(Attempt::Done(seen.started(payment)))
    }

    /// Adds taking the order's lock for `payment` to `batch`; refuses when another payment
    /// that holds the order has it.
    async fn take_order_lock(
        &self,
        batch: TransactionalBatch,
        payment: &Payment,
    ) -> StoreResult<TransactionalBatch> {
        let partition = pk(&payment.tenant_id, &customer_scope(&payment.customer_id));
        let lock_id = doc_id(kind::PAYMENT_LOCK, &payment.order_id);
        let lock: Option<Doc<PaymentLock>> = self
            .read_doc(self.data(), partition.clone(), &lock_id)
            .await?;
        let Some(mut lock) = lock else {
            let body = PaymentLock {
                order_id: payment.order_id.clone(),
                payment_id: payment.id.clone(),
            };
            let scope = customer_scope(&payment.customer_id);
            let lock = Doc::new(
                kind::PAYMENT_LOCK,
                &payment.order_id,
                &payment.tenant_id,
                scope,
                ts(payment.created_at),
                body,
            );
            return batch_create(self, batch, &lock);
        };
        let holder: Option<Doc<StoredPayment>> = self
            .read_doc(
                self.data(),
                partition,
                &doc_id(kind::PAYMENT, &lock.body.payment_id),
            )
            .await?;
        if holder.is_some_and(|doc| doc.body.payment.status.holds_order()) {
            return Err(Rejection::OrderAlreadyPaid(lock.body.payment_id).into());
        }
        lock.body.payment_id.clone_from(&payment.id);
        batch_replace(self, batch, &lock)
    }

    pub(super) async fn try_begin_payment(
        &self,
        payment: &Payment,
        audit: &AuditEntry,
    ) -> StoreResult<Attempt<Started>> {
        let tenant = payment.tenant_id.as_str();
        if let Some(read) = self
            .payment_by_key(tenant, &payment.idempotency_key)
            .await?
        {
            let seen = payment_key_seen(&payment_of(&read), &payment.request_hash, now())?;
            return self.answer_seen(&read, seen, payment.in_flight_until).await;
        }
        let scope = customer_scope(&payment.customer_id);
        let mut created = payment.clone();
        created.etag = new_etag();
        let batch = TransactionalBatch::new(pk(tenant, &scope));
        let batch = self.take_order_lock(batch, &created).await?;
        let batch = batch_create(self, batch, &payment_doc(&created))?;
        let key = marker(
            kind::PAYMENT_KEY,
            &created.idempotency_key,
            &created,
            KEY_TTL_SECONDS,
            created.created_at,
        );
        let batch = batch_create(self, batch, &key)?;
        let batch = batch_create(self, batch, &audit_doc(audit, &scope))?;
        let outcome = self.run_batch(self.data(), batch).await?;
        attempt_of(outcome, Started::New(created))
    }

    pub(super) async fn try_hold_payment(
        &self,
        tenant: &str,
        id: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<Attempt<Option<Payment>>> {
        let read = self.find_payment(tenant, id).await?;
        let mut payment = payment_of(&read);
        if payment.in_flight(now()) {
            return Ok(Attempt::Done(None));
        }
        payment.in_flight_until = Some(until);
        payment.etag = new_etag();
        Ok(match self.replace_payment(&read, &payment).await? {
            Attempt::Done(()) => Attempt::Done(Some(payment)),
            Attempt::Again => Attempt::Again,
        })
    }

    /// Adds deleting the order's lock to `batch` when it names `payment`.
    async fn release_order_lock(
        &self,
        batch: TransactionalBatch,
        payment: &Payment,
    ) -> StoreResult<TransactionalBatch> {
        let partition = pk(&payment.tenant_id, &customer_scope(&payment.customer_id));
        let lock_id = doc_id(kind::PAYMENT_LOCK, &payment.order_id);
        let lock: Option<Doc<PaymentLock>> =
            self.read_doc(self.data(), partition, &lock_id).await?;
        Ok(match lock {
            Some(lock) if lock.body.payment_id == payment.id => {
                batch_delete(batch, &lock.id, lock.cosmos_etag.as_deref())
            }
            _ => batch,
        })
    }

    pub(super) async fn try_update_payment(
        &self,
        tenant: &str,
        id: &str,
        write: &UpdateWrite<'_>,
    ) -> StoreResult<Attempt<(Payment, Applied)>> {
        let read = self.find_payment(tenant, id).await?;
        let mut payment = payment_of(&read);
        let event_id = write.update.source.webhook_event_id();
        if let Some(event_id) = event_id {
            let seen: Option<Doc<PaymentMarker>> = self
                .read_doc(
                    self.data(),
                    pk(tenant, &read.scope),
                    &doc_id(kind::PAYMENT_WEBHOOK, event_id),
                )
                .await?;
            if seen.is_some() {
                return Ok(Attempt::Done((payment, Applied::default())));
            }
        }
        let at = now();
        let applied = payment.apply(write.update, at);
        if !applied.changed {
            return Ok(Attempt::Done((payment, applied)));
        }
        payment.etag = new_etag();
        let mut batch = TransactionalBatch::new(pk(tenant, &read.scope));
        batch = batch_replace(self, batch, &rewritten(&read, &payment))?;
        for (event_type, amount) in &applied.events {
            let message =
                OutboxMessage::payment_event(&payment, *event_type, *amount, write.correlation_id);
            batch = self.batch_outbox(batch, tenant, &read.scope, &message)?;
        }
        batch = batch_create(self, batch, &audit_doc(write.audit, &read.scope))?;
        if let Some(event_id) = event_id {
            let seen = marker(
                kind::PAYMENT_WEBHOOK,
                event_id,
                &payment,
                WEBHOOK_TTL_SECONDS,
                at,
            );
            batch = batch_create(self, batch, &seen)?;
        }
        if read.body.payment.status.holds_order() && !payment.status.holds_order() {
            batch = self.release_order_lock(batch, &payment).await?;
        }
        let outcome = self.run_batch(self.data(), batch).await?;
        attempt_of(outcome, (payment, applied))
    }

    pub(super) async fn try_begin_refund(
        &self,
        tenant: &str,
        payment_id: &str,
        refund: &Refund,
        until: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> StoreResult<Attempt<Started>> {
        let read = self.find_payment(tenant, payment_id).await?;
        let mut payment = payment_of(&read);
        if let Some(seen) = payment.refund_by_key(&refund.idempotency_key) {
            let seen = refund_key_seen(&payment, seen, &refund.request_hash, now())?;
            return self.answer_seen(&read, seen, Some(until)).await;
        }
        admit_refund(&payment, refund)?;
        payment.updated_at = now();
        push_refund(&mut payment, refund.clone(), until);
        payment.etag = new_etag();
        let batch = TransactionalBatch::new(pk(tenant, &read.scope));
        let batch = batch_replace(self, batch, &rewritten(&read, &payment))?;
        let batch = batch_create(self, batch, &audit_doc(audit, &read.scope))?;
        let outcome = self.run_batch(self.data(), batch).await?;
        attempt_of(outcome, Started::New(payment))
    }
}
