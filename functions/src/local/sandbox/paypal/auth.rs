//! OAuth 2.0 client credentials as PayPal does them: `POST /v1/oauth2/token` with HTTP Basic
//! client id and secret, and the [`Authorized`] extractor every other PayPal route requires.

use std::time::Instant;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};

use super::context::Shared;
use super::errors::ApiError;
use super::ids;

const SCOPES: &str = "https://uri.paypal.com/services/payments/futurepayments https://uri.paypal.com/services/payments/realtimepayment https://uri.paypal.com/services/reporting/search/read https://uri.paypal.com/services/payments/payment/authcapture https://uri.paypal.com/services/payments/refund https://uri.paypal.com/services/vault/payment-tokens/read https://uri.paypal.com/services/applications/webhooks openid";

fn invalid_client() -> ApiError {
    ApiError::OAuth {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        description: "Client Authentication failed",
    }
}

/// The client id and secret of an HTTP Basic `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `grant_type` of a form body (`+` and `%20` as spaces are all a client credential grant
/// needs; anything else simply does not match).
fn grant_type(body: &[u8]) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "grant_type")
        .map(|(_, value)| value.replace('+', " "))
}

/// `POST /v1/oauth2/token`.
pub async fn token(
    State(sandbox): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let config = &sandbox.config;
    match basic_credentials(&headers) {
        Some((id, secret)) if id == config.client_id && secret == config.client_secret => {}
        _ => return Err(invalid_client()),
    }
    match grant_type(&body).as_deref() {
        Some("client_credentials") => {}
        None => {
            return Err(ApiError::OAuth {
                status: StatusCode::BAD_REQUEST,
                error: "unsupported_grant_type",
                description: "Grant Type is NULL",
            })
        }
        Some(_) => {
            return Err(ApiError::OAuth {
                status: StatusCode::BAD_REQUEST,
                error: "unsupported_grant_type",
                description: "unsupported grant_type",
            })
        }
    }
    let lifetime = sandbox.memory.token_lifetime();
    let token = ids::access_token();
    sandbox
        .memory
        .lock()
        .tokens
        .insert(token.clone(), Instant::now() + lifetime);
    Ok(Json(json!({
        "scope": SCOPES,
        "access_token": token,
        "token_type": "Bearer",
        "app_id": app_id(&sandbox),
        "expires_in": lifetime.as_secs(),
        "nonce": format!("{}{}", super::render::time(chrono::Utc::now()), ids::nonce()),
    })))
}

/// A stable app id for this run, derived from the client id.
fn app_id(sandbox: &Shared) -> String {
    let digits: String = sandbox
        .config
        .client_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .take(17)
        .collect();
    if digits.len() == 17 {
        format!("APP-{digits}")
    } else {
        ids::app_id()
    }
}

/// Proof that the request carried a valid, unexpired bearer token.
pub struct Authorized;

impl FromRequestParts<Shared> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, sandbox: &Shared) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::AuthenticationFailure)?;
        let expires = sandbox.memory.lock().tokens.get(token).copied();
        match expires {
            Some(at) if at > Instant::now() => Ok(Self),
            Some(_) => Err(ApiError::OAuth {
                status: StatusCode::UNAUTHORIZED,
                error: "invalid_token",
                description: "Access Token not found in cache",
            }),
            None => Err(ApiError::OAuth {
                status: StatusCode::UNAUTHORIZED,
                error: "invalid_token",
                description: "Token signature verification failed",
            }),
        }
    }
}
