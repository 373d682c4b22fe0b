//! RFC 9457 problem documents (`application/problem+json`): every HTTP error the API returns.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// A problem document. `title` is fixed per kind of problem; `detail` says what happened here.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Extension members (`errors`, `checks`, ...), flattened into the document.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

impl Problem {
    /// A problem of `status`. With the status's own reason phrase as title the type is
    /// `about:blank` (RFC 9457 §4.2.1); a more specific title gets its own type URI.
    pub fn new(status: StatusCode, title: impl Into<String>) -> Self {
        let title = title.into();
        let kind = if status.canonical_reason() == Some(title.as_str()) {
            "about:blank".to_owned()
        } else {
            format!(
                "urn:problem-type:{}",
                title.to_ascii_lowercase().replace(' ', "-")
            )
        };
        Self {
            kind,
            title,
            status: status.as_u16(),
            detail: None,
            extensions: Map::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn extension(mut self, key: &str, value: Value) -> Self {
        self.extensions.insert(key.to_owned(), value);
        self
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found").detail(detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}
