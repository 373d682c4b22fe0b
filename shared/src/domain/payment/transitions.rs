//! How what the gateway says changes a payment ([`Payment::apply`]): the one rule both storage
//! adapters call, so a late or repeated webhook, a reconciliation and the API's own call all
//! move a payment the same way, never backwards.

use chrono::{DateTime, Utc};

use super::{GatewayRefs, Payer, Payment, PaymentStatus, Refund, RefundStatus};
use crate::domain::messages::PaymentEventType;

/// Who learnt what an update says (kept in the audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateSource {
    /// The API's own call to the gateway.
    Api,
    /// A verified webhook; the provider's event id deduplicates it.
    Webhook { event_id: String },
    /// The reconciliation job asked the gateway.
    Reconciliation,
}

impl UpdateSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Webhook { .. } => "webhook",
            Self::Reconciliation => "reconciliation",
        }
    }

    /// The provider's event id of a webhook.
    pub fn webhook_event_id(&self) -> Option<&str> {
        match self {
            Self::Webhook { event_id } => Some(event_id),
            _ => None,
        }
    }
}

/// What the gateway said about one refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundUpdate {
    /// Our refund id, when the update answers our own call.
    pub refund_id: Option<String>,
    pub gateway_refund_id: Option<String>,
    pub status: RefundStatus,
    /// The refunded amount, needed for a refund the app did not start (made on the gateway's
    /// dashboard): it is added to the payment.
    pub amount_cents: Option<i64>,
}

/// What the gateway said about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentUpdate {
    /// The status the gateway reports; ignored when it would move the payment backwards.
    pub status: Option<PaymentStatus>,
    pub gateway: GatewayRefs,
    /// The captured amount (defaults to the payment's amount on a capture).
    pub captured_cents: Option<i64>,
    pub failure_code: Option<String>,
    pub payer: Option<Payer>,
    pub refund: Option<RefundUpdate>,
    /// The request that held the payment is done with it.
    pub release_in_flight: bool,
    pub source: UpdateSource,
}

impl PaymentUpdate {
    /// An update that only says where the payment now is.
    pub fn status(status: PaymentStatus, source: UpdateSource) -> Self {
        Self {
            status: Some(status),
            gateway: GatewayRefs::default(),
            captured_cents: None,
            failure_code: None,
            payer: None,
            refund: None,
            release_in_flight: false,
            source,
        }
    }

    /// An update that only lets go of the payment (the request or run holding it is done).
    pub fn release(source: UpdateSource) -> Self {
        Self {
            status: None,
            release_in_flight: true,
            ..Self::status(PaymentStatus::Pending, source)
        }
    }
}

/// What applying an update did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Whether anything of the payment changed (else nothing is written).
    pub changed: bool,
    /// The events to announce, in order: (type, amount in minor units).
    pub events: Vec<(PaymentEventType, i64)>,
}

impl Payment {
    /// Applies what the gateway said, moving forward only.
    pub fn apply(&mut self, update: &PaymentUpdate, now: DateTime<Utc>) -> Applied {
        let mut applied = Applied::default();
        let before = self.gateway.clone();
        self.gateway.merge(&update.gateway);
        applied.changed |= before != self.gateway;
        if let Some(status) = update.status {
            self.apply_status(status, update, now, &mut applied);
        }
        self.note_declined_capture(update, &mut applied);
        // An erased payment never gets its payer back (a late webhook, a resumed request).
        if self.payer.is_none() && self.erasure.is_none() && update.payer.is_some() {
            self.payer.clone_from(&update.payer);
            applied.changed = true;
        }
        if let Some(refund) = &update.refund {
            self.apply_refund(refund, now, &mut applied);
        }
        if update.release_in_flight && self.in_flight_until.is_some() {
            self.in_flight_until = None;
            applied.changed = true;
        }
        if applied.changed {
            self.updated_at = now;
        }
        applied
    }

