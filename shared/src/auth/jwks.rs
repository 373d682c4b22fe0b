//! The signing keys of one remote issuer: fetched from its JWKS, cached, refreshed.
//!
//! Keys are fetched on first use (or by [`RemoteKeys::prefetch`]), from the configured JWKS URI
//! or the one named by the issuer's OpenID configuration. A token whose `kid` is not cached
//! triggers a refetch, so key rotation at the issuer needs no restart; fetches of one issuer
//! are rate-limited (at most one per refetch interval, one per few seconds after a failure)
//! and serialised, so concurrent requests share one fetch and a flood of made-up `kid`s
//! cannot hammer the issuer. Keys older than the maximum age are refreshed on the next request,
//! so a key the issuer withdraws stops being accepted; if that refresh fails the cached keys
//! stay in use.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::DecodingKey;
use reqwest::Url;
use serde::Deserialize;

use super::config::fetchable_url;
use super::error::AuthError;

/// Largest discovery or JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// Smallest RSA modulus accepted from a JWKS, in bytes (2048 bits).
const MIN_MODULUS_BYTES: usize = 256;
/// After a failed fetch, the next may come this soon (or after the refetch interval if shorter).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// How often and how long keys are fetched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchPolicy {
    pub refetch_interval: Duration,
    pub timeout: Duration,
    pub key_max_age: Duration,
}

impl FetchPolicy {
    fn retry_after_failure(&self) -> Duration {
        self.refetch_interval.min(RETRY_AFTER_FAILURE)
    }
}

/// Where one issuer's keys are fetched from.
#[derive(Debug, Clone)]
pub(crate) struct KeyEndpoint {
    pub issuer: String,
    pub discovery: Url,
    pub jwks: Option<Url>,
}

/// The cached keys of one issuer and the machinery to refresh them.
#[derive(Debug)]
pub(crate) struct RemoteKeys {
    endpoint: KeyEndpoint,
    http: reqwest::Client,
    policy: FetchPolicy,
    cache: RwLock<KeyCache>,
    gate: tokio::sync::Mutex<FetchGate>,
}

#[derive(Debug, Default)]
struct KeyCache {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
    /// Counts successful fetches: what was verified with an older generation may be stale.
    generation: u64,
}

/// A verification key and the key-set generation it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct VerifyingKey {
    pub key: Arc<DecodingKey>,
    pub generation: u64,
}

/// Fetch bookkeeping; holding its lock is the right to fetch.
#[derive(Debug, Default)]
struct FetchGate {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    discovered_jwks: Option<Url>,
}

/// What the cache holds for a `kid`.
enum Lookup {
    Fresh(VerifyingKey),
    Stale(VerifyingKey),
    Missing,
}

impl RemoteKeys {
    pub(crate) fn new(endpoint: KeyEndpoint, http: reqwest::Client, policy: FetchPolicy) -> Self {
        Self {
            endpoint,
            http,
            policy,
            cache: RwLock::new(KeyCache::default()),
            gate: tokio::sync::Mutex::new(FetchGate::default()),
        }
    }

    /// The key with this `kid`, fetching the key set first if it is unknown or too old and the
    /// rate limit allows.
    pub(crate) async fn key(&self, kid: &str) -> Result<VerifyingKey, AuthError> {
        if let Lookup::Fresh(key) = self.lookup(kid) {
            return Ok(key);
        }
        let mut gate = self.gate.lock().await;
        // Another request may have fetched while this one waited for the gate.
        let found = self.lookup(kid);
        if let Lookup::Fresh(key) = found {
            return Ok(key);
        }
        if !self.may_fetch(&gate) {
            return self.answer_without_fetch(found, &gate);
        }
        match self.refresh(&mut gate).await {
            Ok(()) => match self.lookup(kid) {
                Lookup::Fresh(key) | Lookup::Stale(key) => Ok(key),
                Lookup::Missing => Err(AuthError::UnknownKey),
            },
            Err(error) => match found {
                Lookup::Fresh(key) | Lookup::Stale(key) => Ok(key),
                Lookup::Missing => Err(error),
            },
        }
    }

