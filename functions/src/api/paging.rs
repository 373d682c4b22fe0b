//! Paging parameters (`limit`, `continuation`) and the page envelope of every listing:
//! `{"items": [...], "continuation": "..."}` (no `continuation` on the last page).

use serde::{Deserialize, Serialize};
use shared::domain::validation::{FieldError, Invalid};
use shared::store::{Page, PageRequest, MAX_PAGE_SIZE};

use super::ApiError;

/// Default page size when `limit` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// `?limit=&continuation=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub continuation: Option<String>,
}

impl PageQuery {
    /// The page request, or a 400 naming `limit` when it is not 1..=100.
    pub fn to_request(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.limit.as_deref() {
            None => DEFAULT_PAGE_SIZE,
            Some(text) => match text.parse::<u32>() {
                Ok(limit) if (1..=MAX_PAGE_SIZE).contains(&limit) => limit,
                _ => {
                    return Err(ApiError::Invalid(Invalid(vec![FieldError {
                        field: "limit".into(),
                        message: format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                    }])))
                }
            },
        };
        if self.continuation.as_deref() == Some("") {
            return Err(ApiError::Invalid(Invalid(vec![FieldError {
                field: "continuation".into(),
                message: "is empty; leave it out for the first page".into(),
            }])));
        }
        Ok(PageRequest::new(limit, self.continuation.clone()))
    }
}

/// A page as the API returns it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "PageOf{T}")]
pub struct PageResponse<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<String>,
}

impl<T> From<Page<T>> for PageResponse<T> {
    fn from(page: Page<T>) -> Self {
        Self {
            items: page.items,
            continuation: page.continuation,
        }
    }
}
