//! The [`Authenticator`]: from an `Authorization` header to a [`Principal`], or an [`AuthError`].
//!
//! The order of the checks matters: the header's `alg` is checked (RS256 only) before anything
//! else, the unverified `iss` must exactly match a configured issuer before any key is looked
//! up, the key comes only from that issuer's JWKS (never from the token), and only then are the
//! signature, `iss`, `aud`, `exp` and `nbf` verified and the principal read from the claims.
//! A token seen before is answered from the cache of verified tokens (see [`super::cache`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::cache::{Verified, VerifiedTokens};
use super::claims::{Binding, ClaimRules};
use super::config::{
    AuthConfig, IssuerConfig, IssuerKind, DEFAULT_CUSTOMER_CLAIM, DEFAULT_TENANT_CLAIM,
};
use super::dev::DevTrust;
use super::error::{AuthConfigError, AuthError};
use super::jwks::{FetchPolicy, KeyEndpoint, RemoteKeys, VerifyingKey};
use super::principal::Principal;
use super::token::{bearer_credentials, check_token_syntax, inspect};

/// Validates bearer tokens of the configured issuers. Build once at start-up and share
/// (it is `Send + Sync`; key caches live inside).
pub struct Authenticator {
    issuers: HashMap<String, TrustedIssuer>,
    verified: VerifiedTokens,
    leeway: u64,
}

/// One issuer the authenticator trusts.
struct TrustedIssuer {
    rules: ClaimRules,
    validation: Validation,
    keys: KeySource,
}

/// Where an issuer's keys come from.
enum KeySource {
    Remote(Box<RemoteKeys>),
    /// The dev issuer: one key, known up front.
    Fixed {
        kid: String,
        key: Arc<DecodingKey>,
    },
}

impl Authenticator {
    /// Checks the configuration and prepares one key cache per issuer. Fetches nothing yet:
    /// call [`Authenticator::prefetch_keys`] at start-up to avoid a slow first request.
    pub fn new(config: AuthConfig) -> Result<Self, AuthConfigError> {
        config.check_durations()?;
        if config.issuers.is_empty() && config.dev_issuer.is_none() {
            return Err(AuthConfigError::NoIssuers);
        }
        let http = http_client(&config)?;
        let policy = FetchPolicy {
            refetch_interval: config.refetch_interval,
            timeout: config.fetch_timeout,
            key_max_age: config.key_max_age,
        };
        let mut issuers = HashMap::new();
        for issuer in &config.issuers {
            let trusted = TrustedIssuer::remote(issuer, &config, http.clone(), policy)?;
            insert_unique(&mut issuers, issuer.issuer.clone(), trusted)?;
        }
        if let Some(dev) = &config.dev_issuer {
            insert_unique(
                &mut issuers,
                dev.issuer.clone(),
                TrustedIssuer::dev(dev, &config),
            )?;
        }
        Ok(Self {
            issuers,
            verified: VerifiedTokens::new(config.verified_token_cache),
            leeway: config.leeway.as_secs(),
        })
    }

