//! PayPal webhook verification, done here as PayPal's SDKs do it (no call to PayPal's
//! verify-webhook-signature API): the `PAYPAL-TRANSMISSION-SIG` header is an RSA PKCS#1 v1.5
//! SHA-256 signature of `{transmission id}|{transmission time}|{webhook id}|{CRC-32 of the raw
//! body}`, made with the key of the certificate at `PAYPAL-CERT-URL`.
//!
//! The certificate is only fetched from an https URL on an allowed PayPal host (or an origin
//! added explicitly for a local sandbox), and cached by URL. Several webhook ids may be
//! configured (rotation): the signature must match one. A transmission time too far from now,
//! either way, is refused (replays).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use sha2::Sha256;
use x509_cert::der::Encode;

use super::WebhookEvent;

/// PayPal's hosts of webhook certificates.
pub const PAYPAL_CERT_HOSTS: &[&str] = &[
    "api.paypal.com",
    "api-m.paypal.com",
    "api.sandbox.paypal.com",
    "api-m.sandbox.paypal.com",
];

/// The largest certificate response read.
const MAX_CERT_BYTES: usize = 64 * 1024;
/// Certificates cached at most (the cache is cleared when full).
const MAX_CACHED_CERTS: usize = 16;

/// How webhooks are verified.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The webhook ids PayPal gave (several during a rotation).
    pub webhook_ids: Vec<String>,
    /// Hosts the certificate may come from, over https on the default port.
    pub allowed_cert_hosts: Vec<String>,
    /// Whole origins also allowed (`http://127.0.0.1:8081` for a local sandbox).
    pub extra_cert_origins: Vec<String>,
    /// Largest difference between the transmission time and now, either way.
    pub tolerance: Duration,
    pub cert_fetch_timeout: Duration,
}

