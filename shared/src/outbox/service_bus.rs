//! [`ServiceBusRestPublisher`]: the [`MessagePublisher`] of the relay in Azure. It sends each
//! outbox message to its queue or topic through the Service Bus REST API "Send Message"
//! (<https://learn.microsoft.com/rest/api/servicebus/send-message-to-queue>, the same request for
//! topics), authenticated by an Entra token.
//!
//! **Why REST, not the output binding:** the host hands a custom handler's Service Bus output to
//! the extension as an `IAsyncCollector<string>`, so the handler sets only the body: no
//! `MessageId` (which duplicate detection keys on), no correlation id, no application properties,
//! and `ContentType` is always `text/plain` (`docs/research-outbox.md` §2.1, §2.2).
//! **Why our own client:** no maintained Rust Service Bus crate is built on `azure_core` 1.x. The
//! `azure_messaging_servicebus` releases on crates.io (up to 0.21) are the unofficial legacy REST
//! client on `azure_core` 0.21, SAS only; the official AMQP crate is unreleased and on
//! `azure_core` 0.x (research §2.3). This is one `reqwest` POST on the workspace's `reqwest`
//! (0.13, rustls), the one the Azure SDK crates use, so no second HTTP stack.
//!
//! **Identity and role:** the token is for the scope `https://servicebus.azure.net/.default`, and
//! the identity needs the **Azure Service Bus Data Sender** role on the namespace or on each
//! entity (<https://learn.microsoft.com/azure/service-bus-messaging/authenticate-application>).
//! In Azure the namespace comes from `ServiceBusConnection__fullyQualifiedNamespace`
//! (`sb-x.servicebus.windows.net`) and the identity is the app's managed identity,
//! user-assigned by client id (`AZURE_CLIENT_ID`) or system-assigned
//! ([`ServiceBusRestPublisher::managed_identity`]).
//!
//! **The request** (Send Message, and "Message headers and properties",
//! <https://learn.microsoft.com/rest/api/servicebus/message-headers-and-properties>):
//! `POST {endpoint}/{entity}/messages` with `Authorization: Bearer <token>`, the
//! `BrokerProperties` header (JSON: `MessageId`, and `CorrelationId` when the message has one),
//! `Content-Type` = the message's content type, one header per application property, and the
//! body text byte for byte.
//!
//! **Tokens:** with [`ServiceBusOptions::cache_tokens`] the publisher keeps the token until 5
//! minutes before it expires, with one fetch in flight (concurrent sends wait for it). The
//! managed-identity constructor switches that off because `azure_identity` 1.0's
//! `ManagedIdentityCredential` already caches exactly so (its `TokenCache`: per scope set,
//! refreshed when 5 minutes or less remain, under a write lock). A 401 drops the publisher's
//! cached token so the next send fetches a new one; a credential that caches itself (managed
//! identity) gives the same token again until its own refresh, as `azure_identity` 1.0 has no way
//! to force one.
//!
//! **Outcomes** ([`PublishError`]): 201 is sent. 401 (token dropped, see above), 408, 429, 5xx,
//! timeouts, connection failures and any other non-4xx answer are [`PublishError::Transient`]
//! (with the status, the `Retry-After` of a 429 or 503, and the start of the answer). 400, 403
//! (quota exceeded, message too large, forbidden), 404, 410 (the entity does not exist), 413 and
//! every other 4xx are [`PublishError::Permanent`], with the status and the first 300 characters
//! of the answer. So is a message that cannot be put into a request (an invalid entity path,
//! property name or content type).
//!
//! Logs and errors carry the entity and the message id only: never the body, never a token.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential};
use azure_core::time::OffsetDateTime;
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER,
};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use tokio::sync::Mutex;

use super::{MessagePublisher, OutboxMessage, PublishError};

/// The scope of a Service Bus data-plane token.
pub const SERVICE_BUS_SCOPE: &str = "https://servicebus.azure.net/.default";

/// The app setting that names the namespace (`sb-x.servicebus.windows.net`), as the Functions
/// host's identity-based Service Bus connection reads it.
pub const NAMESPACE_SETTING: &str = "ServiceBusConnection__fullyQualifiedNamespace";

/// The header that carries the broker properties as a JSON object.
const BROKER_PROPERTIES: &str = "BrokerProperties";

/// A cached token is replaced when this little of its lifetime is left.
const REFRESH_MARGIN_SECONDS: i64 = 5 * 60;

/// How much of an error answer goes into a [`PublishError`].
const ERROR_BODY_CHARS: usize = 300;

