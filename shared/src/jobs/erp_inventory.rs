//! `ErpInventorySync` (every 15 minutes, `ERP_INVENTORY_SYNC_SCHEDULE`): follows the ERP's
//! stock changes (`GetStockChanges`, paged) from its checkpoint, the ERP's `nextToken`, and
//! applies each page to the products of the ERP's tenants (`ERP_TENANTS`) with the reported
//! SKUs: `available = on hand in the ERP - reserved by open orders here`, computed by the store
//! in the write itself ([`crate::store::ErpStore::apply_stock_levels`]), so a reservation made
//! meanwhile is never overwritten.
//!
//! The checkpoint moves to a page's `nextToken` together with that page's levels (one SQLite
//! transaction; on Cosmos DB right after them), and outlives the run: the next run asks for
//! what changed since. A run killed mid-way resumes after the last applied page; a page
//! applied twice sets the same levels. When the ERP cannot be reached or refuses, the run
//! stops (`partial`) with `findings.erpUnavailable` and `findings.notApplied` (the pages from
//! the checkpoint on), and the checkpoint stays where it was, so nothing is lost. SKUs no
//! product has are counted (`totals.unknownSkus`) and listed (`findings.unknownSkus`, up to
//! 50), never fatal.

use crate::store::StockLevel;

use super::erp_sync::erp_to_sync;
use super::run::{Resume, Run};
use super::{JobError, StepEnd};

pub(crate) const KEEPS_CHECKPOINT: bool = true;
pub(crate) const STEPS: &[&str] = &["stockChanges"];

/// How many unknown SKUs a report lists (all are counted).
const LISTED_UNKNOWN: usize = 50;

pub async fn run(run: &mut Run<'_>) -> Result<StepEnd, JobError> {
    let Some(erp) = erp_to_sync(run) else {
        return Ok(StepEnd::Done);
    };
    run.progress_step(STEPS[0], None);
    let mut token = match run.resume_at(STEPS[0], None) {
        Resume::At(checkpoint) => checkpoint.token,
        Resume::Fresh | Resume::Skip => None,
    };
    let mut pages = 0u64;
    let mut unknown = Vec::new();
    loop {
        if run.out_of_time() {
            note_left(run, token.as_deref(), "the time budget ran out");
            return Ok(StepEnd::OutOfTime);
        }
        let page = match erp
            .get_stock_changes(token.as_deref(), run.context.erp_page_size)
            .await
        {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(job = "ErpInventorySync", %error, "the ERP did not deliver the next page; stopping, the next run resumes");
                run.note("erpUnavailable", &error.to_string());
                note_left(
                    run,
                    token.as_deref(),
                    "the ERP did not deliver the next page",
                );
                return Ok(StepEnd::OutOfTime);
            }
        };
        let levels: Vec<StockLevel> = page
            .items
            .items
            .iter()
            .map(|item| StockLevel {
                sku: item.sku.clone(),
                on_hand: item.on_hand,
            })
            .collect();
        apply(run, &levels, &page.next_token, &mut unknown).await?;
        pages += 1;
        run.report
            .findings
            .insert("pagesApplied".into(), pages.into());
        run.advance(levels.len().max(1));
        token = Some(page.next_token);
        if !page.has_more {
            return Ok(StepEnd::Done);
        }
    }
}

/// Applies one page and moves the checkpoint to its `nextToken` (in a dry run: counts only).
async fn apply(
    run: &mut Run<'_>,
    levels: &[StockLevel],
    next_token: &str,
    unknown: &mut Vec<String>,
) -> Result<(), JobError> {
    if run.dry_run {
        *run.report.totals.entry("wouldApply".into()).or_insert(0) += levels.len() as u64;
        return Ok(());
    }
    let mut checkpoint = run.checkpoint(STEPS[0], None);
    checkpoint.token = Some(next_token.to_owned());
    let fence = run.fence(Some(&checkpoint));
    let tenants = run.context.erp_tenants.clone();
    let applied = run
        .context
        .store
        .apply_stock_levels(&tenants, levels, fence)
        .await
        .map_err(JobError::store("apply stock levels"))?;
    for (tenant, count) in &applied.applied {
        run.report.add(tenant, "stockLevelsApplied", *count);
    }
    if !applied.unknown_skus.is_empty() {
        *run.report.totals.entry("unknownSkus".into()).or_insert(0) +=
            applied.unknown_skus.len() as u64;
        for sku in applied.unknown_skus {
            if unknown.len() < LISTED_UNKNOWN && !unknown.contains(&sku) {
                unknown.push(sku);
            }
        }
        run.report
            .findings
            .insert("unknownSkus".into(), serde_json::json!(unknown));
    }
    Ok(())
}

/// Says what this run did not apply: every change after `token`.
fn note_left(run: &mut Run<'_>, token: Option<&str>, reason: &str) {
    run.report.findings.insert(
        "notApplied".into(),
        serde_json::json!({
            "reason": reason,
            "from": token.map_or("the first change", |token| token),
            "what": "every stock change after the checkpoint; the next run applies them",
        }),
    );
}

pub(crate) async fn count_left(run: &mut Run<'_>) -> Result<(), JobError> {
    run.report.leave("stockPages", 1);
    Ok(())
}
