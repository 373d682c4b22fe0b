//! [`ServiceBusRestPublisher`] against a loopback fake of the Service Bus REST endpoint
//! ("Send Message", `POST {endpoint}/{entity}/messages`) and a fake token credential: the exact
//! request, how each answer is classified, timeouts, and token caching.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use serde_json::json;
use shared::outbox::service_bus::{
    ServiceBusOptions, ServiceBusRestPublisher, ServiceBusSetupError, SERVICE_BUS_SCOPE,
};
use shared::outbox::{MessagePublisher, OutboxMessage, PublishError};

// ---------------------------------------------------------------------------------------------
// The fake broker
// ---------------------------------------------------------------------------------------------

/// One request as the fake received it (the path as sent, not decoded).
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

/// What the fake answers to the next request (201 with no body when nothing is queued).
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct Broker {
    received: Mutex<Vec<Received>>,
    replies: Mutex<VecDeque<Reply>>,
}

impl Broker {
    fn reply(&self, reply: Reply) {
        self.replies.lock().unwrap().push_back(reply);
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn last(&self) -> Received {
        self.received().last().cloned().expect("no request arrived")
    }
}

async fn answer(State(broker): State<Arc<Broker>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    broker.received.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body: body.to_vec(),
    });
    let reply = broker
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| Reply::status(201));
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}

