//! The `payments` step: a customer's payments keep their financial facts (ids, amounts,
//! currency, statuses, dates, the gateway's references); the payer is removed, the payment
//! source pseudonymised and refund reasons removed by the masking rules, and each payment is
//! marked erased with the rule version ([`Masker::mask_payment`]). Payments live in the
//! customer's partition, so they join the erasure's batch (if-match on each `_etag`: a payment
//! changed meanwhile refuses the batch, which is planned again from a fresh read).

use azure_data_cosmos::TransactionalBatch;

use super::super::doc::{kind, Doc};
use super::super::payments::{payment_of, rewritten};
use super::super::support::{batch_replace, param, scope_feed};
use super::super::CosmosStore;
use super::order_masking::BATCH_BYTES;
use super::undecodable;
use crate::domain::etag::new_etag;
use crate::domain::masking::Masker;
use crate::domain::now;
use crate::store::erasure::BatchOutcome as StepOutcome;
use crate::store::payment_record::StoredPayment;
use crate::store::StoreResult;

impl CosmosStore {
    /// Masks up to `limit` of the customer's payments not erased yet. A masked payment leaves
    /// the selection, so the next batch (or a resumed erasure) takes the next ones.
    pub(super) async fn erasure_mask_payments(
        &self,
        tenant: &str,
        scope: &str,
        masker: &Masker,
        limit: usize,
        mut batch: TransactionalBatch,
    ) -> StoreResult<(TransactionalBatch, StepOutcome)> {
        let sql = format!(
            "SELECT TOP {limit} * FROM c WHERE c.type = @kind AND NOT IS_DEFINED(c.body.erasure) ORDER BY c.id"
        );
        let payments: Vec<Doc<StoredPayment>> = self
            .query_docs(
                self.data(),
                scope_feed(tenant, scope),
                &sql,
                vec![param("@kind", kind::PAYMENT)],
            )
            .await?;
        let fetched = payments.len();
        let at = now();
        let (mut masked_count, mut batch_bytes) = (0_usize, 0);
        for read in &payments {
            let masked = masker
                .mask_payment(&payment_of(read), at)
                .map_err(|error| undecodable("payment", &error))?;
            let Some(mut masked) = masked else { continue };
            masked.etag = new_etag();
            let doc = rewritten(read, &masked);
            // A batch may carry at most 2 MB: payments with many refunds end it early.
            let size = serde_json::to_vec(&doc).map_or(0, |bytes| bytes.len());
            if masked_count > 0 && batch_bytes + size > BATCH_BYTES {
                break;
            }
            batch_bytes += size;
            batch = batch_replace(self, batch, &doc)?;
            masked_count += 1;
        }
        let outcome = StepOutcome {
            counts: vec![("payments", masked_count as u64)],
            cursor: None,
            done: fetched < limit && masked_count == fetched,
        };
        Ok((batch, outcome))
    }
}