    fn apply_status(
        &mut self,
        status: PaymentStatus,
        update: &PaymentUpdate,
        now: DateTime<Utc>,
        applied: &mut Applied,
    ) {
        if status == self.status || !self.status.may_become(status) {
            return;
        }
        self.status = status;
        applied.changed = true;
        match status {
            PaymentStatus::Authorized => applied
                .events
                .push((PaymentEventType::Authorized, self.amount_cents)),
            PaymentStatus::Captured => {
                self.captured_cents = update.captured_cents.unwrap_or(self.amount_cents);
                self.captured_at = Some(now);
                applied
                    .events
                    .push((PaymentEventType::Captured, self.captured_cents));
            }
            PaymentStatus::Failed => {
                self.failure_code.clone_from(&update.failure_code);
                applied
                    .events
                    .push((PaymentEventType::Failed, self.amount_cents));
            }
            // Released without a capture; no event (nothing was taken). A void after a
            // declined capture keeps the capture's reason.
            PaymentStatus::Voided if update.failure_code.is_some() => {
                self.failure_code.clone_from(&update.failure_code);
            }
            _ => {}
        }
    }

    /// A failure code on a payment that stays authorized: its capture was declined and its
    /// authorization is still to be voided (see [`Payment::capture_declined`]). The first code
    /// is kept.
    fn note_declined_capture(&mut self, update: &PaymentUpdate, applied: &mut Applied) {
        if self.status == PaymentStatus::Authorized
            && self.failure_code.is_none()
            && update.failure_code.is_some()
        {
            self.failure_code.clone_from(&update.failure_code);
            applied.changed = true;
        }
    }

    fn apply_refund(&mut self, update: &RefundUpdate, now: DateTime<Utc>, applied: &mut Applied) {
        let position = self.refunds.iter().position(|refund| {
            update.refund_id.as_deref() == Some(refund.id.as_str())
                || (update.gateway_refund_id.is_some()
                    && refund.gateway_refund_id == update.gateway_refund_id)
        });
        let index = match position {
            Some(index) => index,
            None => match self.refund_made_elsewhere(update, now) {
                Some(refund) => {
                    self.refunds.push(refund);
                    applied.changed = true;
                    self.refunds.len() - 1
                }
                None => return,
            },
        };
        let index = match &update.gateway_refund_id {
            Some(gateway_id) if self.refunds[index].gateway_refund_id.is_none() => {
                self.fold_reported_twin(index, gateway_id, applied)
            }
            _ => index,
        };
        let refund = &mut self.refunds[index];
        if refund.gateway_refund_id.is_none() && update.gateway_refund_id.is_some() {
            refund
                .gateway_refund_id
                .clone_from(&update.gateway_refund_id);
            applied.changed = true;
        }
        if !refund.status.may_become(update.status) {
            return;
        }
        refund.status = update.status;
        refund.updated_at = now;
        applied.changed = true;
        if update.status == RefundStatus::Completed {
            let amount = refund.amount_cents;
            self.refunded_cents += amount;
            self.status = if self.refunded_cents >= self.captured_cents {
                PaymentStatus::Refunded
            } else {
                PaymentStatus::PartiallyRefunded
            };
            applied.events.push((PaymentEventType::Refunded, amount));
        }
    }

    /// The answer to our own refund call names a gateway refund that a webhook reported first
    /// (and was recorded as made elsewhere): the two are one refund. The reported record is
    /// folded into ours (its status, already counted and announced, carries over), so the money
    /// is counted and announced once. Returns our refund's index after the fold.
    fn fold_reported_twin(&mut self, own: usize, gateway_id: &str, applied: &mut Applied) -> usize {
        let position = self.refunds.iter().enumerate().position(|(index, refund)| {
            index != own && refund.gateway_refund_id.as_deref() == Some(gateway_id)
        });
        let Some(position) = position else {
            return own;
        };
        let reported = self.refunds.remove(position);
        let own = if position < own { own - 1 } else { own };
        let refund = &mut self.refunds[own];
        refund.gateway_refund_id = reported.gateway_refund_id;
        if refund.status.may_become(reported.status) {
            refund.status = reported.status;
            refund.updated_at = reported.updated_at;
        }
        if reported.status == RefundStatus::Completed {
            self.refunded_cents += refund.amount_cents - reported.amount_cents;
        }
        applied.changed = true;
        own
    }

