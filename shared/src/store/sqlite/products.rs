//! SQLite adapter of [`ProductStore`]: the catalogue and stock levels.

use rusqlite::{params, Connection};

use super::support::{check_if_match, insert_audit, new_etag, now, time_at, ts, Keyset};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::product::{Product, ProductInput};
use crate::domain::tenant::TenantId;
use crate::store::{IfMatch, Page, PageRequest, ProductFilter, ProductStore, StoreResult};

const COLUMNS: &str = "tenant_id, id, name, category, description, price_cents, currency, stock, active, created_at, updated_at, etag";

fn product_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        tenant_id: row.get(0)?,
        id: row.get(1)?,
        name: row.get(2)?,
        category: row.get(3)?,
        description: row.get(4)?,
        price_cents: row.get(5)?,
        currency: row.get(6)?,
        stock: row.get(7)?,
        active: row.get(8)?,
        created_at: time_at(row, 9)?,
        updated_at: time_at(row, 10)?,
        etag: row.get(11)?,
    })
}

pub(super) fn load_product(conn: &Connection, tenant: &str, id: &str) -> rusqlite::Result<Product> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM products WHERE tenant_id = ?1 AND id = ?2"
    ))?
    .query_row(params![tenant, id], product_from_row)
}

#[async_trait::async_trait]
impl ProductStore for Db {
    async fn create_product(
        &self,
        tenant: &TenantId,
        mut product: Product,
        audit: AuditEntry,
    ) -> StoreResult<Product> {
        product.tenant_id = tenant.as_str().to_owned();
        product.etag = new_etag();
        let stored = product.clone();
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            transaction.execute(
                &format!("INSERT INTO products ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    product.tenant_id,
                    product.id,
                    product.name,
                    product.category,
                    product.description,
                    product.price_cents,
                    product.currency,
                    product.stock,
                    product.active,
                    ts(product.created_at),
                    ts(product.updated_at),
                    product.etag
                ],
            )?;
            insert_audit(&transaction, &audit)?;
            transaction.commit()
        })
        .await?;
        Ok(stored)
    }

    async fn get_product(&self, tenant: &TenantId, id: &str) -> StoreResult<Product> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.read(move |conn| load_product(conn, &tenant, &id))
            .await
    }

    async fn update_product(
        &self,
        tenant: &TenantId,
        id: &str,
        input: ProductInput,
        if_match: IfMatch,
        audit: AuditEntry,
    ) -> StoreResult<Product> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.write(move |conn| {
            let transaction = conn.transaction()?;
            let mut product = load_product(&transaction, &tenant, &id)?;
            if let Err(stale) = check_if_match(&if_match, &product.etag) {
                return Ok(Err(stale));
            }
            product.name = input.name;
            product.category = input.category;
            product.description = input.description;
            product.price_cents = input.price_cents;
            product.currency = input.currency;
            product.stock = input.stock;
            product.active = input.active;
            product.updated_at = now();
            product.etag = new_etag();
            transaction.execute(
                "UPDATE products SET name = ?3, category = ?4, description = ?5, price_cents = ?6, currency = ?7, stock = ?8,
                        active = ?9, updated_at = ?10, etag = ?11
                  WHERE tenant_id = ?1 AND id = ?2",
                params![
                    tenant,
                    id,
                    product.name,
                    product.category,
                    product.description,
                    product.price_cents,
                    product.currency,
                    product.stock,
                    product.active,
                    ts(product.updated_at),
                    product.etag
                ],
            )?;
            insert_audit(&transaction, &audit)?;
            transaction.commit()?;
            Ok(Ok(product))
        })
        .await?
    }

    async fn list_products(
        &self,
        tenant: &TenantId,
        filter: ProductFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Product>> {
        let tenant = tenant.as_str().to_owned();
        let query = filter.query_name();
        let name_pattern = filter
            .name
            .as_ref()
            .map(|name| format!("%{}%", escape_like(&name.to_lowercase())));
        let fetch = move |conn: &Connection, keyset: Keyset| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM products
                  WHERE tenant_id = ?1
                    AND (?2 IS NULL OR lower(name) LIKE ?2 ESCAPE '\\')
                    AND (?3 IS NULL OR category = ?3)
                    AND (?4 IS NULL OR (created_at, id) > (?4, ?5))
                  ORDER BY created_at, id LIMIT ?6"
            ))?;
            let rows = statement.query_map(
                params![
                    tenant,
                    name_pattern,
                    filter.category,
                    keyset.after_key,
                    keyset.after_id,
                    keyset.rows
                ],
                product_from_row,
            )?;
            rows.collect()
        };
        self.read_page(&page, &query, fetch, |p| (ts(p.created_at), p.id.clone()))
            .await
    }
}

/// Escapes `%`, `_` and `\` so a search term matches literally.
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
