//! One module per Azure Function of the app, named after it. The declaration that ties each
//! to its trigger and bindings is [`crate::registry::FUNCTIONS`].
//!
//! HTTP functions expose `routes()` (axum routes under `/api`); timer and Service Bus functions
//! expose `invoke()` (envelope in, reply out).

pub mod api_definition;
pub mod audit_api;
pub mod customers_api;
pub mod data_retention_cleanup;
pub mod database_maintenance;
pub mod gdpr_data_anonymization;
pub mod health;
pub mod notification_cleanup;
pub mod notification_dispatch;
pub mod notifications_api;
pub mod orders_api;
pub mod products_api;
