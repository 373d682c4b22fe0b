-- The ERP: a product's SKU (unique per tenant when set), the ERP's stock on hand as last synced,
-- and the units open orders reserve, so that available = on hand - reserved is computed in the
-- same statement that applies a stock level and never loses a concurrent reservation.
ALTER TABLE products ADD COLUMN sku TEXT;
ALTER TABLE products ADD COLUMN erp_on_hand INTEGER;
ALTER TABLE products ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX products_by_sku ON products (tenant_id, sku) WHERE sku IS NOT NULL;

-- What open orders (placed, neither cancelled nor shipped) hold today.
UPDATE products SET reserved = COALESCE((
    SELECT SUM(i.quantity) FROM order_items i
      JOIN orders o ON o.tenant_id = i.tenant_id AND o.id = i.order_id
     WHERE i.tenant_id = products.tenant_id AND i.product_id = products.id
       AND o.status IN ('pending', 'confirmed')), 0);
