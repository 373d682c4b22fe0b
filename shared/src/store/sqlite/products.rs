//! SQLite adapter of [`ProductStore`]: the catalogue and stock levels. A SKU is unique per
//! tenant (a partial unique index); a product linked to the ERP refuses API changes to what
//! the ERP owns.

use rusqlite::{params, Connection, ErrorCode};

use super::support::{check_if_match, insert_audit, new_etag, now, time_at, ts, Keyset};
use super::Db;
use crate::domain::audit::AuditEntry;
use crate::domain::product::{Product, ProductInput};
use crate::domain::rejection::Rejection;
use crate::domain::tenant::TenantId;
use crate::store::{IfMatch, Page, PageRequest, ProductFilter, ProductStore, StoreResult};

const COLUMNS: &str = "tenant_id, id, name, category, description, price_cents, currency, stock, active, created_at, updated_at, etag, sku, erp_on_hand, reserved";

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
        sku: row.get(12)?,
        erp_on_hand: row.get(13)?,
        reserved: row.get(14)?,
    })
}

/// True when `error` is the unique SKU index refusing a second product with the same SKU.
pub(super) fn is_sku_taken(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(failure, Some(message))
        if failure.code == ErrorCode::ConstraintViolation && message.contains("products.sku"))
}

/// Runs `write`; a SKU already used in the tenant becomes [`Rejection::SkuTaken`].
fn sku_checked<T>(
    sku: Option<&str>,
    write: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<StoreResult<T>> {
    match write() {
        Ok(value) => Ok(Ok(value)),
        Err(error) if is_sku_taken(&error) => Ok(Err(Rejection::SkuTaken(
            sku.unwrap_or_default().to_owned(),
        )
        .into())),
        Err(error) => Err(error),
    }
}

/// Inserts `product` (its SKU must be free in the tenant).
pub(super) fn insert_product(conn: &Connection, product: &Product) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO products ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
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
            product.etag,
            product.sku,
            product.erp_on_hand,
            product.reserved
        ],
    )?;
    Ok(())
}

/// Writes the fields the API and the ERP's master data set.
pub(super) fn write_product(conn: &Connection, product: &Product) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE products SET name = ?3, category = ?4, description = ?5, price_cents = ?6, currency = ?7, stock = ?8,
                active = ?9, updated_at = ?10, etag = ?11, sku = ?12, erp_on_hand = ?13
          WHERE tenant_id = ?1 AND id = ?2",
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
            ts(product.updated_at),
            product.etag,
            product.sku,
            product.erp_on_hand
        ],
    )?;
    Ok(())
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
            let inserted = sku_checked(product.sku.as_deref(), || {
                insert_product(&transaction, &product)
            })?;
            if inserted.is_ok() {
                insert_audit(&transaction, &audit)?;
                transaction.commit()?;
            }
            Ok(inserted.map(|()| stored))
        })
        .await?
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
            if let Err(refused) = product.check_update(&input) {
                return Ok(Err(refused.into()));
            }
            product.apply_input(input);
            product.updated_at = now();
            product.etag = new_etag();
            if let Err(taken) = sku_checked(product.sku.as_deref(), || {
                write_product(&transaction, &product)
            })? {
                return Ok(Err(taken));
            }
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

/// Moves units into or out of the reservation of open orders (and, for a shipment, off hand),
/// in one statement: a product the ERP does not stock moves its available stock by
/// `move.stock`; one it does gets `on hand - reserved` again.
pub(super) fn reserve(
    conn: &Connection,
    tenant: &str,
    product_id: &str,
    change: crate::domain::product::StockMove,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE products SET reserved = MAX(0, reserved + ?3),
                erp_on_hand = MAX(0, erp_on_hand + ?5),
                stock = CASE WHEN erp_on_hand IS NULL THEN stock + ?4
                             ELSE MAX(0, MAX(0, erp_on_hand + ?5) - MAX(0, reserved + ?3)) END,
                etag = ?6
          WHERE tenant_id = ?1 AND id = ?2",
    )?
    .execute(params![
        tenant,
        product_id,
        change.reserved,
        change.stock,
        change.on_hand,
        new_etag()
    ])?;
    Ok(())
}

/// Escapes `%`, `_` and `\` so a search term matches literally.
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
