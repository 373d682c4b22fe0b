//! OAuth 2.0 client credentials grant (RFC 6749 §4.4): a bearer token fetched with HTTP Basic
//! authentication of the client id and secret, cached until shortly before it expires.
//!
//! Written here rather than with the `oauth2` crate: that crate brings its own HTTP client
//! integration and versions; the grant is one form POST, and this way the token request uses
//! the service's own `reqwest::Client` (one reqwest in the tree) and its timeouts.
//!
//! One refresh at a time: callers that find no valid token queue on the refresh lock and the
//! first one fetches; the others find its token when they get the lock.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde::Deserialize;

use super::config::{ClientCredentials, Secret};
use super::TokenError;

/// The longest a token is refreshed before it expires (and at most 10 % of its lifetime).
const EARLY_REFRESH_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Cached {
    token: Secret,
    refresh_at: Instant,
}

/// The token of one service.
#[derive(Debug)]
pub(crate) struct TokenSource {
    credentials: ClientCredentials,
    url: reqwest::Url,
    timeout: Duration,
    cached: RwLock<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
}

impl TokenSource {
    pub(crate) fn new(
        credentials: ClientCredentials,
        base_url: &reqwest::Url,
        timeout: Duration,
    ) -> Result<Self, TokenError> {
        let url = base_url
            .join(&credentials.token_url)
            .map_err(|e| TokenError::BadUrl(e.to_string()))?;
        Ok(Self {
            credentials,
            url,
            timeout,
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    fn valid(&self) -> Option<Secret> {
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        cached
            .as_ref()
            .filter(|c| Instant::now() < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// A valid token: the cached one, or a fresh one (one fetch at a time).
    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<Secret, TokenError> {
        if let Some(token) = self.valid() {
            return Ok(token);
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(token) = self.valid() {
            return Ok(token);
        }
        let fresh = self.fetch(http).await?;
        let token = fresh.token.clone();
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = Some(fresh);
        Ok(token)
    }

    /// Drops `rejected` (the API answered 401 to it) unless a newer token replaced it already.
    pub(crate) fn invalidate(&self, rejected: &Secret) {
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        if cached.as_ref().is_some_and(|c| &c.token == rejected) {
            *cached = None;
        }
    }

    /// `grant_type=client_credentials` and the scope, form-encoded.
    fn form(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &self.credentials.scope {
            form.append_pair("scope", scope);
        }
        form.finish()
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<Cached, TokenError> {
        let form = self.form();
        let started = Instant::now();
        let response = http
            .post(self.url.clone())
            .basic_auth(
                &self.credentials.client_id,
                Some(self.credentials.client_secret.expose()),
            )
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| TokenError::Unreachable(super::error::reason(&e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| TokenError::Unreachable(super::error::reason(&e)))?;
        if !status.is_success() {
            return Err(refused(status, &body));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| TokenError::Malformed(format!("not the expected JSON ({e})")))?;
        if !parsed.token_type.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::Malformed(format!(
                "token_type {:?} is not Bearer",
                parsed.token_type
            )));
        }
        Ok(Cached {
            token: Secret::new(parsed.access_token),
            refresh_at: started + lifetime(parsed.expires_in),
        })
    }
}

fn refused(status: StatusCode, body: &[u8]) -> TokenError {
    let error = serde_json::from_slice::<OAuthError>(body)
        .ok()
        .and_then(|e| e.error)
        .filter(|code| code.len() <= 64 && code.bytes().all(|b| b.is_ascii_graphic()));
    TokenError::Refused { status, error }
}

/// How long to use a token: its lifetime less min(60 s, 10 %). Without `expires_in`, 5 min.
fn lifetime(expires_in: Option<u64>) -> Duration {
    let total = Duration::from_secs(expires_in.unwrap_or(300));
    total.saturating_sub(EARLY_REFRESH_MAX.min(total / 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        assert_eq!(lifetime(Some(32_400)), Duration::from_secs(32_340));
        assert_eq!(lifetime(Some(10)), Duration::from_secs(9));
        assert_eq!(lifetime(Some(0)), Duration::ZERO);
    }
}
