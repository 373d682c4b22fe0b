//! The outbound client against a fault-injecting HTTP server on loopback: token caching and
//! refresh, retries (and what is never retried), timeouts whose outcome is unknown, the circuit
//! breaker, the concurrency cap.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http::{HeaderName, HeaderValue};
use shared::outbound::{
    BreakerConfig, BreakerState, ClientCredentials, OutboundClient, OutboundConfig, OutboundError,
    OutboundRegistry, OutboundRequest, Secret,
};

/// What the fake API does with the next request.
#[derive(Debug, Clone)]
enum Step {
    Ok,
    Status(u16),
    RetryAfter(u16, &'static str),
    /// Waits, then answers 200.
    Sleep(Duration),
}

#[derive(Default)]
struct Fake {
    token_requests: AtomicUsize,
    token_expires_in: AtomicU64,
    token_requests_seen: Mutex<Vec<(Option<String>, String)>>,
    refuse_client: std::sync::atomic::AtomicBool,
    api_requests: AtomicUsize,
    script: Mutex<VecDeque<Step>>,
    otherwise: Mutex<Option<Step>>,
    keys: Mutex<Vec<Option<String>>>,
    bearers: Mutex<Vec<Option<String>>>,
    revoked: Mutex<HashSet<String>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Fake {
    fn script(&self, steps: impl IntoIterator<Item = Step>) {
        self.script.lock().unwrap().extend(steps);
    }
    fn otherwise(&self, step: Step) {
        *self.otherwise.lock().unwrap() = Some(step);
    }
    fn api_count(&self) -> usize {
        self.api_requests.load(Ordering::SeqCst)
    }
    fn token_count(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }
    fn keys(&self) -> Vec<Option<String>> {
        self.keys.lock().unwrap().clone()
    }
    fn bearers(&self) -> Vec<Option<String>> {
        self.bearers.lock().unwrap().clone()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn token(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: String) -> Response {
    let n = fake.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    fake.token_requests_seen
        .lock()
        .unwrap()
        .push((header(&headers, "authorization"), body));
    if fake.refuse_client.load(Ordering::SeqCst) {
        let refusal = serde_json::json!({"error": "invalid_client", "error_description": "Client Authentication failed"});
        return (StatusCode::UNAUTHORIZED, axum::Json(refusal)).into_response();
    }
    let expires_in = match fake.token_expires_in.load(Ordering::SeqCst) {
        0 => 3600,
        seconds => seconds,
    };
    // Slow enough that concurrent callers would all ask if nothing made them wait.
    tokio::time::sleep(Duration::from_millis(20)).await;
    axum::Json(serde_json::json!({
        "access_token": format!("tok-{n}"),
        "token_type": "Bearer",
        "expires_in": expires_in,
    }))
    .into_response()
}

async fn api(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    fake.api_requests.fetch_add(1, Ordering::SeqCst);
    let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    fake.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let response = answer(&fake, &headers).await;
    fake.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn answer(fake: &Fake, headers: &HeaderMap) -> Response {
    fake.keys
        .lock()
        .unwrap()
        .push(header(headers, "idempotency-key"));
    let bearer =
        header(headers, "authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    fake.bearers.lock().unwrap().push(bearer.clone());
    if bearer.is_some_and(|b| fake.revoked.lock().unwrap().contains(&b)) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let step = fake.script.lock().unwrap().pop_front();
    let step = step
        .or_else(|| fake.otherwise.lock().unwrap().clone())
        .unwrap_or(Step::Ok);
    match step {
        Step::Ok => axum::Json(serde_json::json!({"ok": true})).into_response(),
        Step::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            r#"{"name":"SECRET_BODY","email":"ann@example.com"}"#,
        )
            .into_response(),
        Step::RetryAfter(code, after) => (
            StatusCode::from_u16(code).unwrap(),
            [("retry-after", after)],
            "slow down",
        )
            .into_response(),
        Step::Sleep(wait) => {
            tokio::time::sleep(wait).await;
            axum::Json(serde_json::json!({"ok": true})).into_response()
        }
    }
}

async fn start() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/oauth/token", post(token))
        .fallback(api)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, fake)
}

/// Fast settings: ms-level backoff, a breaker that stays out of the way unless a test sets it.
fn config(base: &str) -> OutboundConfig {
    let mut config = OutboundConfig::new("fake", base);
    config.total_timeout = Duration::from_millis(500);
    config.backoff_base = Duration::from_millis(1);
    config.backoff_max = Duration::from_millis(5);
    config.breaker.consecutive_failures = 1000;
    config.breaker.minimum_calls = 1000;
    config
}

fn with_auth(mut config: OutboundConfig) -> OutboundConfig {
    config.auth = Some(ClientCredentials {
        token_url: "/oauth/token".into(),
        client_id: "client-1".into(),
        client_secret: Secret::new("s3cret"),
        scope: Some("orders".into()),
    });
    config
}

fn client(config: OutboundConfig) -> OutboundClient {
    OutboundClient::new(config).unwrap()
}

fn keyed_post(key: &str) -> OutboundRequest {
    OutboundRequest::post("/v1/things")
        .idempotency(
            HeaderName::from_static("idempotency-key"),
            HeaderValue::from_str(key).unwrap(),
        )
        .json(&serde_json::json!({"amount": 1}))
        .unwrap()
}

#[tokio::test]
async fn one_token_is_fetched_for_fifty_concurrent_calls() {
    let (base, fake) = start().await;
    let client = client(with_auth(config(&base)));
    let calls = (0..50).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.send(OutboundRequest::get("/v1/things")).await })
    });
    for call in futures::future::join_all(calls).await {
        assert_eq!(call.unwrap().unwrap().status, StatusCode::OK);
    }
    assert_eq!(fake.token_count(), 1);
    assert_eq!(fake.api_count(), 50);
    assert!(fake.bearers().iter().all(|b| b.as_deref() == Some("tok-1")));
}

