//! [`ErpClient`]: the ERP's three operations, each one SOAP call through the outbound client
//! (breaker, concurrency cap, timeout, retries for transient failures).
//!
//! Every call is retry-safe: the two reads change nothing, and `PostGoodsMovement` is
//! idempotent on its document reference (the ERP answers the first document again, marked
//! `duplicate`), so a retry after a lost answer posts nothing twice.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use http::{HeaderName, HeaderValue};

use super::envelope;
use super::error::ErpError;
use super::fault::SoapFault;
use super::messages::{
    GetProducts, GetStockChanges, GoodsMovement, GoodsMovementPosted, Payload, ProductPage,
    StockChanges,
};
use super::protocol::{SoapVersion, NAMESPACE};
use super::security::UsernameToken;
use crate::outbound::{OutboundClient, OutboundConfig, OutboundError, OutboundRequest};

/// How the client proves who it is; both send the same user name and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErpAuth {
    /// HTTP Basic authentication.
    Basic(UsernameToken),
    /// A WS-Security UsernameToken (PasswordText) in the SOAP header.
    WsSecurity(UsernameToken),
}

/// Where the ERP is and how to speak to it.
#[derive(Debug, Clone)]
pub struct ErpConfig {
    /// The service's endpoint URL (the WSDL's `soap:address`).
    pub endpoint: String,
    pub version: SoapVersion,
    pub auth: ErpAuth,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// How long the breaker stays open once it opened (`None`: the outbound client's 30 s).
    pub breaker_open_for: Option<Duration>,
}

/// The ERP's client; cheap to clone.
#[derive(Debug, Clone)]
pub struct ErpClient {
    http: OutboundClient,
    path: String,
    version: SoapVersion,
    auth: ErpAuth,
}

impl ErpClient {
    /// A client with its own outbound client named `erp` (its breaker shows in readiness).
    pub fn new(config: ErpConfig) -> Result<Self, ErpError> {
        let url = reqwest::Url::parse(&config.endpoint)
            .map_err(|e| ErpError::Config(format!("endpoint {:?}: {e}", config.endpoint)))?;
        let origin = url.origin().ascii_serialization();
        let mut outbound = OutboundConfig::new("erp", origin);
        outbound.total_timeout = config.timeout;
        if let Some(open_for) = config.breaker_open_for {
            outbound.breaker.open_for = open_for;
        }
        let http = OutboundClient::new(outbound).map_err(|e| ErpError::Config(e.to_string()))?;
        Ok(Self {
            http,
            path: url.path().to_owned(),
            version: config.version,
            auth: config.auth,
        })
    }

    /// The outbound client, to register for readiness.
    pub fn outbound(&self) -> &OutboundClient {
        &self.http
    }

    /// `GetStockChanges`: one page of stock levels changed after `since_token`.
    pub async fn get_stock_changes(
        &self,
        since_token: Option<&str>,
        page_size: u32,
    ) -> Result<StockChanges, ErpError> {
        const OPERATION: &str = "GetStockChanges";
        let request = Payload::GetStockChanges(GetStockChanges {
            since_token: since_token.map(str::to_owned),
            page_size,
        });
        match self.call(OPERATION, &request).await? {
            Payload::GetStockChangesResponse(page) => Ok(page),
            other => Err(unexpected(OPERATION, &other)),
        }
    }

    /// `GetProducts`: page `page` (from 1) of the products changed since `changed_since`.
    pub async fn get_products(
        &self,
        changed_since: Option<DateTime<Utc>>,
        page: u32,
        page_size: Option<u32>,
    ) -> Result<ProductPage, ErpError> {
        const OPERATION: &str = "GetProducts";
        let request = Payload::GetProducts(GetProducts {
            changed_since,
            page,
            page_size,
        });
        match self.call(OPERATION, &request).await? {
            Payload::GetProductsResponse(page) => Ok(page),
            other => Err(unexpected(OPERATION, &other)),
        }
    }

