//! `OrdersApi`: the orders API under `/api/v1/orders` (HTTP trigger, route `v1/orders/{*path}`).
//!
//! Not implemented yet: the API lands with issue 3. Until then every route answers `501`
//! with a problem document saying so.

use axum::Router;

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    super::pending::http_routes("/api/v1/orders", "OrdersApi", 3)
}