#[tokio::test]
async fn the_token_request_is_a_client_credentials_grant_with_basic_auth() {
    let (base, fake) = start().await;
    let client = client(with_auth(config(&base)));
    client
        .send(OutboundRequest::get("/v1/things"))
        .await
        .unwrap();
    let seen = fake.token_requests_seen.lock().unwrap().clone();
    // base64("client-1:s3cret")
    assert_eq!(seen[0].0.as_deref(), Some("Basic Y2xpZW50LTE6czNjcmV0"));
    assert_eq!(seen[0].1, "grant_type=client_credentials&scope=orders");
}

#[tokio::test]
async fn the_token_is_refreshed_after_it_expires() {
    let (base, fake) = start().await;
    fake.token_expires_in.store(1, Ordering::SeqCst);
    let client = client(with_auth(config(&base)));
    client.send(OutboundRequest::get("/a")).await.unwrap();
    client.send(OutboundRequest::get("/a")).await.unwrap();
    assert_eq!(fake.token_count(), 1, "still valid");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    client.send(OutboundRequest::get("/a")).await.unwrap();
    assert_eq!(fake.token_count(), 2);
    assert_eq!(fake.bearers().last().unwrap().as_deref(), Some("tok-2"));
}

#[tokio::test]
async fn a_401_drops_the_token_refreshes_it_and_retries_once() {
    let (base, fake) = start().await;
    let client = client(with_auth(config(&base)));
    client.send(OutboundRequest::get("/a")).await.unwrap();
    fake.revoked.lock().unwrap().insert("tok-1".into());
    // A POST without an idempotency key: a 401 is refused before processing, so it is resent.
    let response = client.send(OutboundRequest::post("/a")).await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(fake.token_count(), 2);
    let bearers: Vec<_> = fake.bearers().into_iter().flatten().collect();
    assert_eq!(bearers, ["tok-1", "tok-1", "tok-2"]);

    // Refused again with the fresh token: only one refresh per call, then the 401 is final.
    fake.revoked.lock().unwrap().insert("tok-2".into());
    fake.revoked.lock().unwrap().insert("tok-3".into());
    let error = client.send(OutboundRequest::get("/a")).await.unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(fake.token_count(), 3);
    assert_eq!(fake.api_count(), 5);
}

