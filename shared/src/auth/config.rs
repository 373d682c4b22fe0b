//! How authentication is configured: which issuers are trusted, for which kind of caller, and
//! how their signing keys are fetched and cached.
//!
//! The settings layer builds an [`AuthConfig`] from app settings; [`super::Authenticator::new`]
//! checks it once at start-up, so a typo stops the app with one clear line instead of
//! answering 401 to everyone.

use std::time::Duration;

use reqwest::Url;

use super::dev::DevTrust;
use super::error::AuthConfigError;

/// The claim that carries the tenant id, unless configured otherwise.
pub const DEFAULT_TENANT_CLAIM: &str = "tenant_id";
/// The claim that binds a client to its customer record, unless configured otherwise.
pub const DEFAULT_CUSTOMER_CLAIM: &str = "extension_customerId";
/// The claim employee app roles come in (Entra ID's, not configurable).
pub const ROLES_CLAIM: &str = "roles";

/// Allowed clock skew on `exp` and `nbf`, unless configured otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// At most one key fetch per issuer per this interval, unless configured otherwise.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How long one key fetch (discovery plus JWKS) may take, unless configured otherwise.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Cached keys older than this are refreshed on the next request, unless configured otherwise.
pub const DEFAULT_KEY_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// How many verified tokens are remembered, unless configured otherwise.
pub const DEFAULT_VERIFIED_TOKEN_CACHE: usize = 10_000;

/// The kind of caller an issuer signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerKind {
    /// Entra ID (workforce): employees, with app roles from the `roles` claim.
    Employee,
    /// Entra External ID (customers): clients, bound to one customer by a claim.
    Client,
}

/// One trusted issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    pub kind: IssuerKind,
    /// Compared exactly with the token's `iss`; also the base of OpenID discovery.
    pub issuer: String,
    /// The token's `aud` must contain this.
    pub audience: String,
    /// Where the keys are; when `None`, discovered from
    /// `{issuer}/.well-known/openid-configuration` (`jwks_uri`).
    pub jwks_uri: Option<String>,
    /// The claim holding the tenant id (default [`DEFAULT_TENANT_CLAIM`]).
    pub tenant_claim: String,
    /// The claim holding the customer id of a client (default [`DEFAULT_CUSTOMER_CLAIM`]);
    /// only read for [`IssuerKind::Client`].
    pub customer_claim: String,
}

impl IssuerConfig {
    /// An Entra ID issuer for employees, with default claim names and key discovery.
    pub fn employee(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self::new(IssuerKind::Employee, issuer.into(), audience.into())
    }

    /// An Entra External ID issuer for clients, with default claim names and key discovery.
    pub fn client(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self::new(IssuerKind::Client, issuer.into(), audience.into())
    }

    fn new(kind: IssuerKind, issuer: String, audience: String) -> Self {
        Self {
            kind,
            issuer,
            audience,
            jwks_uri: None,
            tenant_claim: DEFAULT_TENANT_CLAIM.to_owned(),
            customer_claim: DEFAULT_CUSTOMER_CLAIM.to_owned(),
        }
    }

    /// Fetch keys from this URI instead of discovering it.
    pub fn with_jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    pub fn with_tenant_claim(mut self, claim: impl Into<String>) -> Self {
        self.tenant_claim = claim.into();
        self
    }

    pub fn with_customer_claim(mut self, claim: impl Into<String>) -> Self {
        self.customer_claim = claim.into();
        self
    }

    /// The OpenID configuration URL keys are discovered from.
    pub(crate) fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }

    /// Checks the issuer and returns its discovery URL and explicit JWKS URL, parsed.
    pub(crate) fn endpoints(&self) -> Result<(Url, Option<Url>), AuthConfigError> {
        let invalid = |problem: String| AuthConfigError::InvalidIssuer {
            issuer: self.issuer.clone(),
            problem,
        };
        if self.audience.trim().is_empty() {
            return Err(invalid(
                "its audience is empty; set the API's application id URI or client id".into(),
            ));
        }
        check_claim_name(&self.tenant_claim).map_err(|p| invalid(format!("tenant claim: {p}")))?;
        check_claim_name(&self.customer_claim)
            .map_err(|p| invalid(format!("customer claim: {p}")))?;
        let discovery = fetchable_url(&self.discovery_url()).map_err(invalid)?;
        let jwks = match &self.jwks_uri {
            Some(uri) => Some(fetchable_url(uri).map_err(|p| invalid(format!("JWKS URI: {p}")))?),
            None => None,
        };
        Ok((discovery, jwks))
    }
}

