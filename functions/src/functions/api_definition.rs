//! `ApiDefinition`: the OpenAPI 3.1 document of the API at `GET /api/v1/openapi.json` (HTTP
//! trigger, anonymous). It is generated from the operations the API functions declare; the
//! same document is written to `apim-policies/openapi.json` (`handler openapi write`) for API
//! Management to import.

use axum::http::Method;
use axum::routing::get;
use axum::{Extension, Json};
use serde_json::Value;

use crate::api::openapi::{Access, ApiDocument, Operation};

/// The operations of this function (routes and their documentation).
pub fn operations() -> Vec<Operation> {
    vec![Operation::new(
        Method::GET,
        "/api/v1/openapi.json",
        "getOpenApi",
        "This document",
        get(document),
    )
    .tag("meta")
    .access(Access::Anonymous)
    .returns_nothing(200, "The OpenAPI 3.1 document")
    .errors(&[])]
}

async fn document(Extension(document): Extension<ApiDocument>) -> Json<Value> {
    Json(document.get().clone())
}
