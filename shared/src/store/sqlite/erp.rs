//! SQLite adapter of [`ErpStore`]: a page of stock levels is one transaction with the job's
//! checkpoint (the ERP's `nextToken`), each level one `UPDATE` that computes the available
//! stock from the row's current reservation, so neither a crash nor a concurrent order can
//! leave a page half applied or a reservation lost.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::jobs::leases::fenced;
use super::products::{insert_product, is_sku_taken, load_product, write_product};
use super::support::{new_etag, now, ts};
use super::Db;
use crate::domain::product::Product;
use crate::domain::rejection::Rejection;
use crate::domain::tenant::TenantId;
use crate::store::erp::{ErpMasterData, ErpStore, MasterApplied, StockApplied, StockLevel};
use crate::store::jobs::Fence;
use crate::store::StoreResult;

/// Sets the on-hand of the tenant's product with `sku` and its available stock from the
/// reservation it has now; whether a product has the SKU.
fn apply_level(tx: &Transaction<'_>, tenant: &str, level: &StockLevel) -> rusqlite::Result<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE products SET erp_on_hand = ?3, stock = MAX(0, ?3 - reserved), updated_at = ?4, etag = ?5
              WHERE tenant_id = ?1 AND sku = ?2",
        )?
        .execute(params![tenant, level.sku, level.on_hand.max(0), ts(now()), new_etag()])?;
    Ok(changed > 0)
}

fn id_by_sku(conn: &Connection, tenant: &str, sku: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT id FROM products WHERE tenant_id = ?1 AND sku = ?2")?
        .query_row(params![tenant, sku], |row| row.get(0))
        .optional()
}

fn product_by_sku(conn: &Connection, tenant: &str, sku: &str) -> rusqlite::Result<Option<Product>> {
    match id_by_sku(conn, tenant, sku)? {
        Some(id) => load_product(conn, tenant, &id).map(Some),
        None => Ok(None),
    }
}

#[async_trait::async_trait]
impl ErpStore for Db {
    async fn apply_stock_levels(
        &self,
        tenants: &[TenantId],
        levels: &[StockLevel],
        fence: Fence,
    ) -> StoreResult<StockApplied> {
        let tenants: Vec<String> = tenants.iter().map(|t| t.as_str().to_owned()).collect();
        let levels = levels.to_vec();
        fenced(self, fence, move |tx| {
            let mut applied = StockApplied::default();
            for level in &levels {
                let mut known = false;
                for tenant in &tenants {
                    if apply_level(tx, tenant, level)? {
                        known = true;
                        *applied.applied.entry(tenant.clone()).or_insert(0) += 1;
                    }
                }
                if !known {
                    applied.unknown_skus.push(level.sku.clone());
                }
            }
            Ok(applied)
        })
        .await
    }

    async fn product_by_sku(&self, tenant: &TenantId, sku: &str) -> StoreResult<Option<Product>> {
        let (tenant, sku) = (tenant.as_str().to_owned(), sku.to_owned());
        self.read(move |conn| product_by_sku(conn, &tenant, &sku))
            .await
    }

    async fn apply_master_data(
        &self,
        tenant: &TenantId,
        master: &ErpMasterData,
        new_id: &str,
    ) -> StoreResult<MasterApplied> {
        let tenant_id = tenant.clone();
        let (tenant, master, new_id) = (
            tenant.as_str().to_owned(),
            master.clone(),
            new_id.to_owned(),
        );
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let outcome = match product_by_sku(&tx, &tenant, &master.sku)? {
                Some(product) if master.matches(&product) => {
                    return Ok(Ok(MasterApplied::Unchanged))
                }
                Some(mut product) => {
                    master.apply_to(&mut product);
                    product.updated_at = now();
                    product.etag = new_etag();
                    write_product(&tx, &product)?;
                    MasterApplied::Updated
                }
                None => match insert_product(&tx, &master.new_product(&tenant_id, &new_id)) {
                    Ok(()) => MasterApplied::Created,
                    Err(error) if is_sku_taken(&error) => {
                        return Ok(Err(Rejection::SkuTaken(master.sku.clone()).into()))
                    }
                    Err(error) => return Err(error),
                },
            };
            tx.commit()?;
            Ok(Ok(outcome))
        })
        .await?
    }
}