/// Everything [`super::Authenticator`] needs.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Trusted issuers, any number of each kind; each issuer URL at most once.
    pub issuers: Vec<IssuerConfig>,
    /// The local dev issuer, trusted only when set (the app sets it in local mode only).
    pub dev_issuer: Option<DevTrust>,
    /// Allowed clock skew on `exp` and `nbf` (whole seconds are used).
    pub leeway: Duration,
    /// Minimum time between two key fetches of one issuer (an unknown `kid` triggers one).
    pub refetch_interval: Duration,
    /// Time limit of one key fetch, discovery included.
    pub fetch_timeout: Duration,
    /// Keys fetched longer ago than this are refreshed on the next request (revoked keys go).
    pub key_max_age: Duration,
    /// How many verified tokens are remembered so a repeated token skips RSA verification
    /// (0 turns this off). Entries last no longer than the token, or than its issuer's keys.
    pub verified_token_cache: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            dev_issuer: None,
            leeway: DEFAULT_LEEWAY,
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            key_max_age: DEFAULT_KEY_MAX_AGE,
            verified_token_cache: DEFAULT_VERIFIED_TOKEN_CACHE,
        }
    }
}

impl AuthConfig {
    /// Adds a trusted issuer.
    pub fn with_issuer(mut self, issuer: IssuerConfig) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Trusts the local dev issuer (local mode only).
    pub fn with_dev_issuer(mut self, trust: DevTrust) -> Self {
        self.dev_issuer = Some(trust);
        self
    }

    /// Checks the durations; issuers are checked one by one by the authenticator.
    pub(crate) fn check_durations(&self) -> Result<(), AuthConfigError> {
        let positive = |setting: &'static str, value: Duration| {
            if value.is_zero() {
                Err(AuthConfigError::InvalidSetting {
                    setting,
                    problem: "must be more than zero".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("fetch timeout", self.fetch_timeout)?;
        positive("key max age", self.key_max_age)?;
        if self.leeway > Duration::from_secs(300) {
            return Err(AuthConfigError::InvalidSetting {
                setting: "clock skew leeway",
                problem: "more than 300 s would accept long-expired tokens".into(),
            });
        }
        Ok(())
    }
}

/// A claim name must be non-empty and printable (it is shown in error messages).
fn check_claim_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Err("must be a non-empty name without spaces".into())
    } else {
        Ok(())
    }
}

/// A URL keys may be fetched from: `https`, or `http` on a loopback host (tests, local tools).
pub(crate) fn fetchable_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(format!(
            "{text:?} must use https (plain http only on a loopback address)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fetched_only_over_https_or_loopback_http() {
        assert!(fetchable_url("https://login.microsoftonline.com/t/v2.0").is_ok());
        assert!(fetchable_url("http://127.0.0.1:8080/keys").is_ok());
        assert!(fetchable_url("http://localhost/keys").is_ok());
        assert!(fetchable_url("http://login.example.com/keys").is_err());
        assert!(fetchable_url("ftp://127.0.0.1/keys").is_err());
        assert!(fetchable_url("not a url").is_err());
    }

    #[test]
    fn discovery_url_tolerates_a_trailing_slash() {
        let issuer = IssuerConfig::employee("https://login.example/t/v2.0/", "api://x");
        assert_eq!(
            issuer.discovery_url(),
            "https://login.example/t/v2.0/.well-known/openid-configuration"
        );
    }

    #[test]
    fn an_issuer_without_audience_is_refused() {
        let issuer = IssuerConfig::client("https://login.example/t/v2.0", " ");
        assert!(matches!(
            issuer.endpoints(),
            Err(AuthConfigError::InvalidIssuer { .. })
        ));
    }
}
