//! `ProductsApi`: the catalogue under `/api/v1/products` (HTTP trigger, route
//! `v1/products/{*path}`). Everyone signed in may read; `admin` and `order-manager` may create
//! and update.
//!
//! - `GET /products?name=&category=&limit=&continuation=`: list, filtered.
//! - `GET /products/search?q=&category=`: search by name (substring, case-insensitive).
//! - `GET /products/{id}`, `GET /products/{id}/stock`.
//! - `POST /products`, `PUT /products/{id}` (`If-Match` honoured: 412 when stale).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use shared::auth::Role;
use shared::domain::product::{Product, ProductInput};
use shared::domain::validation::new_id;
use shared::store::ProductFilter;

use crate::api::{etag_header, if_match, ApiError, Caller, PageResponse, QueryParams, ValidJson};
use crate::app::AppState;

/// Who may change the catalogue.
const CATALOGUE_ROLES: &[Role] = &[Role::Admin, Role::OrderManager];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/products", get(list).post(create))
        .route("/api/v1/products/search", get(search))
        .route("/api/v1/products/{id}", get(read).put(update))
        .route("/api/v1/products/{id}/stock", get(stock))
}

async fn list(State(state): State<AppState>, caller: Caller, mut query: QueryParams) -> Result<Response, ApiError> {
    let filter = ProductFilter { name: query.text("name", 200), category: query.text("category", 100) };
    let page = query.page();
    query.finish(&["name", "category", "limit", "continuation"])?;
    let page = state.store.list_products(caller.tenant(), filter, page.unwrap_or_else(|| shared::store::PageRequest::first(20))).await?;
    Ok(Json(PageResponse::from(page)).into_response())
}

async fn search(State(state): State<AppState>, caller: Caller, mut query: QueryParams) -> Result<Response, ApiError> {
    let filter = ProductFilter { name: query.text("q", 200), category: query.text("category", 100) };
    let page = query.page();
    query.finish(&["q", "category", "limit", "continuation"])?;
    let page = state.store.list_products(caller.tenant(), filter, page.unwrap_or_else(|| shared::store::PageRequest::first(20))).await?;
    Ok(Json(PageResponse::from(page)).into_response())
}

async fn read(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let product = state.store.get_product(caller.tenant(), &id).await?;
    Ok(with_etag(StatusCode::OK, &product))
}

async fn stock(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let product = state.store.get_product(caller.tenant(), &id).await?;
    Ok(Json(json!({ "productId": product.id, "stock": product.stock, "updatedAt": product.updated_at })).into_response())
}

async fn create(State(state): State<AppState>, caller: Caller, ValidJson(input): ValidJson<ProductInput>) -> Result<Response, ApiError> {
    caller.require_role(CATALOGUE_ROLES, "create products")?;
    input.validate()?;
    let now = shared::domain::now();
    let product = Product {
        id: new_id(),
        tenant_id: caller.tenant().to_string(),
        name: input.name.trim().to_owned(),
        category: input.category.trim().to_owned(),
        description: input.description,
        price_cents: input.price_cents,
        currency: input.currency,
        stock: input.stock,
        active: input.active,
        created_at: now,
        updated_at: now,
        etag: String::new(),
    };
    let audit = caller.audit("product.create", "product", &product.id);
    let product = state.store.create_product(caller.tenant(), product, audit).await?;
    let mut response = with_etag(StatusCode::CREATED, &product);
    if let Ok(location) = format!("/api/v1/products/{}", product.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn update(State(state): State<AppState>, caller: Caller, Path(id): Path<String>, headers: HeaderMap, ValidJson(input): ValidJson<ProductInput>) -> Result<Response, ApiError> {
    caller.require_role(CATALOGUE_ROLES, "update products")?;
    input.validate()?;
    let audit = caller.audit("product.update", "product", &id);
    let product = state.store.update_product(caller.tenant(), &id, input, if_match(&headers), audit).await?;
    Ok(with_etag(StatusCode::OK, &product))
}

fn with_etag(status: StatusCode, product: &Product) -> Response {
    (status, [etag_header(&product.etag)], Json(product)).into_response()
}
