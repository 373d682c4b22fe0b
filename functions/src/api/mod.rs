//! What every API function shares: the authenticated caller, JSON bodies with field-level
//! validation, paging parameters, ETags, and the mapping of every error to an RFC 9457
//! problem document. The endpoint handlers live in `crate::functions::*_api`.

pub mod app_caller;
pub mod caller;
pub mod error;
pub mod json;
pub mod openapi;
pub mod page_token;
pub mod paging;
pub mod precondition;
pub mod query;
pub mod reads;
pub mod security;
pub mod watch;

pub use app_caller::AppCaller;
pub use caller::Caller;
pub use error::ApiError;
pub use json::JsonBody;
pub use page_token::PageTokens;
pub use paging::{PageQuery, PageResponse};
pub use precondition::{if_match, required_if_match, NotModifiedLayer};
pub use query::QueryParams;

use axum::http::{header, HeaderValue};
use shared::domain::etag::ETag;

/// The `ETag` header for a stored document's version.
pub fn etag_header(etag: &str) -> (header::HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&ETag::new(etag).to_header())
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    (header::ETAG, value)
}
