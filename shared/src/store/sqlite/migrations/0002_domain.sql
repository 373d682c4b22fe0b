-- Domain tables. Every table is keyed by tenant first: the tenant is the partition key.
-- Times are RFC 3339 UTC text with microseconds and `Z`, so text order is time order.
CREATE TABLE customers (
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    name             TEXT NOT NULL,
    email            TEXT NOT NULL,
    phone            TEXT,
    address          TEXT,
    preferences      TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    last_activity_at TEXT NOT NULL,
    etag             TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX customers_by_created ON customers (tenant_id, created_at, id);
CREATE INDEX customers_by_activity ON customers (tenant_id, status, last_activity_at);

CREATE TABLE products (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    category    TEXT NOT NULL,
    description TEXT,
    price_cents INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    active      INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    etag        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX products_by_created ON products (tenant_id, created_at, id);
CREATE INDEX products_by_category ON products (tenant_id, category, created_at, id);

CREATE TABLE orders (
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    customer_id      TEXT NOT NULL,
    status           TEXT NOT NULL,
    total_cents      INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    shipping_address TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    etag             TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX orders_by_created ON orders (tenant_id, created_at, id);
CREATE INDEX orders_by_customer ON orders (tenant_id, customer_id, created_at, id);
CREATE INDEX orders_by_status ON orders (tenant_id, status, created_at, id);

CREATE TABLE order_items (
    tenant_id        TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    line_no          INTEGER NOT NULL,
    product_id       TEXT NOT NULL,
    product_name     TEXT NOT NULL,
    quantity         INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, order_id, line_no)
) WITHOUT ROWID;

CREATE TABLE order_status_history (
    tenant_id TEXT NOT NULL,
    order_id  TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    status    TEXT NOT NULL,
    at        TEXT NOT NULL,
    actor_id  TEXT NOT NULL,
    reason    TEXT,
    PRIMARY KEY (tenant_id, order_id, seq)
) WITHOUT ROWID;

CREATE TABLE notifications (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('customer', 'role')),
    recipient_id   TEXT NOT NULL,
    category       TEXT NOT NULL,
    title          TEXT NOT NULL,
    message        TEXT NOT NULL,
    order_id       TEXT,
    read_at        TEXT,
    is_read        INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX notifications_by_recipient ON notifications (tenant_id, recipient_kind, recipient_id, is_read, created_at DESC, id DESC);
CREATE INDEX notifications_by_created ON notifications (created_at);

CREATE TABLE audit_log (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    actor_id       TEXT NOT NULL,
    action         TEXT NOT NULL,
    target_type    TEXT NOT NULL,
    target_id      TEXT NOT NULL,
    customer_id    TEXT,
    at             TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX audit_by_time ON audit_log (tenant_id, at DESC, id DESC);
CREATE INDEX audit_by_customer ON audit_log (tenant_id, customer_id, at DESC, id DESC);

CREATE TABLE idempotency_keys (
    tenant_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_by_created ON idempotency_keys (created_at);

CREATE TABLE erasure_requests (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    status       TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    report       TEXT,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX erasure_by_customer ON erasure_requests (tenant_id, customer_id, requested_at);