    /// `PostGoodsMovement`: posts a goods issue or return; the same document reference again
    /// answers the first document with `duplicate: true`.
    pub async fn post_goods_movement(
        &self,
        movement: &GoodsMovement,
    ) -> Result<GoodsMovementPosted, ErpError> {
        const OPERATION: &str = "PostGoodsMovement";
        let request = Payload::PostGoodsMovement(movement.clone());
        match self.call(OPERATION, &request).await? {
            Payload::PostGoodsMovementResponse(posted) => Ok(posted),
            other => Err(unexpected(OPERATION, &other)),
        }
    }

    /// Sends one operation and reads its answer; a fault (in a 2xx or an error answer) is
    /// [`ErpError::Fault`].
    async fn call(&self, operation: &'static str, payload: &Payload) -> Result<Payload, ErpError> {
        let request = self.request(operation, payload)?;
        match self.http.send(request).await {
            Ok(response) => self.read(operation, &response.body),
            Err(source) => Err(self.fault_in(operation, source)),
        }
    }

    fn request(
        &self,
        operation: &'static str,
        payload: &Payload,
    ) -> Result<OutboundRequest, ErpError> {
        let invalid = |reason: String| ErpError::Outbound {
            operation,
            source: OutboundError::InvalidRequest {
                service: "erp".into(),
                reason,
            },
        };
        let action = format!("{NAMESPACE}/{operation}");
        let token = match &self.auth {
            ErpAuth::WsSecurity(token) => Some(token),
            ErpAuth::Basic(_) => None,
        };
        let xml = envelope::encode(self.version, token, payload)
            .map_err(|source| ErpError::Envelope { operation, source })?;
        let content_type = HeaderValue::from_str(&self.version.content_type(&action))
            .map_err(|_| invalid("content type".into()))?;
        let mut request = OutboundRequest::post(self.path.clone())
            .body_bytes(xml, content_type)
            .retry_safe(true);
        if self.version == SoapVersion::V11 {
            let value = HeaderValue::from_str(&format!("\"{action}\""))
                .map_err(|_| invalid("SOAPAction".into()))?;
            request = request.header(HeaderName::from_static("soapaction"), value);
        }
        if let ErpAuth::Basic(token) = &self.auth {
            let pair = format!("{}:{}", token.username, token.password.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
                .map_err(|_| invalid("user name or password not valid in a header".into()))?;
            value.set_sensitive(true);
            request = request.header(http::header::AUTHORIZATION, value);
        }
        Ok(request)
    }

    /// The answer's payload, or its fault.
    fn read(&self, operation: &'static str, body: &[u8]) -> Result<Payload, ErpError> {
        let text = std::str::from_utf8(body).map_err(|e| ErpError::Envelope {
            operation,
            source: envelope::EnvelopeError::Xml(e.to_string()),
        })?;
        let incoming =
            envelope::decode(text).map_err(|source| ErpError::Envelope { operation, source })?;
        if let Payload::Fault(fault) = incoming.payload {
            return Err(fault_error(operation, fault.into()));
        }
        if incoming.version != self.version {
            return Err(ErpError::VersionMismatch {
                operation,
                sent: self.version,
                answered: incoming.version,
            });
        }
        Ok(incoming.payload)
    }

    /// A non-success answer whose body is a SOAP fault is that fault; anything else stays the
    /// outbound error.
    fn fault_in(&self, operation: &'static str, source: OutboundError) -> ErpError {
        let fault = match &source {
            OutboundError::Status { body, .. } => std::str::from_utf8(body.bytes())
                .ok()
                .and_then(|text| envelope::decode(text).ok())
                .and_then(|incoming| match incoming.payload {
                    Payload::Fault(fault) => Some(SoapFault::from(fault)),
                    _ => None,
                }),
            _ => None,
        };
        match fault {
            Some(fault) => fault_error(operation, fault),
            None => ErpError::Outbound { operation, source },
        }
    }
}

fn fault_error(operation: &'static str, fault: SoapFault) -> ErpError {
    tracing::warn!(operation, code = %fault.code, erp_code = fault.erp_code.as_deref().unwrap_or(""), "ERP answered with a fault");
    ErpError::Fault { operation, fault }
}

fn unexpected(operation: &'static str, payload: &Payload) -> ErpError {
    ErpError::Unexpected {
        operation,
        found: payload.element(),
    }
}
