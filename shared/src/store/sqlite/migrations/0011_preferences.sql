-- Notification preferences: one row per customer who set them (none: the defaults, every
-- channel on). `event_types` is the JSON object of event type -> {realtime, email, sms}.
CREATE TABLE notification_preferences (
    tenant_id    TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    event_types  TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    etag         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;
