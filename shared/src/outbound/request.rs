//! One outbound call as the caller describes it ([`OutboundRequest`]) and the answer it gets
//! ([`OutboundResponse`]).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::de::DeserializeOwned;

use super::OutboundError;

/// A request to the service: a path joined to the base URL, query, headers, body.
///
/// Retries: a call is retried after it may have reached the service (timeout, connection lost,
/// 429/502/503/504) only when repeating it is harmless: a `GET`/`HEAD`/`OPTIONS`, a call with an
/// idempotency key (sent unchanged on every attempt), or one marked with
/// [`OutboundRequest::retry_safe`]. Any call is retried when it certainly did not leave
/// (connection refused).
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<(Bytes, HeaderValue)>,
    pub(crate) idempotency: Option<(HeaderName, HeaderValue)>,
    pub(crate) retry_safe: Option<bool>,
}

impl OutboundRequest {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            idempotency: None,
            retry_safe: None,
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    /// Adds a query parameter (percent-encoded when sent).
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// A JSON body, already serialised.
    pub fn json_bytes(self, body: impl Into<Bytes>) -> Self {
        self.body_bytes(body, HeaderValue::from_static("application/json"))
    }

    /// A body of any media type, already serialised (e.g. a SOAP envelope, `text/xml`).
    pub fn body_bytes(mut self, body: impl Into<Bytes>, content_type: HeaderValue) -> Self {
        self.body = Some((body.into(), content_type));
        self
    }

    /// A JSON body from a value.
    pub fn json<T: serde::Serialize + ?Sized>(self, body: &T) -> Result<Self, serde_json::Error> {
        Ok(self.json_bytes(serde_json::to_vec(body)?))
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        let mut encoder = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            encoder.append_pair(name.as_ref(), value.as_ref());
        }
        let content_type = HeaderValue::from_static("application/x-www-form-urlencoded");
        self.body = Some((Bytes::from(encoder.finish()), content_type));
        self
    }

    /// The idempotency header (e.g. PayPal's `PayPal-Request-Id`), sent unchanged on every
    /// attempt; makes the call safe to retry.
    pub fn idempotency(mut self, header: HeaderName, key: HeaderValue) -> Self {
        self.idempotency = Some((header, key));
        self
    }

    /// Says whether repeating the call is harmless, overriding the rule of the method and key.
    pub fn retry_safe(mut self, safe: bool) -> Self {
        self.retry_safe = Some(safe);
        self
    }

    /// Whether the call may be repeated after it may have reached the service.
    pub fn is_retry_safe(&self) -> bool {
        self.retry_safe.unwrap_or_else(|| {
            self.idempotency.is_some()
                || matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
        })
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A success answer from the service (the final one, after retries). `Debug` shows the status
/// and the body's size, not the body (it may hold personal data).
#[derive(Clone)]
pub struct OutboundResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub(crate) service: std::sync::Arc<str>,
}

impl std::fmt::Debug for OutboundResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundResponse")
            .field("service", &self.service)
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl OutboundResponse {
    /// Decodes the body as JSON; the error names the service, not the body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, OutboundError> {
        serde_json::from_slice(&self.body).map_err(|source| OutboundError::Decode {
            service: self.service.to_string(),
            source,
        })
    }
}
