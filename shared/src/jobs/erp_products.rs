//! `ErpProductSync` (nightly, `ERP_PRODUCT_SYNC_SCHEDULE`): the ERP owns the master data of
//! the products linked to it by SKU (name, category, price and currency, active), and this job
//! copies it from `GetProducts` (every page, from 1) onto the products of the ERP's tenants
//! (`ERP_TENANTS`) with that SKU. A SKU no product of a tenant has yet becomes a new product
//! there (no description, no stock until `ErpInventorySync` reports its on-hand): this is how a
//! catalogue gets linked to the ERP. Edits the API refuses (409 `Owned By The ERP`) cannot
//! happen in between, so the ERP's values simply win.
//!
//! The checkpoint is the next page (`part`), saved after each applied page: a run killed or
//! stopped by an unreachable ERP resumes at that page; a page applied twice finds its products
//! unchanged. Per tenant: `productsCreated`, `productsUpdated`, `productsUnchanged`;
//! `totals.invalidProducts` counts ERP products this app cannot take (a price that is not a
//! decimal with two places, a name or category outside its rules), listed by SKU in
//! `findings.invalidSkus`.

use crate::domain::product::ProductInput;
use crate::erp::ErpProduct;
use crate::store::ErpMasterData;

use super::erp_sync::erp_to_sync;
use super::run::{Resume, Run};
use super::{JobError, StepEnd};

pub(crate) const KEEPS_CHECKPOINT: bool = false;
pub(crate) const STEPS: &[&str] = &["products"];

pub async fn run(run: &mut Run<'_>) -> Result<StepEnd, JobError> {
    let Some(erp) = erp_to_sync(run) else {
        return Ok(StepEnd::Done);
    };
    run.progress_step(STEPS[0], None);
    let mut page = match run.resume_at(STEPS[0], None) {
        Resume::At(checkpoint) => checkpoint.part.unwrap_or(1).max(1),
        Resume::Fresh | Resume::Skip => 1,
    };
    let mut invalid = Vec::new();
    loop {
        if run.out_of_time() {
            return Ok(StepEnd::OutOfTime);
        }
        let answer = match erp
            .get_products(None, page, Some(run.context.erp_page_size))
            .await
        {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(job = "ErpProductSync", %error, page, "the ERP cannot be reached; stopping, the next run resumes");
                run.note("erpUnavailable", &error.to_string());
                run.report.findings.insert(
                    "notApplied".into(),
                    serde_json::json!({ "fromPage": page, "what": "this page and the ones after it; the next run applies them" }),
                );
                return Ok(StepEnd::OutOfTime);
            }
        };
        for product in &answer.products.products {
            apply(run, product, &mut invalid).await?;
        }
        run.advance(answer.products.products.len().max(1));
        page += 1;
        let mut checkpoint = run.checkpoint(STEPS[0], None);
        checkpoint.part = Some(page);
        run.save(&checkpoint).await?;
        if !answer.has_more {
            return Ok(StepEnd::Done);
        }
    }
}

/// The ERP's product as this app's master data, if it meets the app's rules.
fn master_data(product: &ErpProduct) -> Option<ErpMasterData> {
    let master = ErpMasterData {
        sku: product.sku.clone(),
        name: product.name.trim().to_owned(),
        category: product.category.trim().to_owned(),
        price_cents: product.price.minor_units()?,
        currency: product.price.currency.clone(),
        active: product.active,
    };
    let input = ProductInput {
        name: master.name.clone(),
        category: master.category.clone(),
        description: None,
        price_cents: master.price_cents,
        currency: master.currency.clone(),
        stock: 0,
        active: master.active,
        sku: Some(master.sku.clone()),
    };
    input.validate().ok().map(|()| master)
}

async fn apply(
    run: &mut Run<'_>,
    product: &ErpProduct,
    invalid: &mut Vec<String>,
) -> Result<(), JobError> {
    let Some(master) = master_data(product) else {
        *run.report
            .totals
            .entry("invalidProducts".into())
            .or_insert(0) += 1;
        if invalid.len() < 50 && !invalid.contains(&product.sku) {
            invalid.push(product.sku.clone());
        }
        run.report
            .findings
            .insert("invalidSkus".into(), serde_json::json!(invalid));
        return Ok(());
    };
    for tenant in run.context.erp_tenants.clone() {
        if run.dry_run {
            run.report.add(tenant.as_str(), "wouldApply", 1);
            continue;
        }
        let applied = run
            .context
            .store
            .apply_master_data(&tenant, &master, &crate::domain::validation::new_id())
            .await
            .map_err(JobError::store("apply product master data"))?;
        run.report.add(tenant.as_str(), applied.as_str(), 1);
    }
    run.keep_lease().await
}

pub(crate) async fn count_left(run: &mut Run<'_>) -> Result<(), JobError> {
    run.report.leave("productPages", 1);
    Ok(())
}
