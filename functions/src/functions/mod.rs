//! One module per Azure Function of the app, named after it. The declaration that ties each
//! to its trigger and bindings is [`crate::registry::FUNCTIONS`].
//!
//! HTTP functions expose `operations()` (axum routes under `/api` with their documentation);
//! Service Bus functions expose `invoke()` (envelope in, reply out). Timer functions that run a
//! housekeeping job need no module here: the registry names the job ([`shared::jobs`]).

pub mod api_definition;
pub mod audit_api;
pub mod cancelled_order_refund;
pub mod customers_api;
pub mod erp_goods_movement;
#[cfg(feature = "example-function")]
pub mod example_greeter;
#[cfg(feature = "example-function")]
pub mod example_greetings_api;
pub mod gdpr_data_anonymization;
pub mod health;
pub mod notification_dispatch;
pub mod notifications_api;
pub mod notifications_negotiate;
pub mod orders_api;
pub mod outbox_relay;
pub mod payment_notification_dispatch;
pub mod payment_order_flow;
pub mod payments_api;
pub mod products_api;
pub mod shipping_api;
pub mod shipping_label;
