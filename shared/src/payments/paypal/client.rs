//! [`PayPalClient`]: the configured outbound client and the request shapes every call shares.

use http::{HeaderName, HeaderValue};
use serde::de::DeserializeOwned;

use crate::outbound::{ClientCredentials, OutboundClient, OutboundConfig, OutboundRequest, Secret};

use super::error::{from_outbound, PayPalError};

/// PayPal's live API.
pub const LIVE: &str = "https://api-m.paypal.com";
/// PayPal's sandbox API.
pub const SANDBOX: &str = "https://api-m.sandbox.paypal.com";

const REQUEST_ID: HeaderName = HeaderName::from_static("paypal-request-id");
const PREFER: HeaderName = HeaderName::from_static("prefer");

/// The PayPal REST client; cheap to clone.
#[derive(Debug, Clone)]
pub struct PayPalClient {
    pub(crate) outbound: OutboundClient,
}

impl PayPalClient {
    /// Outbound settings for PayPal at `base_url` ([`LIVE`], [`SANDBOX`] or a local sandbox):
    /// service `paypal`, client credentials at `/v1/oauth2/token`, the other defaults.
    pub fn outbound_config(
        base_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
    ) -> OutboundConfig {
        let mut config = OutboundConfig::new("paypal", base_url);
        config.auth = Some(ClientCredentials {
            token_url: "/v1/oauth2/token".into(),
            client_id: client_id.into(),
            client_secret,
            scope: None,
        });
        config
    }

    /// A client on an outbound client built from [`PayPalClient::outbound_config`] (register
    /// the same outbound client with the readiness registry).
    pub fn new(outbound: OutboundClient) -> Self {
        Self { outbound }
    }

    /// The outbound client (for its health).
    pub fn outbound(&self) -> &OutboundClient {
        &self.outbound
    }

    /// A POST with the idempotency key and `Prefer: return=representation`.
    pub(crate) fn post(
        &self,
        path: String,
        idempotency_key: &str,
    ) -> Result<OutboundRequest, PayPalError> {
        let key = HeaderValue::from_str(idempotency_key)
            .map_err(|_| PayPalError::InvalidId(idempotency_key.to_owned()))?;
        Ok(OutboundRequest::post(path)
            .idempotency(REQUEST_ID, key)
            .header(PREFER, HeaderValue::from_static("return=representation")))
    }

    /// Sends and decodes a success body; a refusal becomes [`PayPalError::Api`].
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        request: OutboundRequest,
    ) -> Result<T, PayPalError> {
        let response = self.outbound.send(request).await.map_err(from_outbound)?;
        Ok(response.json()?)
    }
}

/// Checks that an id can go in a path as it is (PayPal ids are letters and digits).
pub(crate) fn path_id(id: &str) -> Result<&str, PayPalError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(PayPalError::InvalidId(id.to_owned()))
    }
}