/// Starts a fake broker on 127.0.0.1 and gives its base URL.
async fn start_broker() -> (Arc<Broker>, String) {
    let broker = Arc::new(Broker::default());
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(broker.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (broker, format!("http://{address}"))
}

// ---------------------------------------------------------------------------------------------
// The fake credential
// ---------------------------------------------------------------------------------------------

/// Mints `token-1`, `token-2`, … valid for `lifetime`, counting the fetches.
#[derive(Debug)]
struct FakeCredential {
    fetches: AtomicUsize,
    lifetime: azure_core::time::Duration,
    delay: Duration,
    fail: bool,
    scopes: Mutex<Vec<Vec<String>>>,
}

impl FakeCredential {
    fn new() -> Arc<Self> {
        Self::with(azure_core::time::Duration::hours(1), Duration::ZERO, false)
    }

    fn with(lifetime: azure_core::time::Duration, delay: Duration, fail: bool) -> Arc<Self> {
        Arc::new(Self {
            fetches: AtomicUsize::new(0),
            lifetime,
            delay,
            fail,
            scopes: Mutex::new(Vec::new()),
        })
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        self.scopes
            .lock()
            .unwrap()
            .push(scopes.iter().map(ToString::to_string).collect());
        tokio::time::sleep(self.delay).await;
        if self.fail {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "no identity here",
            ));
        }
        Ok(AccessToken::new(
            format!("token-{n}"),
            OffsetDateTime::now_utc() + self.lifetime,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn message(destination: &str) -> OutboxMessage {
    OutboxMessage {
        message_id: "e-1".to_owned(),
        destination: destination.to_owned(),
        // Not compact, not ASCII, trailing whitespace: must arrive byte for byte.
        body: "{\"eventId\": \"e-1\",\n  \"note\": \"café 😀 \\u00e9\"}  \n".to_owned(),
        content_type: "application/json".to_owned(),
        correlation_id: Some("corr-1".to_owned()),
        properties: BTreeMap::from([
            ("eventType".to_owned(), "created".to_owned()),
            ("tenantId".to_owned(), "t-1".to_owned()),
        ]),
        created_at: chrono::Utc::now(),
    }
}

fn publisher(base: &str, credential: Arc<FakeCredential>) -> ServiceBusRestPublisher {
    publisher_with(base, credential, ServiceBusOptions::default())
}

fn publisher_with(
    base: &str,
    credential: Arc<FakeCredential>,
    options: ServiceBusOptions,
) -> ServiceBusRestPublisher {
    ServiceBusRestPublisher::with_base_url(base, credential, options).unwrap()
}

fn transient(result: Result<(), PublishError>) -> String {
    match result {
        Err(PublishError::Transient(text)) => text,
        other => panic!("expected a transient error, got {other:?}"),
    }
}

fn permanent(result: Result<(), PublishError>) -> String {
    match result {
        Err(PublishError::Permanent(text)) => text,
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_send_is_the_documented_request() {
    let (broker, base) = start_broker().await;
    let credential = FakeCredential::new();
    let publisher = publisher(&base, credential.clone());
    let message = message("order-events");

    publisher.publish(&message).await.unwrap();

    let request = broker.last();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/order-events/messages");
    assert_eq!(request.header("authorization"), Some("Bearer token-1"));
    let broker_properties: serde_json::Value =
        serde_json::from_str(request.header("brokerproperties").unwrap()).unwrap();
    assert_eq!(
        broker_properties,
        json!({"MessageId": "e-1", "CorrelationId": "corr-1"})
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    // Application properties: one header each, the value a JSON string.
    assert_eq!(request.header("eventtype"), Some("\"created\""));
    assert_eq!(request.header("tenantid"), Some("\"t-1\""));
    assert_eq!(request.body, message.body.as_bytes());
    assert_eq!(
        *credential.scopes.lock().unwrap(),
        vec![vec![SERVICE_BUS_SCOPE.to_owned()]]
    );
    assert_eq!(SERVICE_BUS_SCOPE, "https://servicebus.azure.net/.default");
}

#[tokio::test]
async fn broker_properties_leave_out_an_absent_correlation_id() {
    let (broker, base) = start_broker().await;
    let publisher = publisher(&base, FakeCredential::new());
    let mut message = message("gdpr-requests");
    message.correlation_id = None;
    message.properties.clear();
    message.content_type = "text/plain; charset=utf-8".to_owned();

    publisher.publish(&message).await.unwrap();

    let request = broker.last();
    let broker_properties: serde_json::Value =
        serde_json::from_str(request.header("brokerproperties").unwrap()).unwrap();
    assert_eq!(broker_properties, json!({"MessageId": "e-1"}));
    assert_eq!(
        request.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(request.header("eventtype").is_none());
}

#[tokio::test]
async fn property_values_are_json_strings_even_when_they_need_escapes() {
    let (broker, base) = start_broker().await;
    let publisher = publisher(&base, FakeCredential::new());
    let mut message = message("order-events");
    message.properties = BTreeMap::from([
        ("quoted".to_owned(), "say \"hi\"".to_owned()),
        ("number".to_owned(), "123".to_owned()),
        ("accented".to_owned(), "Zoë".to_owned()),
    ]);

    publisher.publish(&message).await.unwrap();

    let request = broker.last();
    assert_eq!(request.header("quoted"), Some(r#""say \"hi\"""#));
    // A digit string stays a string: quoted, so the broker cannot read it as a number.
    assert_eq!(request.header("number"), Some("\"123\""));
    assert_eq!(request.header("accented"), Some(r#""Zo\u00eb""#));
    let decoded: String = serde_json::from_str(request.header("accented").unwrap()).unwrap();
    assert_eq!(decoded, "Zoë");
}

#[tokio::test]
async fn entity_names_are_percent_encoded_path_segments() {
    let (broker, base) = start_broker().await;
    let publisher = publisher(&base, FakeCredential::new());

    publisher
        .publish(&message("odd name#1?x%y&é"))
        .await
        .unwrap();
    assert_eq!(
        broker.last().path,
        "/odd%20name%231%3Fx%25y%26%C3%A9/messages"
    );

    // A hierarchical entity path keeps its slashes as separators.
    publisher.publish(&message("team/orders")).await.unwrap();
    assert_eq!(broker.last().path, "/team/orders/messages");

    // A base URL with a path keeps it.
    let prefixed = publisher_with(
        &format!("{base}/prefix/"),
        FakeCredential::new(),
        ServiceBusOptions::default(),
    );
    prefixed.publish(&message("order-events")).await.unwrap();
    assert_eq!(broker.last().path, "/prefix/order-events/messages");
}

#[tokio::test]
async fn a_message_that_cannot_make_a_request_is_permanent_and_sends_nothing() {
    let (broker, base) = start_broker().await;
    let credential = FakeCredential::new();
    let publisher = publisher(&base, credential.clone());

    let mut bad_name = message("order-events");
    bad_name
        .properties
        .insert("not a header".to_owned(), "x".to_owned());
    let mut reserved = message("order-events");
    reserved
        .properties
        .insert("Authorization".to_owned(), "Bearer stolen".to_owned());
    let mut bad_content_type = message("order-events");
    bad_content_type.content_type = "application/json\r\nX-Evil: 1".to_owned();
    for entity in ["", "a//b", "../order-events", "/order-events"] {
        permanent(publisher.publish(&message(entity)).await);
    }
    for message in [bad_name, reserved, bad_content_type] {
        permanent(publisher.publish(&message).await);
    }
    let mut no_id = message("order-events");
    no_id.message_id.clear();
    permanent(publisher.publish(&no_id).await);

    assert!(broker.received().is_empty());
    assert_eq!(credential.fetches(), 0);
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn each_answer_is_classified() {
    let (broker, base) = start_broker().await;
    let publisher = publisher(&base, FakeCredential::new());
    let message = message("order-events");

    broker.reply(Reply::status(201));
    publisher.publish(&message).await.unwrap();

    for status in [401, 408, 429, 500, 502, 503, 504] {
        broker.reply(Reply::status(status).body("try later"));
        let text = transient(publisher.publish(&message).await);
        assert!(text.contains(&status.to_string()), "{status}: {text}");
        assert!(text.contains("try later"), "{status}: {text}");
    }
    for status in [400, 403, 404, 410, 413] {
        broker.reply(Reply::status(status).body("no such thing"));
        let text = permanent(publisher.publish(&message).await);
        assert!(text.contains(&status.to_string()), "{status}: {text}");
        assert!(text.contains("no such thing"), "{status}: {text}");
    }
    // Neither the body nor the token ever appears in an error.
    broker.reply(Reply::status(400));
    let text = permanent(publisher.publish(&message).await);
    assert!(!text.contains("café") && !text.contains("token-"), "{text}");
}

#[tokio::test]
async fn retry_after_is_reported_for_throttling_and_unavailability() {
    let (broker, base) = start_broker().await;
    let publisher = publisher(&base, FakeCredential::new());
    let message = message("order-events");

    broker.reply(Reply::status(429).header("retry-after", "7"));
    let text = transient(publisher.publish(&message).await);
    assert!(
        text.contains("429") && text.contains("Retry-After: 7"),
        "{text}"
    );

    broker.reply(Reply::status(503).header("retry-after", "30"));
    let text = transient(publisher.publish(&message).await);
    assert!(
        text.contains("503") && text.contains("Retry-After: 30"),
        "{text}"
    );

    broker.reply(Reply::status(503));
    let text = transient(publisher.publish(&message).await);
    assert!(!text.contains("Retry-After"), "{text}");
}

#[tokio::test]
async fn a_permanent_error_carries_the_first_300_characters_of_the_answer() {
    let (broker, base) = start_broker().await;
    let publisher = publisher(&base, FakeCredential::new());
    let head = "é".repeat(300);
    broker.reply(Reply::status(410).body(format!("{head}TAIL{}", "z".repeat(5000))));

    let text = permanent(publisher.publish(&message("gone")).await);

    assert!(text.contains("410"), "{text}");
    assert!(text.contains(&head), "{text}");
    assert!(!text.contains("TAIL"), "{text}");
}

#[tokio::test]
async fn a_slow_answer_is_a_transient_timeout() {
    let (broker, base) = start_broker().await;
    let options = ServiceBusOptions {
        timeout: Duration::from_millis(200),
        ..ServiceBusOptions::default()
    };
    let publisher = publisher_with(&base, FakeCredential::new(), options);
    broker.reply(Reply::status(201).delayed(Duration::from_secs(3)));

    let started = Instant::now();
    let text = transient(publisher.publish(&message("order-events")).await);

    assert!(started.elapsed() < Duration::from_secs(2), "{text}");
    assert!(text.contains("in time"), "{text}");
}

#[tokio::test]
async fn an_unreachable_broker_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let publisher = publisher(&format!("http://{address}"), FakeCredential::new());

    let text = transient(publisher.publish(&message("order-events")).await);

    assert!(text.contains("connect"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_token_is_fetched_once_for_several_sends_and_again_after_a_401() {
    let (broker, base) = start_broker().await;
    let credential = FakeCredential::new();
    let publisher = publisher(&base, credential.clone());
    let message = message("order-events");

    for _ in 0..3 {
        publisher.publish(&message).await.unwrap();
    }
    assert_eq!(credential.fetches(), 1);
    assert!(broker
        .received()
        .iter()
        .all(|request| request.header("authorization") == Some("Bearer token-1")));

    broker.reply(Reply::status(401).body("ExpiredToken"));
    transient(publisher.publish(&message).await);
    assert_eq!(credential.fetches(), 1);

    publisher.publish(&message).await.unwrap();
    assert_eq!(credential.fetches(), 2);
    assert_eq!(
        broker.last().header("authorization"),
        Some("Bearer token-2")
    );

    publisher.publish(&message).await.unwrap();
    assert_eq!(credential.fetches(), 2);
}

#[tokio::test]
async fn a_token_within_five_minutes_of_expiry_is_replaced() {
    let (broker, base) = start_broker().await;
    let credential = FakeCredential::with(
        azure_core::time::Duration::minutes(4),
        Duration::ZERO,
        false,
    );
    let publisher = publisher(&base, credential.clone());

    publisher.publish(&message("order-events")).await.unwrap();
    publisher.publish(&message("order-events")).await.unwrap();

    assert_eq!(credential.fetches(), 2);
    assert_eq!(
        broker.last().header("authorization"),
        Some("Bearer token-2")
    );
}

#[tokio::test]
async fn concurrent_sends_share_one_token_fetch() {
    let (broker, base) = start_broker().await;
    let credential = FakeCredential::with(
        azure_core::time::Duration::hours(1),
        Duration::from_millis(200),
        false,
    );
    let publisher = Arc::new(publisher(&base, credential.clone()));

    let sends = (0..5).map(|_| {
        let publisher = publisher.clone();
        tokio::spawn(async move { publisher.publish(&message("order-events")).await })
    });
    for send in futures::future::join_all(sends).await {
        send.unwrap().unwrap();
    }

    assert_eq!(credential.fetches(), 1);
    assert_eq!(broker.received().len(), 5);
}

#[tokio::test]
async fn without_caching_every_send_asks_the_credential() {
    let (_broker, base) = start_broker().await;
    let credential = FakeCredential::new();
    let options = ServiceBusOptions {
        cache_tokens: false,
        ..ServiceBusOptions::default()
    };
    let publisher = publisher_with(&base, credential.clone(), options);

    for _ in 0..3 {
        publisher.publish(&message("order-events")).await.unwrap();
    }

    assert_eq!(credential.fetches(), 3);
}

#[tokio::test]
async fn a_credential_that_fails_or_hangs_is_transient_and_sends_nothing() {
    let (broker, base) = start_broker().await;
    let failing = FakeCredential::with(azure_core::time::Duration::hours(1), Duration::ZERO, true);
    let text = transient(
        publisher(&base, failing)
            .publish(&message("order-events"))
            .await,
    );
    assert!(text.contains("no identity here"), "{text}");

    let hanging = FakeCredential::with(
        azure_core::time::Duration::hours(1),
        Duration::from_secs(5),
        false,
    );
    let options = ServiceBusOptions {
        timeout: Duration::from_millis(100),
        ..ServiceBusOptions::default()
    };
    let text = transient(
        publisher_with(&base, hanging, options)
            .publish(&message("order-events"))
            .await,
    );
    assert!(text.contains("token"), "{text}");

    assert!(broker.received().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Construction
// ---------------------------------------------------------------------------------------------

#[test]
fn the_namespace_setting_gives_an_https_endpoint() {
    let publisher = ServiceBusRestPublisher::new(
        "sb-x.servicebus.windows.net",
        FakeCredential::new(),
        ServiceBusOptions::default(),
    )
    .unwrap();
    assert_eq!(publisher.endpoint(), "https://sb-x.servicebus.windows.net");

    for bad in [
        "",
        "https://sb-x.servicebus.windows.net",
        "sb-x.servicebus.windows.net/queue",
    ] {
        let error =
            ServiceBusRestPublisher::new(bad, FakeCredential::new(), ServiceBusOptions::default())
                .unwrap_err();
        assert!(
            matches!(error, ServiceBusSetupError::InvalidNamespace { .. }),
            "{bad:?}: {error}"
        );
    }
    for bad in ["ftp://x", "http://x/?a=b", "not a url"] {
        assert!(
            ServiceBusRestPublisher::with_base_url(
                bad,
                FakeCredential::new(),
                ServiceBusOptions::default()
            )
            .is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn the_managed_identity_publisher_leaves_caching_to_the_credential() {
    let publisher = ServiceBusRestPublisher::managed_identity(
        "sb-x.servicebus.windows.net",
        Some("00000000-0000-0000-0000-000000000001".to_owned()),
        ServiceBusOptions::default(),
    )
    .unwrap();
    assert_eq!(publisher.endpoint(), "https://sb-x.servicebus.windows.net");
    assert!(format!("{publisher:?}").contains("cache_tokens: false"));
}