    /// A refund the gateway reports that the app did not start (made on the gateway's own
    /// dashboard), recorded as pending so the rest of the update applies to it.
    fn refund_made_elsewhere(&self, update: &RefundUpdate, now: DateTime<Utc>) -> Option<Refund> {
        let gateway_id = update.gateway_refund_id.clone()?;
        let amount_cents = update.amount_cents?;
        if !self.status.is_captured() {
            return None;
        }
        Some(Refund {
            id: format!("gw-{gateway_id}"),
            amount_cents,
            status: RefundStatus::Pending,
            idempotency_key: format!("gateway:{gateway_id}"),
            gateway_refund_id: Some(gateway_id),
            request_hash: String::new(),
            reason: None,
            created_at: now,
            updated_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(status: PaymentStatus) -> Payment {
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        Payment {
            id: "pay-1".into(),
            tenant_id: "t".into(),
            order_id: "o".into(),
            customer_id: "c".into(),
            provider: "paypal".into(),
            source_id: "sandbox-ok".into(),
            amount_cents: 1_000,
            currency: "EUR".into(),
            status,
            captured_cents: if status.is_captured() { 1_000 } else { 0 },
            captured_at: None,
            refunded_cents: 0,
            gateway: GatewayRefs::default(),
            failure_code: None,
            payer: None,
            erasure: None,
            refunds: Vec::new(),
            idempotency_key: "k".into(),
            request_hash: String::new(),
            in_flight_until: None,
            created_at: at,
            updated_at: at,
            etag: "e".into(),
        }
    }

    fn webhook(status: PaymentStatus) -> PaymentUpdate {
        PaymentUpdate::status(
            status,
            UpdateSource::Webhook {
                event_id: "WH-1".into(),
            },
        )
    }

    #[test]
    fn a_capture_announces_the_captured_amount() {
        let mut paying = payment(PaymentStatus::Authorized);
        let applied = paying.apply(&webhook(PaymentStatus::Captured), Utc::now());
        assert!(applied.changed);
        assert_eq!(applied.events, vec![(PaymentEventType::Captured, 1_000)]);
        assert_eq!(paying.captured_cents, 1_000);
    }

    #[test]
    fn a_late_authorization_does_not_move_a_captured_payment_back() {
        let mut paid = payment(PaymentStatus::Captured);
        let applied = paid.apply(&webhook(PaymentStatus::Authorized), Utc::now());
        assert_eq!(applied, Applied::default());
        assert_eq!(paid.status, PaymentStatus::Captured);
    }

    #[test]
    fn refunds_move_the_payment_to_partially_then_fully_refunded() {
        let mut paid = payment(PaymentStatus::Captured);
        for (id, amount) in [("r1", 400), ("r2", 600)] {
            let mut update = PaymentUpdate::status(PaymentStatus::Captured, UpdateSource::Api);
            update.status = None;
            update.refund = Some(RefundUpdate {
                refund_id: None,
                gateway_refund_id: Some(id.into()),
                status: RefundStatus::Completed,
                amount_cents: Some(amount),
            });
            let applied = paid.apply(&update, Utc::now());
            assert_eq!(applied.events, vec![(PaymentEventType::Refunded, amount)]);
        }
        assert_eq!(paid.status, PaymentStatus::Refunded);
        assert_eq!(paid.refunded_cents, 1_000);
        assert_eq!(paid.refundable_cents(), 0);
    }

    #[test]
    fn a_repeated_refund_completion_counts_once() {
        let mut paid = payment(PaymentStatus::Captured);
        let update = PaymentUpdate {
            status: None,
            refund: Some(RefundUpdate {
                refund_id: None,
                gateway_refund_id: Some("r1".into()),
                status: RefundStatus::Completed,
                amount_cents: Some(300),
            }),
            ..PaymentUpdate::status(PaymentStatus::Captured, UpdateSource::Reconciliation)
        };
        paid.apply(&update, Utc::now());
        let again = paid.apply(&update, Utc::now());
        assert!(!again.changed);
        assert_eq!(paid.refunded_cents, 300);
        assert_eq!(paid.status, PaymentStatus::PartiallyRefunded);
    }

    #[test]
    fn a_declined_capture_is_noted_then_voided_without_an_event() {
        let mut held = payment(PaymentStatus::Authorized);
        let mut noted = PaymentUpdate::status(PaymentStatus::Authorized, UpdateSource::Api);
        noted.status = None;
        noted.failure_code = Some("INSTRUMENT_DECLINED".into());
        assert!(held.apply(&noted, Utc::now()).changed);
        assert!(held.capture_declined());
        let mut voided = PaymentUpdate::status(PaymentStatus::Voided, UpdateSource::Api);
        voided.failure_code = Some("INSTRUMENT_DECLINED".into());
        let applied = held.apply(&voided, Utc::now());
        assert!(applied.changed && applied.events.is_empty());
        assert_eq!(
            (held.status, held.failure_code.as_deref()),
            (PaymentStatus::Voided, Some("INSTRUMENT_DECLINED"))
        );
        assert!(!held.capture_declined());
    }

    #[test]
    fn an_erased_payment_does_not_get_its_payer_back() {
        let mut erased = payment(PaymentStatus::Authorized);
        erased.erasure = Some(super::super::PaymentErasure {
            rules_version: "v".into(),
            erased_at: Utc::now(),
        });
        let mut update = webhook(PaymentStatus::Captured);
        update.payer = Some(Payer {
            name: Some("Ada".into()),
            email: None,
        });
        let applied = erased.apply(&update, Utc::now());
        assert!(applied.changed, "the capture still applies");
        assert_eq!(
            (erased.status, erased.payer),
            (PaymentStatus::Captured, None)
        );
    }

    #[test]
    fn a_webhook_faster_than_the_refund_s_own_answer_counts_the_refund_once() {
        let mut paid = payment(PaymentStatus::Captured);
        let at = Utc::now();
        paid.refunds.push(Refund {
            id: "rf-1".into(),
            amount_cents: 1_000,
            status: RefundStatus::Pending,
            gateway_refund_id: None,
            idempotency_key: "key-1".into(),
            request_hash: String::new(),
            reason: None,
            created_at: at,
            updated_at: at,
        });
        let completed = |refund_id: Option<&str>| PaymentUpdate {
            status: None,
            refund: Some(RefundUpdate {
                refund_id: refund_id.map(str::to_owned),
                gateway_refund_id: Some("GW-1".into()),
                status: RefundStatus::Completed,
                amount_cents: Some(1_000),
            }),
            ..PaymentUpdate::status(PaymentStatus::Captured, UpdateSource::Api)
        };
        let webhook = paid.apply(&completed(None), at);
        assert_eq!(webhook.events, vec![(PaymentEventType::Refunded, 1_000)]);
        let answer = paid.apply(&completed(Some("rf-1")), at);
        assert!(answer.changed);
        assert!(answer.events.is_empty(), "announced once: {answer:?}");
        assert_eq!(paid.refunded_cents, 1_000);
        assert_eq!(paid.status, PaymentStatus::Refunded);
        assert_eq!(paid.refunds.len(), 1, "one refund: {:?}", paid.refunds);
        assert_eq!(
            (paid.refunds[0].id.as_str(), paid.refunds[0].status),
            ("rf-1", RefundStatus::Completed)
        );
        assert_eq!(paid.refunds[0].gateway_refund_id.as_deref(), Some("GW-1"));
    }

    #[test]
    fn an_unknown_payment_settles_either_way() {
        for settled in [PaymentStatus::Captured, PaymentStatus::Failed] {
            let mut unsure = payment(PaymentStatus::Unknown);
            assert!(unsure.apply(&webhook(settled), Utc::now()).changed);
            assert_eq!(unsure.status, settled);
        }
    }
}
