//! [`OutboundClient`]: sends an [`OutboundRequest`] through the breaker, the concurrency cap,
//! the token cache and the retry loop.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio::sync::Semaphore;

use super::breaker::{Breaker, Outcome, Pass};
use super::config::Secret;
use super::error::{reason, ErrorBody};
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

/// What to do after an attempt.
enum Step {
    Done(OutboundResponse),
    /// The token was refused: fetch a fresh one and send again (once per call).
    Reauthenticate,
    /// A transient failure: retry if attempts remain (after the given wait, else the backoff).
    Retry(OutboundError, Option<Duration>),
    Fail(OutboundError),
}

/// What one attempt came to.
enum Attempt {
    Answer(OutboundResponse),
    NoAnswer(NoAnswer),
}

/// Why an attempt got no answer.
enum NoAnswer {
    /// No connection: nothing sent.
    Connect(String),
    /// Sent (perhaps), no answer in time.
    Timeout,
    /// Sent (perhaps), the connection failed.
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
        if self.inner.breaker.is_open() {
            return Err(self.breaker_open());
        }
        let _slot = self.slot().await?;
        let url = self.url(&request)?;
        let mut attempts = 0u32;
        let mut reauthenticated = false;
        let mut last: Option<OutboundError> = None;
        loop {
            attempts += 1;
            let Some(pass) = self.inner.breaker.pass() else {
                // Opened meanwhile: what the last attempt came to says more than "open".
                return Err(last.unwrap_or_else(|| self.breaker_open()));
            };
            let step = self
                .try_once(&request, url.clone(), pass, attempts, !reauthenticated)
                .await;
            match step {
                Step::Done(response) => return Ok(response),
                Step::Reauthenticate => {
                    // A 401 is refused before processing: the retry does not count.
                    reauthenticated = true;
                    attempts -= 1;
                }
                Step::Retry(error, wait) if attempts < self.inner.config.max_attempts => {
                    tracing::debug!(service = %self.inner.service, attempt = attempts, error = %error, "retrying");
                    last = Some(error);
                    self.backoff(attempts, wait).await;
                }
                Step::Retry(error, _) | Step::Fail(error) => return Err(error),
            }
        }
    }

    /// One attempt: the token, the request, what to do next.
    async fn try_once(
        &self,
        request: &OutboundRequest,
        url: reqwest::Url,
        pass: Pass<'_>,
        attempts: u32,
        may_reauthenticate: bool,
    ) -> Step {
        let token = match self.token().await {
            Ok(token) => token,
            Err(error) => {
                let transient =
                    matches!(&error, OutboundError::Token { source, .. } if source.is_transient());
                if !transient {
                    pass.report(Outcome::Neutral);
                    return Step::Fail(error);
                }
                pass.report(Outcome::Failure);
                return Step::Retry(error, None);
            }
        };
        let safe = request.is_retry_safe();
        match self.attempt(request, url, token.as_ref()).await {
            Attempt::Answer(response)
                if response.status.is_success() || response.status.is_redirection() =>
            {
                pass.report(Outcome::Success);
                Step::Done(response)
            }
            Attempt::Answer(response)
                if response.status == StatusCode::UNAUTHORIZED && may_reauthenticate =>
            {
                match (&self.inner.token, &token) {
                    (Some(source), Some(token)) => {
                        pass.report(Outcome::Neutral);
                        tracing::info!(service = %self.inner.service, "access token refused (401): refreshing once");
                        source.invalidate(token);
                        Step::Reauthenticate
                    }
                    _ => self.on_status(pass, response, attempts, safe),
                }
            }
            Attempt::Answer(response) => self.on_status(pass, response, attempts, safe),
            Attempt::NoAnswer(failed) => {
                pass.report(Outcome::Failure);
                self.on_failure(failed, attempts, safe)
            }
        }
    }

    /// An attempt that got no answer: always retried when nothing was sent, else only when
    /// the request is safe to repeat.
    fn on_failure(&self, failed: NoAnswer, attempts: u32, safe: bool) -> Step {
        let service = self.name();
        let error = match failed {
            NoAnswer::Connect(reason) => {
                return Step::Retry(
                    OutboundError::Connect {
                        service,
                        attempts,
                        reason,
                    },
                    None,
                )
            }
            NoAnswer::Timeout => OutboundError::Timeout {
                service,
                sent: true,
                attempts,
            },
            NoAnswer::Transport(reason) => OutboundError::Transport {
                service,
                sent: true,
                attempts,
                reason,
            },
        };
        if safe {
            Step::Retry(error, None)
        } else {
            Step::Fail(error)
        }
    }

    /// A non-success answer: retried when transient and safe (after the service's
    /// `Retry-After` when it gave one within the cap, else the backoff).
    fn on_status(
        &self,
        pass: Pass<'_>,
        response: OutboundResponse,
        attempts: u32,
        safe: bool,
    ) -> Step {
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
        if retryable {
            Step::Retry(error, retry_after)
        } else {
            Step::Fail(error)
        }
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
            Err(e) if e.is_connect() => return Attempt::NoAnswer(NoAnswer::Connect(reason(&e))),
            Err(e) if e.is_timeout() => return Attempt::NoAnswer(NoAnswer::Timeout),
            Err(e) => return Attempt::NoAnswer(NoAnswer::Transport(reason(&e))),
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
            Err(e) if e.is_timeout() => Attempt::NoAnswer(NoAnswer::Timeout),
            Err(e) => Attempt::NoAnswer(NoAnswer::Transport(reason(&e))),
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