/// How much of an error answer is read at most (the rest is dropped unread).
const MAX_ERROR_BODY_BYTES: usize = 4 * 1024;

/// Header names an application property may not take: the request's own headers, and those
/// HTTP itself interprets (a property named so would corrupt the request rather than travel).
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "brokerproperties",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "expect",
    "host",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-ms-retrypolicy",
];

/// Timeouts and token caching.
#[derive(Debug, Clone)]
pub struct ServiceBusOptions {
    /// The longest connecting (TCP and TLS) may take.
    pub connect_timeout: Duration,
    /// The longest one send may take, from connecting to the end of the answer. A token fetch
    /// is bounded by it too.
    pub timeout: Duration,
    /// Keep the token until 5 minutes before it expires. Set `false` when the credential caches
    /// itself (`azure_identity`'s managed identity does; [`ServiceBusRestPublisher::managed_identity`]
    /// sets it so).
    pub cache_tokens: bool,
}

impl Default for ServiceBusOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            cache_tokens: true,
        }
    }
}

/// Why a publisher could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceBusSetupError {
    #[error("{NAMESPACE_SETTING} {value:?} is not a namespace host name such as sb-x.servicebus.windows.net: {problem}")]
    InvalidNamespace { value: String, problem: String },
    #[error("Service Bus base URL {value:?}: {problem}")]
    InvalidBaseUrl { value: String, problem: String },
    #[error("managed identity for Service Bus: {0}")]
    Identity(String),
    #[error("HTTP client for Service Bus: {0}")]
    HttpClient(String),
}

/// Publishes outbox messages through the Service Bus REST API (see the module documentation).
pub struct ServiceBusRestPublisher {
    http: reqwest::Client,
    /// `https://{namespace}` or the base URL given, without a trailing slash.
    endpoint: String,
    tokens: TokenSource,
}

impl std::fmt::Debug for ServiceBusRestPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBusRestPublisher")
            .field("endpoint", &self.endpoint)
            .field("cache_tokens", &self.tokens.cache.is_some())
            .finish_non_exhaustive()
    }
}

impl ServiceBusRestPublisher {
    /// A publisher for the namespace `fully_qualified_namespace` (the host name, as
    /// `ServiceBusConnection__fullyQualifiedNamespace` gives it: `sb-x.servicebus.windows.net`),
    /// over HTTPS, with tokens from `credential`. Makes no request.
    pub fn new(
        fully_qualified_namespace: &str,
        credential: Arc<dyn TokenCredential>,
        options: ServiceBusOptions,
    ) -> Result<Self, ServiceBusSetupError> {
        let endpoint = namespace_endpoint(fully_qualified_namespace)?;
        Self::build(endpoint, credential, options)
    }

    /// A publisher that sends to `base_url` (`http://127.0.0.1:8080`, say: tests and emulators;
    /// `https://{namespace}` is what [`Self::new`] uses). The base URL may have a path; the
    /// entity and `/messages` are appended to it. Makes no request.
    pub fn with_base_url(
        base_url: &str,
        credential: Arc<dyn TokenCredential>,
        options: ServiceBusOptions,
    ) -> Result<Self, ServiceBusSetupError> {
        let invalid = |problem: &str| ServiceBusSetupError::InvalidBaseUrl {
            value: base_url.to_owned(),
            problem: problem.to_owned(),
        };
        let url = Url::parse(base_url).map_err(|error| invalid(&error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not have a query or a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("it must not carry credentials"));
        }
        let endpoint = url.as_str().trim_end_matches('/').to_owned();
        Self::build(endpoint, credential, options)
    }

