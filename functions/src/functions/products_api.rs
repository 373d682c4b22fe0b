//! `ProductsApi`: the catalogue under `/api/v1/products` (HTTP trigger, route
//! `v1/products/{*path}`). Everyone signed in may read; `admin` and `order-manager` may create
//! and update.
//!
//! - `GET /products?name=&category=&limit=&continuation=`: list, filtered.
//! - `GET /products/search?q=&category=`: search by name (substring, case-insensitive).
//! - `GET /products/{id}`, `GET /products/{id}/stock`.
//! - `POST /products`, `PUT /products/{id}` (`If-Match` required: 428 without it, 412 when
//!   stale, so a stock level set from a stale read cannot wipe out reservations). A `sku`
//!   links a product to the ERP (409 when another product of the tenant has it); `PUT` of a
//!   linked product that changes a field the ERP owns answers 409 `Owned By The ERP`.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Json;
use shared::auth::Role;
use shared::domain::product::{Product, ProductInput};
use shared::domain::validation::new_id;
use shared::store::ProductFilter;

use crate::api::openapi::{Access, Operation};
use crate::api::{
    etag_header, required_if_match, ApiError, Caller, JsonBody, PageResponse, QueryParams,
};
use crate::startup::AppState;

/// Who may change the catalogue.
const CATALOGUE_ROLES: &[Role] = &[Role::Admin, Role::OrderManager];

/// The operations of this function (routes and their documentation).
pub fn operations() -> Vec<Operation> {
    const WRITE: Access = Access::SignedIn("admin, order-manager");
    vec![
        Operation::new(
            Method::GET,
            "/api/v1/products",
            "listProducts",
            "List products",
            get(list),
        )
        .query(&[
            ("name", "part of the name, case-insensitive"),
            ("category", "exact category"),
            ("limit", "page size, 1 to 100 (default 20)"),
            ("continuation", "the token from the previous page"),
        ])
        .returns::<PageResponse<Product>>(200, "A page of products"),
        Operation::new(
            Method::POST,
            "/api/v1/products",
            "createProduct",
            "Create a product",
            post(create),
        )
        .access(WRITE)
        .body::<ProductInput>()
        .example(product_example)
        .returns::<Product>(201, "Created; Location and ETag headers are set")
        .links(&[
            ("getProduct", &[("id", "$response.body#/id")]),
            (
                "updateProduct",
                &[
                    ("id", "$response.body#/id"),
                    ("header.If-Match", "$response.header.ETag"),
                ],
            ),
            ("getStock", &[("id", "$response.body#/id")]),
        ])
        .errors(&[400, 401, 403, 409, 413, 415]),
        Operation::new(
            Method::GET,
            "/api/v1/products/search",
            "searchProducts",
            "Search products by name and category",
            get(search),
        )
        .query(&[
            ("q", "part of the name, case-insensitive"),
            ("category", "exact category"),
            ("limit", "page size, 1 to 100 (default 20)"),
            ("continuation", "the token from the previous page"),
        ])
        .returns::<PageResponse<Product>>(200, "A page of matching products"),
        Operation::new(
            Method::GET,
            "/api/v1/products/{id}",
            "getProduct",
            "Read a product",
            get(read),
        )
        .returns::<Product>(200, "The product; ETag header set"),
        Operation::new(
            Method::PUT,
            "/api/v1/products/{id}",
            "updateProduct",
            "Replace a product",
            put(update),
        )
        .access(WRITE)
        .headers(&[(
            "If-Match",
            "required: the ETag you read (428 without it); 412 when the product changed since, \
             for instance when an order reserved stock",
        )])
        .require_headers(&["If-Match"])
        .body::<ProductInput>()
        .example(product_example)
        .returns::<Product>(200, "Updated; new ETag")
        .errors(&[400, 401, 403, 404, 409, 412, 413, 415, 428]),
        Operation::new(
            Method::GET,
            "/api/v1/products/{id}/stock",
            "getStock",
            "Stock level of a product",
            get(stock),
        )
        .returns::<StockLevel>(200, "Units available"),
    ]
    .into_iter()
    .map(|operation| operation.tag("products"))
    .collect()
}

fn product_example() -> serde_json::Value {
    serde_json::json!({"name": "Kettle", "category": "kitchen", "description": "1.7 l, stainless steel", "priceCents": 2999, "currency": "EUR", "stock": 10, "active": true})
}

/// `GET /products/{id}/stock`.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockLevel {
    product_id: String,
    stock: i64,
    updated_at: chrono::DateTime<chrono::Utc>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    let filter = ProductFilter {
        name: query.text("name"),
        category: query.text("category"),
    };
    let page = query.page();
    query.finish(&["name", "category", "limit", "continuation"])?;
    let listing = state.page_tokens.listing(caller.tenant(), "products:list");
    let page = state
        .ports
        .products
        .list_products(caller.tenant(), filter, listing.request(page)?)
        .await?;
    Ok(Json(listing.response(page)).into_response())
}

async fn search(
    State(state): State<AppState>,
    caller: Caller,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    let filter = ProductFilter {
        name: query.text("q"),
        category: query.text("category"),
    };
    let page = query.page();
    query.finish(&["q", "category", "limit", "continuation"])?;
    let listing = state
        .page_tokens
        .listing(caller.tenant(), "products:search");
    let page = state
        .ports
        .products
        .list_products(caller.tenant(), filter, listing.request(page)?)
        .await?;
    Ok(Json(listing.response(page)).into_response())
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let product = state
        .ports
        .products
        .get_product(caller.tenant(), &id)
        .await?;
    Ok(with_etag(StatusCode::OK, &product))
}

async fn stock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let product = state
        .ports
        .products
        .get_product(caller.tenant(), &id)
        .await?;
    Ok(Json(StockLevel {
        product_id: product.id,
        stock: product.stock,
        updated_at: product.updated_at,
    })
    .into_response())
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    caller.require_role(CATALOGUE_ROLES, "create products")?;
    let input: ProductInput = body.parse()?;
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
        sku: input.sku,
        erp_on_hand: None,
        reserved: 0,
        created_at: now,
        updated_at: now,
        etag: String::new(),
    };
    let audit = caller.audit("product.create", "product", &product.id);
    let product = state
        .ports
        .products
        .create_product(caller.tenant(), product, audit)
        .await?;
    let mut response = with_etag(StatusCode::CREATED, &product);
    if let Ok(location) = format!("/api/v1/products/{}", product.id).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    caller.require_role(CATALOGUE_ROLES, "update products")?;
    let if_match = match required_if_match(&headers) {
        Ok(if_match) => if_match,
        Err(required) => {
            // A missing product is a 404 either way; only an existing one needs the ETag.
            state
                .ports
                .products
                .get_product(caller.tenant(), &id)
                .await?;
            return Err(required);
        }
    };
    let input: ProductInput = body.parse()?;
    input.validate()?;
    let audit = caller.audit("product.update", "product", &id);
    let product = state
        .ports
        .products
        .update_product(caller.tenant(), &id, input, if_match, audit)
        .await?;
    Ok(with_etag(StatusCode::OK, &product))
}

fn with_etag(status: StatusCode, product: &Product) -> Response {
    (status, [etag_header(&product.etag)], Json(product)).into_response()
}