    /// The principal of a request, from its `Authorization` header value (`None` when absent).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let token = bearer_credentials(authorization)?;
        self.authenticate_token(token).await
    }

    /// The principal a bare token (without `Bearer `) stands for.
    ///
    /// A token is checked character by character only when it is not in the verified-token
    /// cache: a cached token passed that check before, and only the very same bytes hit.
    pub(crate) async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(principal) = self.already_verified(token, now) {
            return Ok(principal);
        }
        check_token_syntax(token)?;
        let unverified = inspect(token)?;
        let issuer = self
            .issuers
            .get(&unverified.issuer)
            .ok_or(AuthError::UnknownIssuer)?;
        let key = issuer.keys.key(&unverified.kid).await?;
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &issuer.validation)
                .map_err(|error| AuthError::from_jwt(&error))?
                .claims;
        let principal = issuer.rules.principal(&claims)?;
        if let Some(verified) =
            Verified::new(&unverified.issuer, key.generation, &claims, &principal)
        {
            self.verified.insert(token, verified, now, self.leeway);
        }
        Ok(principal)
    }

    /// The principal of a token verified before, if that verification still holds now.
    fn already_verified(&self, token: &str, now: u64) -> Option<Principal> {
        let entry = self.verified.get(token)?;
        let generation = self.issuers.get(&entry.issuer)?.keys.fresh_generation()?;
        (generation == entry.generation && entry.is_current(now, self.leeway))
            .then(|| entry.principal.clone())
    }

    /// Fetches the keys of every remote issuer whose cache is empty or old, one after the other.
    /// Returns the first failure; the app should log it and go on (requests retry the fetch).
    pub async fn prefetch_keys(&self) -> Result<(), AuthError> {
        let mut first_error = None;
        for issuer in self.issuers.values() {
            if let KeySource::Remote(keys) = &issuer.keys {
                if let Err(error) = keys.prefetch().await {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The trusted issuer URLs (for a start-up log line).
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.keys().map(String::as_str)
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuers", &self.issuers.keys())
            .finish()
    }
}

impl TrustedIssuer {
    fn remote(
        issuer: &IssuerConfig,
        config: &AuthConfig,
        http: reqwest::Client,
        policy: FetchPolicy,
    ) -> Result<Self, AuthConfigError> {
        let (discovery, jwks) = issuer.endpoints()?;
        let endpoint = KeyEndpoint {
            issuer: issuer.issuer.clone(),
            discovery,
            jwks,
        };
        let binding = match issuer.kind {
            IssuerKind::Employee => Binding::Employee,
            IssuerKind::Client => Binding::Client,
        };
        Ok(Self {
            rules: ClaimRules {
                binding,
                tenant_claim: issuer.tenant_claim.clone(),
                customer_claim: issuer.customer_claim.clone(),
            },
            validation: validation(&issuer.issuer, &issuer.audience, config),
            keys: KeySource::Remote(Box::new(RemoteKeys::new(endpoint, http, policy))),
        })
    }

    fn dev(dev: &DevTrust, config: &AuthConfig) -> Self {
        Self {
            rules: ClaimRules {
                binding: Binding::PerToken,
                tenant_claim: DEFAULT_TENANT_CLAIM.to_owned(),
                customer_claim: DEFAULT_CUSTOMER_CLAIM.to_owned(),
            },
            validation: validation(&dev.issuer, &dev.audience, config),
            keys: KeySource::Fixed {
                kid: dev.kid.clone(),
                key: Arc::clone(&dev.key),
            },
        }
    }
}

impl KeySource {
    async fn key(&self, kid: &str) -> Result<VerifyingKey, AuthError> {
        match self {
            KeySource::Remote(keys) => keys.key(kid).await,
            KeySource::Fixed { kid: known, key } if known == kid => Ok(VerifyingKey {
                key: Arc::clone(key),
                generation: 0,
            }),
            KeySource::Fixed { .. } => Err(AuthError::UnknownKey),
        }
    }

    /// The key-set generation verified tokens must match, while the keys are fresh.
    fn fresh_generation(&self) -> Option<u64> {
        match self {
            KeySource::Remote(keys) => keys.fresh_generation(),
            KeySource::Fixed { .. } => Some(0),
        }
    }
}

/// RS256 only; `iss` exactly this issuer; `aud` containing the audience; `exp` required;
/// `nbf` checked when present; both with the configured leeway.
fn validation(issuer: &str, audience: &str, config: &AuthConfig) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.leeway = config.leeway.as_secs();
    validation
}

fn http_client(config: &AuthConfig) -> Result<reqwest::Client, AuthConfigError> {
    reqwest::Client::builder()
        .timeout(config.fetch_timeout)
        .connect_timeout(config.fetch_timeout)
        .user_agent(concat!("platform-handler/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AuthConfigError::HttpClient {
            reason: e.to_string(),
        })
}

fn insert_unique(
    issuers: &mut HashMap<String, TrustedIssuer>,
    url: String,
    trusted: TrustedIssuer,
) -> Result<(), AuthConfigError> {
    if issuers.contains_key(&url) {
        return Err(AuthConfigError::DuplicateIssuer { issuer: url });
    }
    if url.trim().is_empty() {
        return Err(AuthConfigError::InvalidIssuer {
            issuer: url,
            problem: "it is empty".into(),
        });
    }
    issuers.insert(url, trusted);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_configuration_is_refused() {
        assert!(matches!(
            Authenticator::new(AuthConfig::default()),
            Err(AuthConfigError::NoIssuers)
        ));
    }

    #[test]
    fn an_issuer_configured_twice_is_refused() {
        let config = AuthConfig::default()
            .with_issuer(IssuerConfig::employee(
                "https://login.example/t/v2.0",
                "api://a",
            ))
            .with_issuer(IssuerConfig::client(
                "https://login.example/t/v2.0",
                "api://b",
            ));
        assert!(matches!(
            Authenticator::new(config),
            Err(AuthConfigError::DuplicateIssuer { .. })
        ));
    }

    #[test]
    fn a_plain_http_issuer_off_loopback_is_refused() {
        let config = AuthConfig::default().with_issuer(IssuerConfig::employee(
            "http://login.example/t/v2.0",
            "api://a",
        ));
        assert!(matches!(
            Authenticator::new(config),
            Err(AuthConfigError::InvalidIssuer { .. })
        ));
    }

    #[tokio::test]
    async fn tokens_of_unknown_issuers_are_refused_without_a_fetch() {
        // An issuer nobody listens on: a fetch would fail with a server-side error instead.
        let config = AuthConfig::default().with_issuer(IssuerConfig::employee(
            "http://127.0.0.1:9/issuer",
            "api://a",
        ));
        let authenticator = Authenticator::new(config).expect("valid config");
        let header = r#"{"alg":"RS256","kid":"k1"}"#;
        let payload = r#"{"iss":"https://elsewhere.example/","aud":"api://a","exp":4102444800}"#;
        let token = format!(
            "{}.{}.c2ln",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header),
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        );
        assert_eq!(
            authenticator.authenticate_token(&token).await,
            Err(AuthError::UnknownIssuer)
        );
    }
}