    /// A publisher for `fully_qualified_namespace` (see [`Self::new`]) authenticated as the app's
    /// managed identity: user-assigned by `client_id` (`AZURE_CLIENT_ID`), or system-assigned
    /// when `None`. The credential caches its tokens, so the publisher does not
    /// ([`ServiceBusOptions::cache_tokens`] is set to `false`). Makes no request.
    pub fn managed_identity(
        fully_qualified_namespace: &str,
        client_id: Option<String>,
        options: ServiceBusOptions,
    ) -> Result<Self, ServiceBusSetupError> {
        let credential_options = ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.map(UserAssignedId::ClientId),
            ..Default::default()
        };
        let credential = ManagedIdentityCredential::new(Some(credential_options))
            .map_err(|error| ServiceBusSetupError::Identity(error.to_string()))?;
        let options = ServiceBusOptions {
            cache_tokens: false,
            ..options
        };
        Self::new(fully_qualified_namespace, credential, options)
    }

    /// Where messages go: `https://{namespace}`, or the base URL given (no trailing slash).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn build(
        endpoint: String,
        credential: Arc<dyn TokenCredential>,
        options: ServiceBusOptions,
    ) -> Result<Self, ServiceBusSetupError> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            // A redirect would turn the POST into a GET or send the token elsewhere: the broker
            // never redirects a send, so a 3xx is reported as it is.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("platform-handler/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ServiceBusSetupError::HttpClient(error.to_string()))?;
        Ok(Self {
            http,
            endpoint,
            tokens: TokenSource {
                credential,
                cache: options.cache_tokens.then(|| Mutex::new(None)),
                fetch_timeout: options.timeout,
            },
        })
    }

    /// The URL and the headers (all but `Authorization`) of `message`'s request; an error is
    /// the message's own fault, so permanent.
    fn prepare(&self, message: &OutboxMessage) -> Result<(Url, HeaderMap), String> {
        let url = messages_url(&self.endpoint, &message.destination)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("brokerproperties"),
            broker_properties(message)?,
        );
        let content_type = HeaderValue::from_str(&message.content_type)
            .map_err(|_| "the content type is not a valid header value".to_owned())?;
        headers.insert(CONTENT_TYPE, content_type);
        for (name, value) in &message.properties {
            let header = property_name(name)?;
            if headers.contains_key(&header) {
                return Err(format!(
                    "application property {name:?} repeats another one (header names ignore case)"
                ));
            }
            headers.insert(header, property_value(value)?);
        }
        Ok((url, headers))
    }

    async fn send(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        let (url, mut headers) = self.prepare(message).map_err(PublishError::Permanent)?;
        let token = self.tokens.token().await?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.token.secret()))
            .map_err(|_| {
                PublishError::Transient(
                    "the credential gave a token that is not a valid header value".into(),
                )
            })?;
        authorization.set_sensitive(true);
        headers.insert(AUTHORIZATION, authorization);

        let response = self
            .http
            .post(url)
            .headers(headers)
            .body(message.body.clone().into_bytes())
            .send()
            .await
            .map_err(|error| PublishError::Transient(describe_send_error(&error)))?;
        let status = response.status();
        if status == StatusCode::CREATED {
            return Ok(());
        }
        if status == StatusCode::UNAUTHORIZED {
            self.tokens.reject(&token).await;
        }
        let retry_after = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        )
        .then(|| {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .map(|value| value.chars().take(64).collect::<String>())
        })
        .flatten();
        let answer = error_body(response).await;
        let mut text = format!("Service Bus answered HTTP {status}");
        if let Some(retry_after) = retry_after {
            let _ = write!(text, " (Retry-After: {retry_after})");
        }
        if !answer.is_empty() {
            let _ = write!(text, ": {answer}");
        }
        Err(if is_permanent(status) {
            PublishError::Permanent(text)
        } else {
            PublishError::Transient(text)
        })
    }
}

#[async_trait::async_trait]
impl MessagePublisher for ServiceBusRestPublisher {
    async fn publish(&self, message: &OutboxMessage) -> Result<(), PublishError> {
        let entity = message.destination.as_str();
        let message_id = message.message_id.as_str();
        match self.send(message).await {
            Ok(()) => {
                tracing::debug!(entity, message_id, "published to Service Bus");
                Ok(())
            }
            Err(error) => {
                tracing::warn!(entity, message_id, %error, "publishing to Service Bus failed");
                Err(error)
            }
        }
    }
}

/// Retrying cannot help: the request itself is refused (400), not allowed or over a limit
/// (403: quota exceeded, message too large, forbidden), or the entity does not exist (404, 410),
/// or the message is too large (413); likewise every other 4xx but 401 (the token may be
/// refreshed), 408 (a timeout) and 429 (throttling). Everything else (5xx, and a 1xx, 2xx or 3xx
/// that is not 201) is transient.
fn is_permanent(status: StatusCode) -> bool {
    status.is_client_error()
        && !matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
        )
}

