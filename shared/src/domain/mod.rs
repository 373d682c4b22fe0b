//! The domain: entities, their rules, and the messages between functions. Nothing here knows
//! about HTTP, envelopes or storage.

pub mod audit;
pub mod audit_intake;
pub mod consent;
pub mod consent_gate;
pub mod contact_data;
pub mod customer;
pub mod etag;
pub mod field_rules;
pub mod gdpr;
pub mod masking;
pub mod messages;
pub mod notification;
pub mod order;
pub mod payment;
pub mod phone;
pub mod preferences;
pub mod product;
pub mod rejection;
pub mod shipment;
pub mod tenant;
pub mod timestamp;
pub mod validation;

/// The current time at the precision the stores keep (microseconds), so a value returned
/// when a document is created equals the value read back later.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
