//! [`OutboundClient`]: sends an [`OutboundRequest`] through the breaker, the concurrency cap,
//! the token cache and the retry loop.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio::sync::Semaphore;

use super::breaker::{Breaker, Outcome, Pass};
use super::config::Secret;
use super::error::ErrorBody;
use super::health::OutboundHealth;
use super::retry;
use super::token::TokenSource;
use super::{OutboundConfig, OutboundError, OutboundRequest, OutboundResponse};

/// The client of one remote service; cheap to clone (the clones share breaker, slots, token).
#[derive(Debug, Clone)]
pub struct OutboundClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    service: Arc<str>,
    config: OutboundConfig,
    base: String,
    http: reqwest::Client,
    slots: Arc<Semaphore>,
    breaker: Breaker,
    token: Option<TokenSource>,
}

/// What one attempt came to.
enum Attempt {
    Answer(OutboundResponse),
    Connect(String),
    Timeout,
    Transport(String),
}

impl OutboundClient {
    /// A client with its own `reqwest::Client` (rustls, `connect_timeout` from the config).
    pub fn new(config: OutboundConfig) -> Result<Self, OutboundError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| OutboundError::InvalidRequest {
                service: config.service.clone(),
                reason: format!("cannot build the HTTP client: {}", reason(&e)),
            })?;
        Self::with_http(http, config)
    }

    /// A client on the project's shared `reqwest::Client` (its connection pool; its own
    /// connect timeout applies).
    pub fn with_http(http: reqwest::Client, config: OutboundConfig) -> Result<Self, OutboundError> {
        let service: Arc<str> = config.service.as_str().into();
        let invalid = |reason: String| OutboundError::InvalidRequest {
            service: service.to_string(),
            reason,
        };
        let base_url = reqwest::Url::parse(&config.base_url)
            .map_err(|e| invalid(format!("base URL {:?}: {e}", config.base_url)))?;
        let token = match &config.auth {
            Some(credentials) => Some(
                TokenSource::new(credentials.clone(), &base_url, config.total_timeout).map_err(
                    |source| OutboundError::Token {
                        service: service.to_string(),
                        source,
                    },
                )?,
            ),
            None => None,
        };
        let inner = Inner {
            base: config.base_url.trim_end_matches('/').to_owned(),
            breaker: Breaker::new(service.clone(), config.breaker.clone()),
            slots: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            service,
            http,
            token,
            config,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The breaker, the slots in use, for the readiness endpoint.
    pub fn health(&self) -> OutboundHealth {
        let snapshot = self.inner.breaker.snapshot();
        let max = self.inner.config.max_concurrency.max(1);
        OutboundHealth {
            service: self.inner.service.to_string(),
            breaker: snapshot.state,
            consecutive_failures: snapshot.consecutive_failures,
            in_flight: max.saturating_sub(self.inner.slots.available_permits()),
            open_until: snapshot.open_until,
        }
    }

    /// Sends the request: a 2xx/3xx answer is `Ok`, anything else an [`OutboundError`].
    pub async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let inner = &*self.inner;
        if inner.breaker.is_open() {
            return Err(self.breaker_open());
        }
        let _slot = self.slot().await?;
        let url = self.url(&request)?;
        let safe = request.is_retry_safe();
        let mut attempts = 0u32;
        let mut reauthenticated = false;
        let mut last: Option<OutboundError> = None;
        loop {
            attempts += 1;
            let Some(pass) = inner.breaker.pass() else {
                return Err(last.unwrap_or_else(|| self.breaker_open()));
            };
            let token = match self.token().await {
                Ok(token) => token,
                Err(error) => {
                    let transient = matches!(&error, OutboundError::Token { source, .. } if source.is_transient());
                    pass.report(if transient {
                        Outcome::Failure
                    } else {
                        Outcome::Neutral
                    });
                    if !transient || attempts >= inner.config.max_attempts {
                        return Err(error);
                    }
                    self.backoff(attempts, None).await;
                    continue;
                }
            };
            let attempt = self.attempt(&request, url.clone(), token.as_ref()).await;
            let (error, delay) = match attempt {
                Attempt::Answer(response)
                    if response.status.is_success() || response.status.is_redirection() =>
                {
                    pass.report(Outcome::Success);
                    return Ok(response);
                }
                Attempt::Answer(response) => {
                    let status = response.status;
                    if status == StatusCode::UNAUTHORIZED && !reauthenticated {
                        if let (Some(source), Some(token)) = (&inner.token, &token) {
                            pass.report(Outcome::Neutral);
                            tracing::info!(service = %inner.service, "access token refused (401): refreshing once");
                            source.invalidate(token);
                            reauthenticated = true;
                            attempts -= 1;
                            continue;
                        }
                    }
                    self.on_status(pass, response, attempts, safe)
                }
                Attempt::Connect(reason) => {
                    pass.report(Outcome::Failure);
                    let error = OutboundError::Connect {
                        service: self.name(),
                        attempts,
                        reason,
                    };
                    (error, Some(None))
                }
                Attempt::Timeout => {
                    pass.report(Outcome::Failure);
                    let error = OutboundError::Timeout {
                        service: self.name(),
                        sent: true,
                        attempts,
                    };
                    (error, safe.then_some(None))
                }
                Attempt::Transport(reason) => {
                    pass.report(Outcome::Failure);
                    let error = OutboundError::Transport {
                        service: self.name(),
                        sent: true,
                        attempts,
                        reason,
                    };
                    (error, safe.then_some(None))
                }
            };
            match delay {
                Some(wait) if attempts < inner.config.max_attempts => {
                    tracing::debug!(service = %inner.service, attempt = attempts, error = %error, "retrying");
                    last = Some(error);
                    self.backoff(attempts, wait).await;
                }
                _ => return Err(error),
            }
        }
    }

    /// A final non-success answer: the error, and `Some(wait)` when it is worth retrying
    /// (`wait`: the service's `Retry-After`, else the backoff).
    fn on_status(
        &self,
        pass: Pass<'_>,
        response: OutboundResponse,
        attempts: u32,
        safe: bool,
    ) -> (OutboundError, Option<Option<Duration>>) {
        let status = response.status;
        let failure = retry::is_breaker_failure(status);
        pass.report(if failure {
            Outcome::Failure
        } else {
            Outcome::Success
        });
        let retry_after = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        )
        .then(|| retry::retry_after(&response.headers))
        .flatten();
        let error = OutboundError::Status {
            service: self.name(),
            status,
            body: ErrorBody(response.body),
            attempts,
            retry_after,
        };
        let retryable = safe
            && retry::is_retryable_status(status)
            && retry_after.is_none_or(|wait| wait <= self.inner.config.retry_after_max);
        (error, retryable.then_some(retry_after))
    }

    async fn attempt(
        &self,
        request: &OutboundRequest,
        url: reqwest::Url,
        token: Option<&Secret>,
    ) -> Attempt {
        let inner = &*self.inner;
        let mut builder = inner
            .http
            .request(request.method.clone(), url)
            .headers(request.headers.clone())
            .timeout(inner.config.total_timeout);
        if let Some((body, content_type)) = &request.body {
            builder = builder
                .header(http::header::CONTENT_TYPE, content_type.clone())
                .body(body.clone());
        }
        if let Some((name, key)) = &request.idempotency {
            builder = builder.header(name.clone(), key.clone());
        }
        if let Some(token) = token {
            builder = builder.bearer_auth(token.expose());
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) if e.is_connect() => return Attempt::Connect(reason(&e)),
            Err(e) if e.is_timeout() => return Attempt::Timeout,
            Err(e) => return Attempt::Transport(reason(&e)),
        };
        let status = response.status();
        let headers = response.headers().clone();
        match response.bytes().await {
            Ok(body) => Attempt::Answer(OutboundResponse {
                status,
                headers,
                body,
                service: inner.service.clone(),
            }),
            Err(e) if e.is_timeout() => Attempt::Timeout,
            Err(e) => Attempt::Transport(reason(&e)),
        }
    }

    async fn token(&self) -> Result<Option<Secret>, OutboundError> {
        let Some(source) = &self.inner.token else {
            return Ok(None);
        };
        source
            .token(&self.inner.http)
            .await
            .map(Some)
            .map_err(|source| OutboundError::Token {
                service: self.name(),
                source,
            })
    }

    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, OutboundError> {
        let waited = self.inner.config.acquire_timeout;
        let saturated = || OutboundError::Saturated {
            service: self.name(),
            max: self.inner.config.max_concurrency,
            waited,
        };
        match tokio::time::timeout(waited, self.inner.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(saturated()),
        }
    }

    async fn backoff(&self, attempts: u32, retry_after: Option<Duration>) {
        let config = &self.inner.config;
        let wait = retry_after.unwrap_or_else(|| {
            retry::full_jitter(config.backoff_base, config.backoff_max, attempts)
        });
        tokio::time::sleep(wait).await;
    }

    fn url(&self, request: &OutboundRequest) -> Result<reqwest::Url, OutboundError> {
        let joined = format!(
            "{}/{}",
            self.inner.base,
            request.path.trim_start_matches('/')
        );
        let mut url = reqwest::Url::parse(&joined).map_err(|e| OutboundError::InvalidRequest {
            service: self.name(),
            reason: format!("path {:?}: {e}", request.path),
        })?;
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&request.query);
        }
        Ok(url)
    }

    fn name(&self) -> String {
        self.inner.service.to_string()
    }

    fn breaker_open(&self) -> OutboundError {
        OutboundError::BreakerOpen {
            service: self.name(),
        }
    }
}

/// A reqwest error's causes, without the URL (it may carry ids or query values).
pub(crate) fn reason(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(current) = cause {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&current.to_string());
        cause = current.source();
    }
    if text.is_empty() {
        text = if error.is_timeout() {
            "timed out".into()
        } else {
            "request failed".into()
        };
    }
    text
}
