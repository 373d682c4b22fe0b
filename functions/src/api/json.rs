//! [`JsonBody`]: a JSON request body, parsed strictly once the caller is authorised (unknown
//! fields refused, objects only), with a size limit (413), a content-type check (415), and
//! errors that name the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use shared::domain::validation::{FieldError, Invalid};

use super::ApiError;
use crate::startup::AppState;

/// A JSON request body, read but not parsed yet. A handler authorises the caller first and
/// then calls [`JsonBody::parse`], so a caller who may not do something gets 403 whatever the
/// body (its content type, size or shape) was.
pub struct JsonBody {
    bytes: Result<Bytes, ApiError>,
    envelope: bool,
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let envelope = request
            .extensions()
            .get::<shared::protocol::FromEnvelope>()
            .is_some();
        Ok(Self {
            bytes: read_json_bytes(request, state).await,
            envelope,
        })
    }
}

impl JsonBody {
    /// The raw bytes, when the body was sent as JSON within the size limit: for checks that
    /// must see the body before it is parsed (card numbers), never for logging.
    pub fn raw(&self) -> Option<&[u8]> {
        self.bytes.as_ref().ok().map(|bytes| bytes.as_ref())
    }

    /// The body parsed as `T`: 415 unless it was sent as JSON, 413 when too large, 400 when it is
    /// not a JSON object of that shape or not UTF-8.
    pub fn parse<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        let bytes = self.bytes?;
        if envelope_replaced_invalid_utf8(self.envelope, &bytes) {
            return Err(ApiError::BadRequest(
                "the body is not valid UTF-8; send JSON encoded as UTF-8".into(),
            ));
        }
        parse(&bytes)
    }
}

/// The body's bytes, if it was sent as JSON and is within the size limit.
async fn read_json_bytes(request: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as application/json".into(),
        ));
    }
    let limit = state.settings.http_body_limit_bytes;
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|_| ApiError::TooLarge { limit })?;
    if bytes.len() > limit {
        return Err(ApiError::TooLarge { limit });
    }
    Ok(bytes)
}

/// The Functions host decodes an enveloped request's body as UTF-8 text before the handler
/// sees it, replacing invalid bytes with U+FFFD. A replacement character in such a body is
/// taken for that (a client that means U+FFFD can send it escaped, `\ufffd`), so an enveloped
/// write refuses invalid UTF-8 as a forwarded one does, instead of storing the damage.
fn envelope_replaced_invalid_utf8(envelope: bool, body: &[u8]) -> bool {
    const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();
    envelope
        && body
            .windows(REPLACEMENT.len())
            .any(|bytes| bytes == REPLACEMENT)
}

/// Parses `bytes` as a JSON object, naming the field that failed (`items[1].quantity: invalid
/// type ...`). Anything but an object is refused first: serde would otherwise fill a struct's
/// fields by position from an array.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first.is_some_and(|byte| *byte != b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object ({...}), not an array or a single value".into(),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = parsed.map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!("the body is not valid JSON: {inner}"));
        }
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::Invalid(Invalid(vec![FieldError {
            field,
            message: strip_position(&inner.to_string()),
        }]))
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::BadRequest(format!("the body has trailing data: {error}")))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 42"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}