/// `https://{namespace}` from the host name the app setting gives.
fn namespace_endpoint(namespace: &str) -> Result<String, ServiceBusSetupError> {
    let invalid = |problem: &str| ServiceBusSetupError::InvalidNamespace {
        value: namespace.to_owned(),
        problem: problem.to_owned(),
    };
    let host = namespace.trim();
    if host.is_empty() {
        return Err(invalid("it is empty"));
    }
    if host.contains("://") {
        return Err(invalid("give the host name only, without a scheme"));
    }
    if host.contains(['/', '?', '#', '@']) || host.contains(char::is_whitespace) {
        return Err(invalid("give the host name only, without a path"));
    }
    let url = Url::parse(&format!("https://{host}"))
        .map_err(|error| invalid(&format!("not a host name ({error})")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("not a host name"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// `{endpoint}/{entity}/messages`, each segment of the entity path percent-encoded.
///
/// An entity path may contain `/` (hierarchical names: "Cannot start or end with a slash",
/// `QueueProperties.Name`, <https://learn.microsoft.com/dotnet/api/azure.messaging.servicebus.administration.queueproperties.name>),
/// so it is split there and each segment encoded as a path segment: everything but the
/// unreserved characters of RFC 3986 (§2.3) is written `%XX`. Empty, `.` and `..` segments are
/// refused, as a URL would resolve them away.
fn messages_url(endpoint: &str, entity: &str) -> Result<Url, String> {
    let mut url = String::with_capacity(endpoint.len() + entity.len() + 16);
    url.push_str(endpoint);
    for segment in entity.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("{entity:?} is not a queue or topic path"));
        }
        url.push('/');
        percent_encode_segment(segment, &mut url);
    }
    url.push_str("/messages");
    Url::parse(&url).map_err(|error| format!("{entity:?} does not make a URL: {error}"))
}

fn percent_encode_segment(segment: &str, out: &mut String) {
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// The `BrokerProperties` header: `{"MessageId": …}`, with `"CorrelationId"` when set.
fn broker_properties(message: &OutboxMessage) -> Result<HeaderValue, String> {
    #[derive(Serialize)]
    struct BrokerProperties<'a> {
        #[serde(rename = "MessageId")]
        message_id: &'a str,
        #[serde(rename = "CorrelationId", skip_serializing_if = "Option::is_none")]
        correlation_id: Option<&'a str>,
    }
    if message.message_id.is_empty() {
        return Err("the message has no MessageId".to_owned());
    }
    let json = serde_json::to_string(&BrokerProperties {
        message_id: &message.message_id,
        correlation_id: message.correlation_id.as_deref(),
    })
    .map_err(|error| format!("the broker properties do not serialize: {error}"))?;
    HeaderValue::from_str(&ascii_json(&json))
        .map_err(|_| format!("the {BROKER_PROPERTIES} header is not a valid header value"))
}

/// An application property's header name: an HTTP token, not one of the request's own headers.
///
/// HTTP header names are case-insensitive, and `reqwest` sends them in lower case (HTTP/1.1 and
/// HTTP/2 alike), so `eventType` travels as `eventtype`: how the broker names the property then
/// is not documented.
fn property_name(name: &str) -> Result<HeaderName, String> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("application property {name:?} is not a valid HTTP header name"))?;
    if RESERVED_HEADERS.contains(&header.as_str()) {
        return Err(format!(
            "application property {name:?} would replace the request's own {name} header"
        ));
    }
    Ok(header)
}

/// An application property's header value: the string as a JSON string, quotes included.
///
/// Service Bus reads a custom header's value as JSON-ish: a string property is written quoted,
/// as the REST documentation shows for received messages (`Priority: "High"`,
/// `Customer: "12345,ABC"` in "Peek-Lock Message",
/// <https://learn.microsoft.com/rest/api/servicebus/peek-lock-message-non-destructive-read>, and
/// "Receive and Delete Message", <https://learn.microsoft.com/rest/api/servicebus/receive-and-delete-message-destructive-read>),
/// and as Microsoft's REST SDK for Python sent them (`azure-servicebus` ≤ 0.21,
/// Azure/azure-sdk-for-python `azure-servicebus/azure/servicebus/models.py`, `Message.add_headers`
/// → `_serialize_escaped_properties_value`): strings in double quotes, numbers and booleans bare. An unquoted value could be read as a number, a boolean or a date. (The Send
/// Message page's own example, written in 2014, shows `Priority: High` unquoted.)
/// Characters outside printable ASCII are written as JSON `\u` escapes, as a header value must
/// be printable ASCII to be safe.
fn property_value(value: &str) -> Result<HeaderValue, String> {
    let json = serde_json::to_string(value)
        .map_err(|error| format!("an application property does not serialize: {error}"))?;
    HeaderValue::from_str(&ascii_json(&json))
        .map_err(|_| "an application property is not a valid header value".to_owned())
}