#[tokio::test]
async fn transient_answers_are_retried_with_the_same_idempotency_key() {
    let (base, fake) = start().await;
    let mut config = config(&base);
    config.max_attempts = 5;
    fake.script([
        Step::Status(503),
        Step::Status(502),
        Step::Status(504),
        Step::RetryAfter(429, "0"),
        Step::Ok,
    ]);
    let response = client(config).send(keyed_post("key-1")).await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json::<serde_json::Value>().unwrap()["ok"], true);
    assert!(
        !format!("{response:?}").contains("ok"),
        "the body is not in Debug"
    );
    assert_eq!(fake.keys(), vec![Some("key-1".to_owned()); 5]);
}

#[tokio::test]
async fn retries_stop_at_max_attempts_with_the_last_status() {
    let (base, fake) = start().await;
    fake.otherwise(Step::Status(503));
    let error = client(config(&base))
        .send(keyed_post("k"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OutboundError::Status { attempts: 3, .. }),
        "{error:?}"
    );
    assert_eq!(fake.api_count(), 3);
}

#[tokio::test]
async fn retry_after_is_waited_for() {
    let (base, fake) = start().await;
    fake.script([Step::RetryAfter(429, "1"), Step::Ok]);
    let started = Instant::now();
    client(config(&base))
        .send(OutboundRequest::get("/a"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.api_count(), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_handed_to_the_caller() {
    let (base, fake) = start().await;
    fake.script([Step::RetryAfter(429, "120")]);
    let error = client(config(&base))
        .send(OutboundRequest::get("/a"))
        .await
        .unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(fake.api_count(), 1);
}

#[tokio::test]
async fn other_client_and_server_errors_are_not_retried() {
    for status in [400u16, 422, 404, 500] {
        let (base, fake) = start().await;
        fake.otherwise(Step::Status(status));
        let error = client(config(&base))
            .send(keyed_post("k"))
            .await
            .unwrap_err();
        assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(fake.api_count(), 1, "HTTP {status} sent once");
        match &error {
            OutboundError::Status { body, .. } => assert!(body.json::<serde_json::Value>().is_ok()),
            other => panic!("{other:?}"),
        }
        // The body (personal data) is the caller's to map, never in the message.
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains("SECRET_BODY") && !shown.contains("ann@"),
            "{shown}"
        );
        assert!(
            shown.contains("fake") && shown.contains(&status.to_string()),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn a_post_without_idempotency_key_is_not_retried_after_it_was_sent() {
    let (base, fake) = start().await;
    fake.otherwise(Step::Status(503));
    let error = client(config(&base))
        .send(OutboundRequest::post("/a"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(fake.api_count(), 1);
}

#[tokio::test]
async fn a_timeout_after_the_request_was_received_is_an_unknown_outcome() {
    let (base, fake) = start().await;
    let mut config = config(&base);
    config.total_timeout = Duration::from_millis(100);
    fake.otherwise(Step::Sleep(Duration::from_secs(2)));
    let client = client(config);

    let error = client.send(OutboundRequest::post("/a")).await.unwrap_err();
    assert!(
        matches!(
            error,
            OutboundError::Timeout {
                sent: true,
                attempts: 1,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.outcome_unknown() && !error.nothing_sent());
    assert_eq!(fake.api_count(), 1, "a POST without key is not sent twice");

    let error = client.send(keyed_post("k")).await.unwrap_err();
    assert!(error.outcome_unknown(), "{error:?}");
    assert_eq!(
        fake.api_count(),
        4,
        "with a key: retried up to max_attempts"
    );
    assert_eq!(fake.keys()[1..], vec![Some("k".to_owned()); 3]);
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_known_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = client(config(&base))
        .send(OutboundRequest::post("/a"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OutboundError::Connect { attempts: 3, .. }),
        "{error:?}"
    );
    assert!(!error.outcome_unknown() && error.nothing_sent());
}

fn breaker_config(base: &str) -> OutboundConfig {
    let mut config = config(base);
    config.max_attempts = 1;
    config.breaker = BreakerConfig {
        consecutive_failures: 3,
        failure_rate: 0.5,
        minimum_calls: 1000,
        window: Duration::from_secs(30),
        open_for: Duration::from_millis(200),
        half_open_probes: 1,
    };
    config
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_probes_and_closes() {
    let (base, fake) = start().await;
    let client = client(breaker_config(&base));
    let mut registry = OutboundRegistry::new();
    registry.register(client.clone());
    fake.otherwise(Step::Status(503));
    for _ in 0..3 {
        client.send(OutboundRequest::get("/a")).await.unwrap_err();
    }
    assert_eq!(fake.api_count(), 3);
    let error = client.send(OutboundRequest::get("/a")).await.unwrap_err();
    assert!(
        matches!(error, OutboundError::BreakerOpen { .. }),
        "{error:?}"
    );
    assert!(error.nothing_sent() && error.to_string().contains("fake"));
    assert_eq!(fake.api_count(), 3, "nothing sent while open");

    let health = &registry.snapshot()[0];
    assert_eq!(health.breaker, BreakerState::Open);
    assert!(health.open_until.is_some() && registry.any_degraded());
    let shown = serde_json::to_value(health).unwrap();
    assert_eq!(shown["breaker"], "open");
    assert_eq!(shown["consecutiveFailures"], 3);
    assert_eq!(shown["inFlight"], 0);

    // Half-open after open_for: a failed probe opens it again.
    tokio::time::sleep(Duration::from_millis(250)).await;
    client.send(OutboundRequest::get("/a")).await.unwrap_err();
    assert_eq!(fake.api_count(), 4);
    assert!(matches!(
        client.send(OutboundRequest::get("/a")).await,
        Err(OutboundError::BreakerOpen { .. })
    ));
    assert_eq!(fake.api_count(), 4);

    // A successful probe closes it.
    tokio::time::sleep(Duration::from_millis(250)).await;
    fake.otherwise(Step::Ok);
    client.send(OutboundRequest::get("/a")).await.unwrap();
    assert_eq!(client.health().breaker, BreakerState::Closed);
    assert!(!registry.any_degraded());
    client.send(OutboundRequest::get("/a")).await.unwrap();
    assert_eq!(fake.api_count(), 6);
}

#[tokio::test]
async fn the_breaker_opens_on_the_failure_rate() {
    let (base, fake) = start().await;
    let mut config = breaker_config(&base);
    config.breaker.consecutive_failures = 100;
    config.breaker.minimum_calls = 10;
    let client = client(config);
    fake.script((0..5).flat_map(|_| [Step::Ok, Step::Status(500)]));
    for _ in 0..9 {
        let _ = client.send(OutboundRequest::get("/a")).await;
        assert_eq!(client.health().breaker, BreakerState::Closed);
    }
    let _ = client.send(OutboundRequest::get("/a")).await;
    assert_eq!(
        client.health().breaker,
        BreakerState::Open,
        "5 failures of 10 calls"
    );
    assert!(client.send(OutboundRequest::get("/a")).await.is_err());
    assert_eq!(fake.api_count(), 10);
}

#[tokio::test]
async fn client_errors_do_not_open_the_breaker() {
    let (base, fake) = start().await;
    let client = client(breaker_config(&base));
    fake.otherwise(Step::Status(422));
    for _ in 0..5 {
        client.send(OutboundRequest::get("/a")).await.unwrap_err();
    }
    assert_eq!(client.health().breaker, BreakerState::Closed);
    assert_eq!(fake.api_count(), 5);
}

#[tokio::test]
async fn concurrent_calls_are_capped() {
    let (base, fake) = start().await;
    let mut config = config(&base);
    config.max_concurrency = 4;
    config.acquire_timeout = Duration::from_secs(5);
    fake.otherwise(Step::Sleep(Duration::from_millis(30)));
    let client = client(config);
    let calls = (0..20).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.send(OutboundRequest::get("/a")).await })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap().unwrap();
    }
    assert_eq!(fake.api_count(), 20);
    let max = fake.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=4).contains(&max), "max in flight {max}");
}

#[tokio::test]
async fn a_call_that_finds_no_free_slot_in_time_fails_unsent() {
    let (base, fake) = start().await;
    let mut config = config(&base);
    config.max_concurrency = 1;
    config.acquire_timeout = Duration::from_millis(20);
    fake.otherwise(Step::Sleep(Duration::from_millis(300)));
    let client = client(config);
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.send(OutboundRequest::get("/a")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(client.health().in_flight, 1);
    let error = client.send(OutboundRequest::get("/a")).await.unwrap_err();
    assert!(
        matches!(error, OutboundError::Saturated { max: 1, .. }),
        "{error:?}"
    );
    assert!(error.nothing_sent());
    slow.await.unwrap().unwrap();
    assert_eq!(fake.api_count(), 1);
}

#[tokio::test]
async fn a_refused_token_request_fails_the_call_before_it_is_sent() {
    let (base, fake) = start().await;
    fake.refuse_client.store(true, Ordering::SeqCst);
    let error = client(with_auth(config(&base)))
        .send(keyed_post("k"))
        .await
        .unwrap_err();
    assert!(matches!(error, OutboundError::Token { .. }), "{error:?}");
    assert!(error.nothing_sent());
    let shown = format!("{error} {error:?}");
    assert!(
        shown.contains("invalid_client") && shown.contains("401"),
        "{shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
    assert_eq!(fake.token_count(), 1, "a refusal is not retried");
    assert_eq!(fake.api_count(), 0);
}

/// A server that reads the request and closes the connection without answering.
async fn start_hanging_up() -> (String, Arc<AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            if socket.read(&mut buffer).await.unwrap_or(0) > 0 {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            drop(socket);
        }
    });
    (base, received)
}

#[tokio::test]
async fn a_connection_lost_after_sending_is_an_unknown_outcome() {
    let (base, received) = start_hanging_up().await;
    let client = client(config(&base));
    let error = client.send(OutboundRequest::post("/a")).await.unwrap_err();
    assert!(
        matches!(
            error,
            OutboundError::Transport {
                sent: true,
                attempts: 1,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.outcome_unknown());
    assert_eq!(
        received.load(Ordering::SeqCst),
        1,
        "not resent without a key"
    );

    let error = client.send(keyed_post("k")).await.unwrap_err();
    assert!(error.outcome_unknown(), "{error:?}");
    assert_eq!(
        received.load(Ordering::SeqCst),
        4,
        "with a key: resent up to max_attempts"
    );
}

#[tokio::test]
async fn half_open_lets_one_probe_through_at_a_time() {
    let (base, fake) = start().await;
    let client = client(breaker_config(&base));
    fake.otherwise(Step::Status(503));
    for _ in 0..3 {
        client.send(OutboundRequest::get("/a")).await.unwrap_err();
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    fake.otherwise(Step::Sleep(Duration::from_millis(100)));
    let calls = (0..5).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.send(OutboundRequest::get("/a")).await })
    });
    let results = futures::future::join_all(calls).await;
    let passed = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(OutboundError::BreakerOpen { .. }))))
        .count();
    assert_eq!((passed, refused), (1, 4));
    assert_eq!(fake.api_count(), 4, "3 failures, then the single probe");
    assert_eq!(client.health().breaker, BreakerState::Closed);
}