impl WebhookConfig {
    /// PayPal's certificate hosts, 5 min tolerance, 5 s to fetch a certificate.
    pub fn new(webhook_ids: Vec<String>) -> Self {
        Self {
            webhook_ids,
            allowed_cert_hosts: PAYPAL_CERT_HOSTS.iter().map(|h| (*h).to_owned()).collect(),
            extra_cert_origins: Vec::new(),
            tolerance: Duration::from_secs(300),
            cert_fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a webhook was refused. Only [`WebhookError::CertFetch`] is worth a retry (answer 5xx so
/// PayPal redelivers).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook header {0} missing or not text")]
    MissingHeader(&'static str),
    #[error("webhook transmission time {0:?} is not an RFC 3339 time")]
    BadTime(String),
    #[error("webhook transmission time is {skew_seconds} s away from now, beyond the tolerance")]
    StaleTime { skew_seconds: i64 },
    #[error("webhook signature algorithm {0:?} is not SHA256withRSA")]
    UnsupportedAlgorithm(String),
    #[error("webhook certificate URL not trusted (origin {0})")]
    UntrustedCertUrl(String),
    #[error("webhook signature does not verify with any configured webhook id")]
    BadSignature,
    #[error("webhook certificate could not be fetched: {0}")]
    CertFetch(String),
    #[error("webhook certificate unusable: {0}")]
    BadCertificate(String),
    #[error("webhook body malformed: {0}")]
    MalformedBody(String),
}

impl WebhookError {
    /// True when a later delivery may verify (the certificate could not be fetched).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::CertFetch(_))
    }
}

type Key = Arc<VerifyingKey<Sha256>>;

/// Verifies PayPal webhooks; cheap to share (`Arc` it), certificates cached by URL.
#[derive(Debug)]
pub struct WebhookVerifier {
    http: reqwest::Client,
    config: WebhookConfig,
    certs: RwLock<HashMap<String, Key>>,
}

struct Transmission<'a> {
    id: &'a str,
    time: &'a str,
    signature: &'a str,
    cert_url: &'a str,
}

impl WebhookVerifier {
    pub fn new(http: reqwest::Client, config: WebhookConfig) -> Self {
        Self {
            http,
            config,
            certs: RwLock::new(HashMap::new()),
        }
    }

    /// Verifies the headers and raw body of a delivery, then parses the event.
    pub async fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, WebhookError> {
        let sent = transmission(headers)?;
        self.check_time(sent.time)?;
        let url = self.trusted(sent.cert_url)?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(sent.signature.trim())
            .ok()
            .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
            .ok_or(WebhookError::BadSignature)?;
        let key = self.key(url).await?;
        let crc = crc32fast::hash(body);
        let verified = self.config.webhook_ids.iter().any(|webhook_id| {
            let signed = format!("{}|{}|{webhook_id}|{crc}", sent.id, sent.time);
            key.verify(signed.as_bytes(), &signature).is_ok()
        });
        if !verified {
            return Err(WebhookError::BadSignature);
        }
        WebhookEvent::parse(body)
    }

    fn check_time(&self, time: &str) -> Result<(), WebhookError> {
        let sent = DateTime::parse_from_rfc3339(time)
            .map_err(|_| WebhookError::BadTime(time.chars().take(40).collect()))?
            .with_timezone(&Utc);
        let skew = (Utc::now() - sent).num_seconds();
        let tolerance = i64::try_from(self.config.tolerance.as_secs()).unwrap_or(i64::MAX);
        if skew.abs() > tolerance {
            return Err(WebhookError::StaleTime { skew_seconds: skew });
        }
        Ok(())
    }

    /// The certificate URL, if it is on an allowed host over https or an allowed origin.
    fn trusted(&self, cert_url: &str) -> Result<reqwest::Url, WebhookError> {
        let url = reqwest::Url::parse(cert_url)
            .map_err(|_| WebhookError::UntrustedCertUrl("not a URL".into()))?;
        let origin = url.origin().ascii_serialization();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookError::UntrustedCertUrl(origin));
        }
        let host = url.host_str().unwrap_or_default();
        let paypal = url.scheme() == "https"
            && url.port().is_none()
            && self
                .config
                .allowed_cert_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host));
        let extra = self
            .config
            .extra_cert_origins
            .iter()
            .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(&origin));
        if paypal || extra {
            Ok(url)
        } else {
            Err(WebhookError::UntrustedCertUrl(origin))
        }
    }

    async fn key(&self, url: reqwest::Url) -> Result<Key, WebhookError> {
        let cached = self
            .certs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(url.as_str())
            .cloned();
        if let Some(key) = cached {
            return Ok(key);
        }
        let pem = self.fetch(url.clone()).await?;
        let key = Arc::new(public_key(&pem)?);
        let mut certs = self.certs.write().unwrap_or_else(|p| p.into_inner());
        if certs.len() >= MAX_CACHED_CERTS {
            certs.clear();
        }
        certs.insert(url.to_string(), key.clone());
        Ok(key)
    }

    async fn fetch(&self, url: reqwest::Url) -> Result<Vec<u8>, WebhookError> {
        let failed = |e: reqwest::Error| WebhookError::CertFetch(crate::outbound::error_reason(&e));
        let response = self
            .http
            .get(url)
            .timeout(self.config.cert_fetch_timeout)
            .send()
            .await
            .map_err(failed)?;
        if !response.status().is_success() {
            return Err(WebhookError::CertFetch(format!(
                "HTTP {}",
                response.status()
            )));
        }
        let body = response.bytes().await.map_err(failed)?;
        if body.len() > MAX_CERT_BYTES {
            return Err(WebhookError::BadCertificate(format!(
                "{} bytes",
                body.len()
            )));
        }
        Ok(body.to_vec())
    }
}

fn transmission(headers: &HeaderMap) -> Result<Transmission<'_>, WebhookError> {
    let get = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or(WebhookError::MissingHeader(name))
    };
    let algorithm = get("paypal-auth-algo")?;
    if algorithm != "SHA256withRSA" {
        return Err(WebhookError::UnsupportedAlgorithm(
            algorithm.chars().take(40).collect(),
        ));
    }
    Ok(Transmission {
        id: get("paypal-transmission-id")?,
        time: get("paypal-transmission-time")?,
        signature: get("paypal-transmission-sig")?,
        cert_url: get("paypal-cert-url")?,
    })
}

/// The RSA key of the first certificate of a PEM file, if the certificate is valid now.
fn public_key(pem: &[u8]) -> Result<VerifyingKey<Sha256>, WebhookError> {
    let bad = |e: &dyn std::fmt::Display| WebhookError::BadCertificate(e.to_string());
    let chain = x509_cert::Certificate::load_pem_chain(pem).map_err(|e| bad(&e))?;
    let cert = chain
        .first()
        .ok_or_else(|| bad(&"no certificate in the PEM"))?;
    let validity = &cert.tbs_certificate.validity;
    let now = SystemTime::now();
    if now < validity.not_before.to_system_time() || now > validity.not_after.to_system_time() {
        return Err(bad(&"certificate not valid now"));
    }
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| bad(&e))?;
    let key = rsa::RsaPublicKey::from_public_key_der(&spki).map_err(|e| bad(&e))?;
    Ok(VerifyingKey::new(key))
}
