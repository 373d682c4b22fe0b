//! PayPal's error bodies: `{"name","message","debug_id","details":[...],"links":[...]}` for the
//! REST APIs, `{"error","error_description"}` for OAuth, with PayPal's status codes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::ids;

/// Which API's documentation an error links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Orders,
    Payments,
    Reporting,
}

impl Api {
    fn doc(self) -> &'static str {
        match self {
            Self::Orders => "orders/v2",
            Self::Payments => "payments/v2",
            Self::Reporting => "transaction-search/v1",
        }
    }
}

/// One entry of `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub field: Option<String>,
    pub value: Option<String>,
    pub location: Option<&'static str>,
    pub issue: String,
    pub description: String,
}

impl Detail {
    /// An issue with no field.
    pub fn issue(issue: &str, description: &str) -> Self {
        Self {
            field: None,
            value: None,
            location: None,
            issue: issue.to_owned(),
            description: description.to_owned(),
        }
    }

    /// An issue about the body field at JSON pointer `field`.
    pub fn body(field: &str, value: Option<&str>, issue: &str, description: &str) -> Self {
        Self {
            field: Some(field.to_owned()),
            value: value.map(str::to_owned),
            location: Some("body"),
            ..Self::issue(issue, description)
        }
    }

    /// An issue about a path or query parameter.
    pub fn at(location: &'static str, field: &str, value: Option<&str>, issue: &str) -> Self {
        Self {
            field: Some(field.to_owned()),
            value: value.map(str::to_owned),
            location: Some(location),
            ..Self::issue(issue, issue)
        }
    }

    fn to_json(&self) -> Value {
        let mut object = Map::new();
        if let Some(field) = &self.field {
            object.insert("field".into(), json!(field));
        }
        if let Some(value) = &self.value {
            object.insert("value".into(), json!(value));
        }
        if let Some(location) = self.location {
            object.insert("location".into(), json!(location));
        }
        object.insert("issue".into(), json!(self.issue));
        object.insert("description".into(), json!(self.description));
        Value::Object(object)
    }
}

/// An error answer, as PayPal gives it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("400 INVALID_REQUEST")]
    Invalid { api: Api, details: Vec<Detail> },
    #[error("422 UNPROCESSABLE_ENTITY")]
    Unprocessable { api: Api, details: Vec<Detail> },
    #[error("404 RESOURCE_NOT_FOUND")]
    NotFound { api: Api, detail: Detail },
    #[error("503 SERVICE_UNAVAILABLE")]
    Unavailable,
    #[error("401 AUTHENTICATION_FAILURE")]
    AuthenticationFailure,
    #[error("OAuth error {error}")]
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: &'static str,
    },
}

impl ApiError {
    /// `422` with one issue.
    pub fn unprocessable(api: Api, detail: Detail) -> Self {
        Self::Unprocessable {
            api,
            details: vec![detail],
        }
    }

    /// `400` with one issue.
    pub fn invalid(api: Api, detail: Detail) -> Self {
        Self::Invalid {
            api,
            details: vec![detail],
        }
    }

    /// `404` for an unknown id in the path.
    pub fn not_found(api: Api, id: &str) -> Self {
        let detail = Detail {
            field: None,
            value: Some(id.to_owned()),
            location: Some("path"),
            issue: "INVALID_RESOURCE_ID".into(),
            description:
                "Specified resource ID does not exist. Please check the resource ID and try again."
                    .into(),
        };
        Self::NotFound { api, detail }
    }

    /// `400` for a body that is not JSON.
    pub fn malformed_json(api: Api) -> Self {
        Self::invalid(
            api,
            Detail::body(
                "/",
                None,
                "MALFORMED_REQUEST_JSON",
                "The request JSON is not well formed.",
            ),
        )
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::AuthenticationFailure => StatusCode::UNAUTHORIZED,
            Self::OAuth { status, .. } => *status,
        }
    }

    fn body(&self, debug_id: &str) -> Value {
        match self {
            Self::Invalid { api, details } => named(
                "INVALID_REQUEST",
                "Request is not well-formed, syntactically incorrect, or violates schema.",
                debug_id,
                *api,
                details,
            ),
            Self::Unprocessable { api, details } => named(
                "UNPROCESSABLE_ENTITY",
                "The requested action could not be performed, semantically incorrect, or failed business validation.",
                debug_id,
                *api,
                details,
            ),
            Self::NotFound { api, detail } => named(
                "RESOURCE_NOT_FOUND",
                "The specified resource does not exist.",
                debug_id,
                *api,
                std::slice::from_ref(detail),
            ),
            Self::Unavailable => json!({
                "name": "SERVICE_UNAVAILABLE",
                "message": "Service Unavailable.",
                "debug_id": debug_id,
                "details": [],
                "links": [{"href": "https://developer.paypal.com/api/rest/reference/orders/v2/errors/#service-unavailable", "rel": "information_link", "method": "GET"}],
            }),
            Self::AuthenticationFailure => json!({
                "name": "AUTHENTICATION_FAILURE",
                "message": "Authentication failed due to invalid authentication credentials or a missing Authorization header.",
                "links": [{"href": "https://developer.paypal.com/docs/api/overview/#error", "rel": "information_link"}],
            }),
            Self::OAuth {
                error, description, ..
            } => json!({"error": error, "error_description": description}),
        }
    }
}

/// The common shape of a REST API error.
fn named(name: &str, message: &str, debug_id: &str, api: Api, details: &[Detail]) -> Value {
    let links: Vec<Value> = details
        .first()
        .map(|detail| {
            json!({
                "href": format!("https://developer.paypal.com/docs/api/{}/#error-{}", api.doc(), detail.issue),
                "rel": "information_link",
                "method": "GET",
            })
        })
        .into_iter()
        .collect();
    json!({
        "name": name,
        "message": message,
        "debug_id": debug_id,
        "details": details.iter().map(Detail::to_json).collect::<Vec<_>>(),
        "links": links,
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let debug_id = ids::debug_id();
        let mut response = (self.status(), axum::Json(self.body(&debug_id))).into_response();
        if let Ok(value) = HeaderValue::from_str(&debug_id) {
            response.headers_mut().insert("paypal-debug-id", value);
        }
        if let Self::AuthenticationFailure | Self::OAuth { .. } = self {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