    /// Fetches the keys now unless they are fresh or the rate limit forbids it; reports the
    /// last failure when there are no keys to use.
    pub(crate) async fn prefetch(&self) -> Result<(), AuthError> {
        let mut gate = self.gate.lock().await;
        if self.cache_is_fresh() {
            return Ok(());
        }
        if self.may_fetch(&gate) {
            return self.refresh(&mut gate).await;
        }
        match &gate.last_error {
            Some(reason) if !self.has_keys() => Err(self.unavailable(reason.clone())),
            _ => Ok(()),
        }
    }

    /// The current key-set generation, if the keys are not older than the maximum age.
    pub(crate) fn fresh_generation(&self) -> Option<u64> {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        self.is_fresh(&cache).then_some(cache.generation)
    }

    fn lookup(&self, kid: &str) -> Lookup {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        let Some(key) = cache.keys.get(kid) else {
            return Lookup::Missing;
        };
        let found = VerifyingKey {
            key: Arc::clone(key),
            generation: cache.generation,
        };
        if self.is_fresh(&cache) {
            Lookup::Fresh(found)
        } else {
            Lookup::Stale(found)
        }
    }

    fn is_fresh(&self, cache: &KeyCache) -> bool {
        cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.policy.key_max_age)
    }

    fn cache_is_fresh(&self) -> bool {
        self.fresh_generation().is_some()
    }

    fn has_keys(&self) -> bool {
        !self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .is_empty()
    }

    fn may_fetch(&self, gate: &FetchGate) -> bool {
        let wait = if gate.last_error.is_some() {
            self.policy.retry_after_failure()
        } else {
            self.policy.refetch_interval
        };
        gate.last_attempt.is_none_or(|at| at.elapsed() >= wait)
    }

    /// Within the rate limit: a stale key still serves; otherwise the last failure (server-side)
    /// or an unknown key (the caller's problem).
    fn answer_without_fetch(
        &self,
        found: Lookup,
        gate: &FetchGate,
    ) -> Result<VerifyingKey, AuthError> {
        match (found, &gate.last_error) {
            (Lookup::Fresh(key) | Lookup::Stale(key), _) => Ok(key),
            (Lookup::Missing, Some(reason)) => Err(self.unavailable(reason.clone())),
            (Lookup::Missing, None) => Err(AuthError::UnknownKey),
        }
    }

    /// Fetches the key set and replaces the cache with it; records the attempt either way.
    async fn refresh(&self, gate: &mut FetchGate) -> Result<(), AuthError> {
        gate.last_attempt = Some(Instant::now());
        let outcome = match tokio::time::timeout(self.policy.timeout, self.fetch(gate)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {:?}", self.policy.timeout)),
        };
        match outcome {
            Ok(keys) => {
                tracing::info!(issuer = %self.endpoint.issuer, keys = keys.len(), "fetched signing keys");
                gate.last_error = None;
                let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
                *cache = KeyCache {
                    keys,
                    fetched_at: Some(Instant::now()),
                    generation: cache.generation + 1,
                };
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(issuer = %self.endpoint.issuer, %reason, "cannot fetch signing keys");
                gate.last_error = Some(reason.clone());
                gate.discovered_jwks = None;
                Err(self.unavailable(reason))
            }
        }
    }

    async fn fetch(
        &self,
        gate: &mut FetchGate,
    ) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let jwks_uri = match (&self.endpoint.jwks, &gate.discovered_jwks) {
            (Some(uri), _) | (None, Some(uri)) => uri.clone(),
            (None, None) => {
                let uri = self.discover().await?;
                gate.discovered_jwks = Some(uri.clone());
                uri
            }
        };
        let body = self.get(&jwks_uri).await?;
        parse_jwks(&body).map_err(|problem| format!("{jwks_uri}: {problem}"))
    }

    /// The `jwks_uri` of the issuer's OpenID configuration.
    async fn discover(&self) -> Result<Url, String> {
        #[derive(Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        let url = &self.endpoint.discovery;
        let body = self.get(url).await?;
        let discovery: Discovery = serde_json::from_slice(&body)
            .map_err(|e| format!("{url}: not an OpenID configuration with a jwks_uri ({e})"))?;
        fetchable_url(&discovery.jwks_uri).map_err(|problem| format!("{url}: jwks_uri {problem}"))
    }

    /// GETs a JSON document, refusing non-2xx answers and oversized bodies.
    async fn get(&self, url: &Url) -> Result<Vec<u8>, String> {
        let mut response = self
            .http
            .get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", describe_reqwest_error(&e)))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{url}: {}", describe_reqwest_error(&e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!(
                    "{url}: document larger than {MAX_DOCUMENT_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn unavailable(&self, reason: String) -> AuthError {
        AuthError::KeysUnavailable {
            issuer: self.endpoint.issuer.clone(),
            reason,
        }
    }
}

/// A reqwest error with its causes (the top level alone often says just "error sending request").
fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One key of a JWKS, as far as we read it. Unknown members are ignored.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// The RS256 signing keys of a JWKS document, by `kid`. Other keys are skipped; a document
/// with no usable key at all is an error (the issuer or its configuration is broken).
pub(crate) fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet = serde_json::from_slice(body).map_err(|e| format!("not a JWK set ({e})"))?;
    let keys: HashMap<_, _> = set
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<RawJwk>(value).ok())
        .filter_map(|jwk| usable_key(&jwk))
        .collect();
    if keys.is_empty() {
        return Err("the key set holds no RSA signing key with a kid".into());
    }
    Ok(keys)
}

