-- Shipments: one per order (the label bought when it ships), its tracking status, and what a
-- GDPR erasure did to it. Tracking scans undelivered shipments across tenants in key order.
CREATE TABLE shipments (
    tenant_id           TEXT NOT NULL,
    order_id            TEXT NOT NULL,
    customer_id         TEXT NOT NULL,
    carrier             TEXT NOT NULL,
    status              TEXT NOT NULL,
    carrier_shipment_id TEXT,
    service             TEXT,
    tracking_number     TEXT,
    label_url           TEXT,
    tracker_id          TEXT,
    event_id            TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    delivered_at        TEXT,
    erased_at           TEXT,
    PRIMARY KEY (tenant_id, order_id)
) WITHOUT ROWID;
CREATE INDEX shipments_by_customer ON shipments (tenant_id, customer_id, created_at);
CREATE INDEX shipments_to_track ON shipments (tenant_id, order_id)
    WHERE tracker_id IS NOT NULL
      AND status NOT IN ('delivered', 'return_to_sender', 'cancelled', 'failure');