/// JSON text with every character outside printable ASCII (0x20..=0x7E) as a `\uXXXX` escape.
/// `serde_json` already escapes quotes, backslashes and control characters; what it leaves raw
/// (non-ASCII, DEL) can only occur inside strings, where a `\u` escape means the same.
fn ascii_json(json: &str) -> String {
    if json.bytes().all(|byte| (0x20..=0x7E).contains(&byte)) {
        return json.to_owned();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for ch in json.chars() {
        if (' '..='~').contains(&ch) {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// The start of an error answer, for the error message: at most [`ERROR_BODY_CHARS`]
/// characters, read from at most [`MAX_ERROR_BODY_BYTES`] bytes (an answer that cannot be read
/// gives what arrived).
async fn error_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body)
        .chars()
        .take(ERROR_BODY_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A send that got no answer: timed out, or could not connect, with the causes (the top level
/// alone often says just "error sending request"). The URL names the entity only.
fn describe_send_error(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        format!("Service Bus did not answer in time: {error}")
    } else if error.is_connect() {
        format!("cannot connect to Service Bus: {error}")
    } else {
        format!("sending to Service Bus failed: {error}")
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// Tokens for [`SERVICE_BUS_SCOPE`], cached or not.
struct TokenSource {
    credential: Arc<dyn TokenCredential>,
    /// `None`: the credential caches. The lock is held while fetching, so one fetch is in
    /// flight and concurrent sends wait for its token.
    cache: Option<Mutex<Option<AccessToken>>>,
    fetch_timeout: Duration,
}

impl TokenSource {
    async fn token(&self) -> Result<AccessToken, PublishError> {
        let Some(cache) = &self.cache else {
            return self.fetch().await;
        };
        let mut cached = cache.lock().await;
        if let Some(token) = cached.as_ref().filter(|token| still_fresh(token)) {
            return Ok(token.clone());
        }
        let token = self.fetch().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Drops `rejected` from the cache (not a newer token another send fetched meanwhile).
    async fn reject(&self, rejected: &AccessToken) {
        if let Some(cache) = &self.cache {
            let mut cached = cache.lock().await;
            if cached
                .as_ref()
                .is_some_and(|token| token.token == rejected.token)
            {
                *cached = None;
            }
        }
    }

    async fn fetch(&self) -> Result<AccessToken, PublishError> {
        match tokio::time::timeout(
            self.fetch_timeout,
            self.credential.get_token(&[SERVICE_BUS_SCOPE], None),
        )
        .await
        {
            Ok(Ok(token)) => {
                tracing::debug!(expires_on = %token.expires_on, "fetched a Service Bus token");
                Ok(token)
            }
            Ok(Err(error)) => Err(PublishError::Transient(format!(
                "no token for Service Bus: {error}"
            ))),
            Err(_) => Err(PublishError::Transient(format!(
                "no token for Service Bus within {:?}",
                self.fetch_timeout
            ))),
        }
    }
}

fn still_fresh(token: &AccessToken) -> bool {
    token.expires_on
        > OffsetDateTime::now_utc() + azure_core::time::Duration::seconds(REFRESH_MARGIN_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_segments_are_percent_encoded_and_slashes_separate_them() {
        let url = messages_url("https://sb-x.servicebus.windows.net", "a b#?%é/c~d").unwrap();
        assert_eq!(
            url.as_str(),
            "https://sb-x.servicebus.windows.net/a%20b%23%3F%25%C3%A9/c~d/messages"
        );
        for bad in ["", "/a", "a/", "a//b", ".", "a/..", "../a"] {
            assert!(messages_url("http://h", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn property_values_are_ascii_json_strings() {
        assert_eq!(property_value("created").unwrap(), "\"created\"");
        assert_eq!(
            property_value("a\"b\\c é\u{7f}😀").unwrap(),
            "\"a\\\"b\\\\c \\u00e9\\u007f\\ud83d\\ude00\""
        );
        let decoded: String =
            serde_json::from_str(property_value("é😀").unwrap().to_str().unwrap()).unwrap();
        assert_eq!(decoded, "é😀");
    }

    #[test]
    fn reserved_and_invalid_property_names_are_refused() {
        assert!(property_name("Authorization").is_err());
        assert!(property_name("brokerProperties").is_err());
        assert!(property_name("bad name").is_err());
        assert_eq!(property_name("eventType").unwrap().as_str(), "eventtype");
    }

    #[test]
    fn namespaces_are_host_names() {
        assert_eq!(
            namespace_endpoint("sb-x.servicebus.windows.net").unwrap(),
            "https://sb-x.servicebus.windows.net"
        );
        for bad in ["", "https://sb-x.servicebus.windows.net", "sb-x/x", "a b"] {
            assert!(namespace_endpoint(bad).is_err(), "{bad:?}");
        }
    }
}