/// The `kid` and verification key of an RSA signature key of at least 2048 bits.
fn usable_key(jwk: &RawJwk) -> Option<(String, Arc<DecodingKey>)> {
    let signing = jwk.key_use.as_deref().is_none_or(|u| u == "sig");
    let rs256 = jwk.alg.as_deref().is_none_or(|a| a == "RS256");
    if jwk.kty.as_deref() != Some("RSA") || !signing || !rs256 {
        return None;
    }
    let kid = jwk.kid.clone().filter(|kid| !kid.is_empty())?;
    let n = URL_SAFE_NO_PAD.decode(jwk.n.as_deref()?).ok()?;
    let e = URL_SAFE_NO_PAD.decode(jwk.e.as_deref()?).ok()?;
    let modulus = trim_leading_zeros(&n);
    if modulus.len() < MIN_MODULUS_BYTES || e.is_empty() {
        return None;
    }
    Some((
        kid,
        Arc::new(DecodingKey::from_rsa_raw_components(modulus, &e)),
    ))
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modulus(bytes: usize) -> String {
        URL_SAFE_NO_PAD.encode(vec![0xC5; bytes])
    }

    #[test]
    fn parse_jwks_keeps_only_rsa_signature_keys() {
        let body = serde_json::json!({"keys": [
            // Entra ID style: extra members, no alg.
            {"kty": "RSA", "use": "sig", "kid": "entra", "x5t": "x", "n": modulus(256), "e": "AQAB",
             "x5c": ["MIIC"], "issuer": "https://login.microsoftonline.com/t/v2.0"},
            {"kty": "RSA", "alg": "RS256", "kid": "plain", "n": modulus(256), "e": "AQAB"},
            {"kty": "RSA", "use": "enc", "kid": "encryption", "n": modulus(256), "e": "AQAB"},
            {"kty": "RSA", "alg": "RS512", "kid": "other-alg", "n": modulus(256), "e": "AQAB"},
            {"kty": "RSA", "kid": "weak", "n": modulus(128), "e": "AQAB"},
            {"kty": "RSA", "n": modulus(256), "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            "not even an object"
        ]});
        let keys = parse_jwks(body.to_string().as_bytes()).expect("usable keys");
        let mut kids: Vec<_> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["entra", "plain"]);
    }

    #[test]
    fn parse_jwks_refuses_a_set_without_usable_keys() {
        assert!(parse_jwks(br#"{"keys": []}"#).is_err());
        assert!(parse_jwks(br#"{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}"#).is_err());
        assert!(parse_jwks(b"<html>").is_err());
    }
}
