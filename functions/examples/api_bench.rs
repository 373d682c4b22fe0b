//! API load benchmark (issue 3), run by `scripts/bench-api`: `GET /api/v1/orders/{id}` with a
//! valid token against a bare axum route returning the same JSON, in the same run, on loopback;
//! and `POST /api/v1/orders`.
//!
//! Targets, each a separate process:
//! - **bare**: one axum route answering the order's JSON bytes (a second process of this program),
//!   sent the very same request as the handler (token and host headers included);
//! - **handler**: `handler serve` as the Functions host runs it, called exactly as the host calls
//!   it: `OrdersApi` has only its HTTP binding (its events leave through the outbox), so the host
//!   forwards `GET /api/v1/orders/{id}` and `POST /api/v1/orders` as plain requests. The token is
//!   a real RS256 token from an identity provider served on loopback by this program (keys
//!   fetched once, then cached, as in Azure);
//! - **enveloped GET and POST**: the same requests sent through the `req` envelope, as the host
//!   sends them to a function with an output binding (for reference);
//! - **before the outbox** (with `BENCH_BASELINE_HANDLER`, set by `scripts/bench-api --baseline
//!   REV`): create-order on the handler of an earlier commit, enveloped as the host sent it then
//!   (the event was an output binding), in back-to-back rounds with today's;
//! - **local**: `handler local`, the whole app end to end through the local host (which plays the
//!   Functions host in process, envelope building and parsing included), for reference.
//!
//! Maximum rates come from `wrk` (closed loop, `CONNECTIONS` connections, `DURATION`; the bare
//! route and the GET in `RATE_ROUNDS` back-to-back pairs, the pair with the median ratio
//! reported, as this VM's speed drifts within a minute); latency
//! from an open loop at half the handler's maximum rate for `DURATION` (the GET in
//! `LATENCY_ROUNDS` rounds, the median round reported, as one VM pause moves a round's tail a
//! lot): requests evenly spaced in
//! time (one thread pacing them by the clock, plain non-blocking sockets, the request built once,
//! so the generator stays cheap and does not send in bursts). A request's latency includes the
//! time it waited for a free connection after it was due, so queueing behind a slow server counts
//! (no coordinated omission); the generator's own stalls do not (see [`open_loop`]). Bounded:
//! every phase stops after its duration; the open loop sends at most rate × duration requests.

#[path = "../tests/common/jwks.rs"]
mod jwks;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::protocol::{HttpRequestData, HttpResponseData, InvocationRequest, InvocationResponse};

const CONNECTIONS: usize = 32;

/// Headers the Functions host adds to a request it forwards (besides the caller's own): the
/// invocation id and its version (`SOURCES.md` of the host fixtures, fact 6).
const INVOCATION_ID: &str = "6b8b4567-1234-4cde-9f00-123456789abc";
const HOST_VERSION: &str = "4.1040.300.25317";
const DURATION: Duration = Duration::from_secs(5);
/// Back-to-back pairs of maximum-rate runs (bare route, then GET), each run `DURATION` long.
const RATE_ROUNDS: usize = 3;
/// Open-loop rounds of the GET, each `DURATION` long.
const LATENCY_ROUNDS: usize = 3;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.get(1).map(String::as_str) == Some("--serve-bare") {
        let port: u16 = args.get(2).ok_or("port")?.parse()?;
        let body = std::fs::read(args.get(3).ok_or("body file")?)?;
        return runtime.block_on(serve_bare(port, body));
    }
    let handler = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/handler"));
    let handler = std::fs::canonicalize(&handler)
        .map_err(|error| format!("{}: {error}", handler.display()))?;
    runtime.block_on(run(&handler))
}

/// The baseline: one axum route answering the same JSON bytes.
async fn serve_bare(port: u16, body: Vec<u8>) -> Result<(), BoxError> {
    let body = bytes::Bytes::from(body);
    let app = axum::Router::new().route(
        "/api/v1/orders/{id}",
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, BoxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_ready(client: &reqwest::Client, url: &str) -> Result<(), BoxError> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if client.get(url).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("{url} never answered").into())
}

/// The core servers run on; the load generators (this process, wrk) run on the other one, so a
/// generator never takes CPU from the server it measures (`scripts/bench-api` pins this
/// process to core 0).
const SERVER_CPU: &str = "1";

/// `program` pinned to [`SERVER_CPU`] when `taskset` is there.
fn pinned(program: &Path) -> Command {
    if Path::new("/usr/bin/taskset").exists() {
        let mut command = Command::new("/usr/bin/taskset");
        command.args(["-c", SERVER_CPU]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn spawn(
    handler: &Path,
    args: &[&str],
    data: &Path,
    env: &[(&str, String)],
) -> Result<Killed, BoxError> {
    let mut command = pinned(handler);
    command
        .args(args)
        .current_dir(data)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data.join("data"))
        .env("LOCAL_TIMERS", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    Ok(Killed(command.spawn()?))
}

/// The host's envelope for `method path` with a token and an optional JSON body.
fn envelope(
    function: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Vec<u8> {
    let mut headers = std::collections::BTreeMap::new();
    headers.insert("Authorization".to_owned(), vec![format!("Bearer {token}")]);
    headers.insert(
        "Content-Type".to_owned(),
        vec!["application/json".to_owned()],
    );
    let request = HttpRequestData {
        url: format!("https://app.azurewebsites.net{path}"),
        method: method.to_owned(),
        headers,
        identities: json!([]),
        body: body.map(Value::to_string),
        ..HttpRequestData::default()
    };
    let envelope: InvocationRequest = request.to_host_request("req", function);
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// Posts an envelope and returns the `res` output's body as JSON.
async fn invoke(
    client: &reqwest::Client,
    base: &str,
    function: &str,
    body: Vec<u8>,
) -> Result<Value, BoxError> {
    let reply: InvocationResponse = client
        .post(format!("{base}/{function}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?
        .json()
        .await?;
    let res = reply
        .outputs
        .get("res")
        .and_then(HttpResponseData::from_output)
        .ok_or("no res output")?;
    Ok(serde_json::from_str(&res.body)?)
}

async fn run(handler: &Path) -> Result<(), BoxError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()?;
    let idp = jwks::FakeIdp::start("bench-idp", &[jwks::key_a()]).await;
    // The customers' issuer (Entra External ID), for the reads of a client.
    let external_idp = jwks::FakeIdp::start("bench-external-idp", &[jwks::key_a()]).await;
    let token = idp.token(
        &jwks::key_a(),
        json!({"roles": ["admin"], "tenant_id": "bench", "exp": jwks::now() + 7200}),
    );

    // The handler as the Functions host runs it.
    let azure_data = tempfile::tempdir()?;
    let port = free_port()?;
    let azure_env = [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
        ("AUTH_ENTRA_ISSUER", idp.issuer()),
        ("AUTH_ENTRA_AUDIENCE", jwks::AUDIENCE.to_owned()),
        ("AUTH_EXTERNAL_ISSUER", external_idp.issuer()),
        ("AUTH_EXTERNAL_AUDIENCE", jwks::AUDIENCE.to_owned()),
        (
            "GDPR_PSEUDONYM_KEY",
            format!("bench-{:032x}", fastrand::u128(..)),
        ),
    ];
    let _azure = spawn(handler, &["serve"], azure_data.path(), &azure_env)?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &format!("{base}/")).await?;

    let product: Value = client
        .post(format!("{base}/api/v1/products"))
        .bearer_auth(&token)
        .json(&json!({"name": "Kettle", "category": "kitchen", "priceCents": 2999, "currency": "EUR", "stock": 1_000_000_000}))
        .send()
        .await?
        .json()
        .await?;
    let customer: Value = client
        .post(format!("{base}/api/v1/customers"))
        .bearer_auth(&token)
        .json(&json!({"name": "Bench Customer", "email": "bench@example.org"}))
        .send()
        .await?
        .json()
        .await?;
    let order_input = json!({"customerId": customer["id"], "items": [{"productId": product["id"], "quantity": 1}]});
    let order: Value = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .json(&order_input)
        .send()
        .await?
        .json()
        .await?;
    let order_id = order["id"].as_str().ok_or("no order id")?.to_owned();
    // The order's own customer: a client's read is not an audit entry (an employee's is).
    let client_token = external_idp.token(
        &jwks::key_a(),
        json!({"tenant_id": "bench", "extension_customerId": customer["id"], "exp": jwks::now() + 7200}),
    );
    let get_envelope = envelope(
        "OrdersApi",
        "GET",
        &format!("/api/v1/orders/{order_id}"),
        &token,
        None,
    );
    let order_json = invoke(&client, &base, "OrdersApi", get_envelope.clone()).await?;
    let create_envelope = envelope(
        "OrdersApi",
        "POST",
        "/api/v1/orders",
        &token,
        Some(&order_input),
    );

    // The bare route, answering the same JSON.
    let body_file = azure_data.path().join("order.json");
    std::fs::write(&body_file, serde_json::to_vec(&order_json)?)?;
    let bare_port = free_port()?;
    let _bare = Killed(
        pinned(&std::env::current_exe()?)
            .args([
                "--serve-bare",
                &bare_port.to_string(),
                &body_file.display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let bare_url = format!("http://127.0.0.1:{bare_port}/api/v1/orders/{order_id}");
    wait_ready(&client, &bare_url).await?;

    // The whole app in local mode, for reference.
    let local_data = tempfile::tempdir()?;
    let local_port = free_port()?;
    let _local = spawn(
        handler,
        &["local"],
        local_data.path(),
        &[("LOCAL_PORT", local_port.to_string())],
    )?;
    let local_base = format!("http://127.0.0.1:{local_port}");
    wait_ready(&client, &format!("{local_base}/api/health/live")).await?;
    let dev_token = String::from_utf8(
        Command::new(handler)
            .args([
                "dev-token",
                "--tenant",
                "bench",
                "--role",
                "admin",
                "--minutes",
                "120",
            ])
            .env("DATA_DIR", local_data.path().join("data"))
            .output()?
            .stdout,
    )?
    .trim()
    .to_owned();
    let post_local = |path: &str, body: Value| {
        client
            .post(format!("{local_base}{path}"))
            .bearer_auth(&dev_token)
            .json(&body)
            .send()
    };
    let local_product: Value = post_local("/api/v1/products", json!({"name": "Kettle", "category": "kitchen", "priceCents": 2999, "currency": "EUR", "stock": 1_000_000_000})).await?.json().await?;
    let local_customer: Value = post_local(
        "/api/v1/customers",
        json!({"name": "Bench Customer", "email": "bench@example.org"}),
    )
    .await?
    .json()
    .await?;
    let local_order: Value = post_local("/api/v1/orders", json!({"customerId": local_customer["id"], "items": [{"productId": local_product["id"], "quantity": 1}]})).await?.json().await?;
    let local_url = format!(
        "{local_base}/api/v1/orders/{}",
        local_order["id"].as_str().ok_or("no local order")?
    );

    let work = tempfile::tempdir()?;
    // The bare route gets the very same request (token and host headers included), so the two
    // servers differ only in what they do with it.
    let bare = Target::get(&bare_url, Some(format!("Bearer {token}")));
    let get_order = Target::get(
        &format!("{base}/api/v1/orders/{order_id}"),
        Some(format!("Bearer {token}")),
    );
    let client_get_order = Target::get(
        &format!("{base}/api/v1/orders/{order_id}"),
        Some(format!("Bearer {client_token}")),
    );
    let create_order = Target {
        method: "POST",
        url: format!("{base}/api/v1/orders"),
        authorization: Some(format!("Bearer {token}")),
        body: Some(serde_json::to_vec(&order_input)?),
    };
    let enveloped_create = Target::post(&format!("{base}/OrdersApi"), create_envelope.clone());
    let local_get = Target::get(&local_url, Some(format!("Bearer {dev_token}")));
    let enveloped_get = Target::post(&format!("{base}/OrdersApi"), get_envelope);
    // The handler of the commit before the outbox (`scripts/bench-api --baseline REV`), for
    // create-order as it was: enveloped (the function had its Service Bus output), no outbox row.
    let baseline_data = tempfile::tempdir()?;
    let baseline = match std::env::var_os("BENCH_BASELINE_HANDLER") {
        Some(path) => Some(
            start_baseline(
                &client,
                Path::new(&path),
                baseline_data.path(),
                &idp,
                &token,
                &product_input(),
            )
            .await?,
        ),
        None => None,
    };

    // This VM's speed drifts by up to a third within a minute, so the bare route and the GET are
    // measured back to back, in `RATE_ROUNDS` pairs, and the pair with the median ratio is used.
    // The client's GET (not an audit entry) is measured in the same rounds, right after.
    let mut pairs = Vec::new();
    let mut client_get_rates = Vec::new();
    for round in 0..RATE_ROUNDS {
        let bare_rate = wrk(&bare, work.path(), &format!("bare-{round}"))?;
        let get_rate = wrk(&get_order, work.path(), &format!("get-{round}"))?;
        pairs.push((bare_rate, get_rate));
        let client_rate = wrk(
            &client_get_order,
            work.path(),
            &format!("get-client-{round}"),
        )?;
        client_get_rates.push(client_rate / bare_rate);
    }
    client_get_rates.sort_by(f64::total_cmp);
    let client_get_ratio = client_get_rates[RATE_ROUNDS / 2];
    let pair_ratios: Vec<String> = pairs
        .iter()
        .map(|(bare, get)| format!("{:.2} ({get:.0} / {bare:.0})", get / bare))
        .collect();
    pairs.sort_by(|(bare_a, get_a), (bare_b, get_b)| (get_a / bare_a).total_cmp(&(get_b / bare_b)));
    let (bare_rate, get_rate) = pairs[RATE_ROUNDS / 2];
    // Create-order, now and before the outbox, in back-to-back rounds; the median of each.
    let mut creates: Vec<(f64, f64, Option<f64>)> = Vec::new();
    for round in 0..RATE_ROUNDS {
        let before = match &baseline {
            Some((_, target)) => Some(wrk(target, work.path(), &format!("create-before-{round}"))?),
            None => None,
        };
        let now = wrk(&create_order, work.path(), &format!("create-{round}"))?;
        let enveloped = wrk(
            &enveloped_create,
            work.path(),
            &format!("create-env-{round}"),
        )?;
        creates.push((now, enveloped, before));
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let create_rate = median(creates.iter().map(|c| c.0).collect());
    let enveloped_create_rate = median(creates.iter().map(|c| c.1).collect());
    let before_create_rate = baseline
        .as_ref()
        .map(|_| median(creates.iter().filter_map(|c| c.2).collect()));
    let local_rate = wrk(&local_get, work.path(), "local")?;
    let enveloped_rate = wrk(&enveloped_get, work.path(), "enveloped")?;
    // The VM's own pauses (several ms, a few times a minute) move one round's tail a lot, so the
    // GET's latency is measured in rounds and the round with the median p99 is reported.
    let mut get_rounds = Vec::new();
    for _ in 0..LATENCY_ROUNDS {
        get_rounds.push(open_loop(&get_order, get_rate / 2.0).await);
    }
    get_rounds.sort_by(|a, b| a.percentile(0.99).total_cmp(&b.percentile(0.99)));
    let round_p99s: Vec<String> = get_rounds
        .iter()
        .map(|round| format!("{:.2} ms", round.percentile(0.99)))
        .collect();
    let get_latency = get_rounds.swap_remove(LATENCY_ROUNDS / 2);
    let bare_latency = open_loop(&bare, get_rate / 2.0).await;
    // Before the outbox first: its database is the smaller one, so it would be favoured if the
    // order were the other way round (the tail is SQLite's checkpoints).
    let before_create_latency = match &baseline {
        Some((_, target)) => Some(open_loop(target, create_rate / 2.0).await),
        None => None,
    };
    let create_latency = open_loop(&create_order, create_rate / 2.0).await;

    println!("Loopback; each server process pinned to core {SERVER_CPU}, the load generators (wrk, the open loop) to the other core; wrk with {CONNECTIONS} connections for the maximum rate, an open loop at half the handler's maximum rate for latency; {} s per phase.", DURATION.as_secs());
    println!();
    println!("| target | max rate | open loop at | p50 | p99 | max | errors | generator stalls over 1 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    row(
        "bare axum route, same JSON",
        bare_rate,
        get_rate / 2.0,
        &bare_latency,
    );
    row("`GET /api/v1/orders/{id}`: handler as the Functions host calls it (`OrdersApi`, forwarded)", get_rate, get_rate / 2.0, &get_latency);
    row(
        "`POST /api/v1/orders`: handler as the Functions host calls it (`OrdersApi`, forwarded; the event written to the outbox)",
        create_rate,
        create_rate / 2.0,
        &create_latency,
    );
    if let (Some(rate), Some(latency)) = (before_create_rate, &before_create_latency) {
        row(
            "`POST /api/v1/orders` before the outbox (the previous commit's handler: enveloped, event as an output binding)",
            rate,
            create_rate / 2.0,
            latency,
        );
    }
    println!("| `POST /api/v1/orders` through the envelope, with the outbox (reference: the outbox's cost alone against the row above) | {enveloped_create_rate:.0} req/s | | | | | | |");
    println!("| `GET /api/v1/orders/{{id}}` through the envelope (reads with an output binding; reference) | {enveloped_rate:.0} req/s | | | | | | |");
    println!("| `GET /api/v1/orders/{{id}}`: `handler local` end to end (local host included) | {local_rate:.0} req/s | | | | | | |");
    println!();
    println!(
        "Throughput ratio, GET order (handler) / bare route: {:.2}, the median of {RATE_ROUNDS} back-to-back pairs: {} (goal ≥ 0.5)",
        get_rate / bare_rate,
        pair_ratios.join(", ")
    );
    println!(
        "Create-order rates per round (forwarded with outbox / enveloped with outbox / before the outbox): {}",
        creates
            .iter()
            .map(|(now, env, before)| format!("{now:.0} / {env:.0} / {}", before.map_or("-".to_owned(), |b| format!("{b:.0}"))))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Throughput ratio, GET order by its customer (a client: not an audit entry) / bare route of the same round: {:.2}, the median of {RATE_ROUNDS} rounds: {}",
        client_get_ratio,
        client_get_rates.iter().map(|ratio| format!("{ratio:.2}")).collect::<Vec<_>>().join(", ")
    );
    println!(
        "Throughput ratio, GET order through the envelope / bare route: {:.2}",
        enveloped_rate / bare_rate
    );
    println!(
        "Throughput ratio, GET order (`handler local` end to end) / bare route: {:.2}",
        local_rate / bare_rate
    );
    println!(
        "p99 of GET order at half its maximum rate: {:.2} ms, the median of {LATENCY_ROUNDS} rounds of {} s ({}) (goal < 5 ms)",
        get_latency.percentile(0.99),
        DURATION.as_secs(),
        round_p99s.join(", ")
    );
    Ok(())
}

fn product_input() -> Value {
    json!({"name": "Kettle", "category": "kitchen", "priceCents": 2999, "currency": "EUR", "stock": 1_000_000_000})
}

/// Starts the baseline handler as the host runs it, with a product and a customer; the
/// process and its create-order target (the envelope the host sent to `OrdersApi` then).
async fn start_baseline(
    client: &reqwest::Client,
    handler: &Path,
    data: &Path,
    idp: &jwks::FakeIdp,
    token: &str,
    product_input: &Value,
) -> Result<(Killed, Target), BoxError> {
    let port = free_port()?;
    let env = [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
        ("AUTH_ENTRA_ISSUER", idp.issuer()),
        ("AUTH_ENTRA_AUDIENCE", jwks::AUDIENCE.to_owned()),
        (
            "GDPR_PSEUDONYM_KEY",
            format!("bench-{:032x}", fastrand::u128(..)),
        ),
    ];
    let process = spawn(handler, &["serve"], data, &env)?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(client, &format!("{base}/")).await?;
    let product: Value = client
        .post(format!("{base}/api/v1/products"))
        .bearer_auth(token)
        .json(product_input)
        .send()
        .await?
        .json()
        .await?;
    let customer = invoke(
        client,
        &base,
        "CustomersApi",
        envelope(
            "CustomersApi",
            "POST",
            "/api/v1/customers",
            token,
            Some(&json!({"name": "Bench Customer", "email": "bench@example.org"})),
        ),
    )
    .await?;
    let input = json!({"customerId": customer["id"], "items": [{"productId": product["id"], "quantity": 1}]});
    let create = envelope("OrdersApi", "POST", "/api/v1/orders", token, Some(&input));
    Ok((process, Target::post(&format!("{base}/OrdersApi"), create)))
}

fn row(name: &str, max_rate: f64, open_rate: f64, latency: &Latencies) {
    println!(
        "| {name} | {max_rate:.0} req/s | {open_rate:.0} req/s | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} |",
        latency.percentile(0.50),
        latency.percentile(0.99),
        latency.percentile(1.0),
        latency.errors,
        latency.stalls()
    );
}

/// One request to load a server with: the same for `wrk` and the open loop.
struct Target {
    method: &'static str,
    url: String,
    authorization: Option<String>,
    body: Option<Vec<u8>>,
}

impl Target {
    fn get(url: &str, authorization: Option<String>) -> Self {
        Self {
            method: "GET",
            url: url.to_owned(),
            authorization,
            body: None,
        }
    }

    fn post(url: &str, body: Vec<u8>) -> Self {
        Self {
            method: "POST",
            url: url.to_owned(),
            authorization: None,
            body: Some(body),
        }
    }

    /// The request's headers besides `Host` and `Content-Length`: the token with the host's
    /// forwarding headers, and the body's type.
    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(authorization) = &self.authorization {
            headers.push(("Authorization", authorization.clone()));
            headers.push(("X-Azure-Functions-InvocationId", INVOCATION_ID.to_owned()));
            headers.push(("X-Azure-Functions-HostVersion", HOST_VERSION.to_owned()));
        }
        if self.body.is_some() {
            headers.push(("Content-Type", "application/json".to_owned()));
        }
        headers
    }

    /// `host:port` and the raw HTTP/1.1 request bytes of this target.
    fn raw_request(&self) -> Option<(String, Vec<u8>)> {
        let rest = self.url.strip_prefix("http://")?;
        let (address, path) = rest.split_at(rest.find('/')?);
        let mut request = format!("{} {path} HTTP/1.1\r\nHost: {address}\r\n", self.method);
        for (name, value) in self.headers() {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = self.body.as_deref().unwrap_or_default();
        if self.body.is_some() {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        Some((address.to_owned(), bytes))
    }
}

/// The maximum rate by `wrk` (closed loop); the request comes from a Lua script it runs.
fn wrk(target: &Target, work: &Path, name: &str) -> Result<f64, BoxError> {
    let script = work.join(format!("{name}.lua"));
    let mut lua = format!("wrk.method = \"{}\"\n", target.method);
    if let Some(body) = &target.body {
        let body_file = work.join(format!("{name}.body"));
        std::fs::write(&body_file, body)?;
        lua.push_str(&format!(
            "local f = io.open(\"{}\", \"rb\")\nwrk.body = f:read(\"*a\")\nf:close()\n",
            body_file.display()
        ));
    }
    for (header, value) in target.headers() {
        lua.push_str(&format!("wrk.headers[\"{header}\"] = \"{value}\"\n"));
    }
    lua.push_str("done = function(summary, latency, requests)\n  io.write(string.format(\"non2xx=%d\\n\", summary.errors.status))\nend\n");
    std::fs::write(&script, lua)?;
    let profile = profile_server_core(work, name)?;
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{}s", DURATION.as_secs()),
            "-s",
        ])
        .arg(&script)
        .arg(&target.url)
        .output()
        .map_err(|error| format!("wrk: {error} (scripts/bench-api installs it)"))?;
    if let Some(mut perf) = profile {
        perf.wait()?;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    if !text.contains("non2xx=0") {
        return Err(format!("{name}: wrk saw errors:\n{text}").into());
    }
    let rate = text
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("{name}: no rate in wrk's output:\n{text}"))?;
    Ok(rate)
}

/// With `BENCH_PERF_DIR` set, records a CPU profile of the servers' core for one phase into
/// `$BENCH_PERF_DIR/{name}.data` (`perf report -i … --comm handler` reads it); else nothing.
fn profile_server_core(work: &Path, name: &str) -> Result<Option<Child>, BoxError> {
    let Some(dir) = std::env::var_os("BENCH_PERF_DIR") else {
        return Ok(None);
    };
    let dir = work.join(dir);
    std::fs::create_dir_all(&dir)?;
    let perf = Command::new("perf")
        .args([
            "record",
            "-q",
            "--call-graph",
            "dwarf,16384",
            "-F",
            "999",
            "-C",
            SERVER_CPU,
            "-o",
        ])
        .arg(dir.join(format!("{name}.data")))
        .args(["--", "sleep", &DURATION.as_secs().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("perf: {error} (BENCH_PERF_DIR asks for a profile)"))?;
    Ok(Some(perf))
}

struct Latencies {
    sorted_micros: Vec<u64>,
    errors: u64,
    /// Times the open loop's own thread did not run for over 1 ms (descheduled by the OS): the
    /// requests due meanwhile go out late and count that wait, which is not the server's.
    generator_stalls: Vec<Duration>,
}

impl Latencies {
    /// `count (longest)` of the generator's stalls, or `0`.
    fn stalls(&self) -> String {
        match self.generator_stalls.iter().max() {
            Some(longest) => format!(
                "{} (longest {:.1} ms)",
                self.generator_stalls.len(),
                longest.as_secs_f64() * 1000.0
            ),
            None => "0".to_owned(),
        }
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.sorted_micros.is_empty() {
            return f64::NAN;
        }
        let index = ((self.sorted_micros.len() as f64 * p).ceil() as usize)
            .clamp(1, self.sorted_micros.len())
            - 1;
        self.sorted_micros[index] as f64 / 1000.0
    }
}

/// Sends at `rate` per second for `DURATION` over at most `CONNECTIONS` kept-alive connections:
/// request `i` is due at `start + i / rate` and goes out on the first idle connection (waiting in
/// order for one when all are busy). Its latency is the exchange itself plus the time it waited
/// for a connection to come free after it was due, so queueing behind a slow server counts (no
/// coordinated omission); a late send while a connection was free is the generator's own delay
/// (its thread descheduled: see `generator_stalls`) and does not count.
///
/// One OS thread spins on the clock and non-blocking sockets instead of sleeping on a timer: a
/// timer with 1 ms resolution would release a whole millisecond's requests at once (28 at
/// 28,000 per second), a burst the server queues, which measures the generator, not the server.
/// Bounded: at most `rate × DURATION` requests, and the phase stops `DURATION` after its last
/// request was due, counting unanswered requests as errors.
async fn open_loop(target: &Target, rate: f64) -> Latencies {
    let Some((address, request)) = target.raw_request() else {
        return Latencies {
            sorted_micros: Vec::new(),
            errors: 1,
            generator_stalls: Vec::new(),
        };
    };
    tokio::task::spawn_blocking(move || paced_loop(&address, &request, rate))
        .await
        .unwrap_or(Latencies {
            sorted_micros: Vec::new(),
            errors: 1,
            generator_stalls: Vec::new(),
        })
}

/// One kept-alive connection of the open loop and the request it is waiting on.
struct Paced {
    stream: std::net::TcpStream,
    buffer: Vec<u8>,
    /// When the request in flight started counting (see [`Paced::send`]); `None` when idle.
    due: Option<Instant>,
    /// When the last response completed (or the connection opened).
    idle_since: Instant,
}

impl Paced {
    fn connect(address: &str) -> Option<Self> {
        let stream = std::net::TcpStream::connect(address).ok()?;
        stream.set_nodelay(true).ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(Self {
            stream,
            buffer: Vec::with_capacity(64 * 1024),
            due: None,
            idle_since: Instant::now(),
        })
    }

    /// Writes the whole request (it fits the socket buffer; spins on the rare short write). Its
    /// latency will count from now, minus the time it waited after `due` for this connection to
    /// come free.
    fn send(&mut self, request: &[u8], due: Instant) -> bool {
        let now = Instant::now();
        let waited_for_connection = self.idle_since.saturating_duration_since(due);
        use std::io::Write;
        let mut written = 0;
        while written < request.len() {
            match self.stream.write(&request[written..]) {
                Ok(0) => return false,
                Ok(count) => written += count,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    std::hint::spin_loop()
                }
                Err(_) => return false,
            }
        }
        self.buffer.clear();
        self.due = Some(now - waited_for_connection);
        true
    }

    /// Reads what has arrived: `Some(Some(ok))` once the whole response is in, `Some(None)` while
    /// it is not, `None` when the connection failed.
    fn poll(&mut self) -> Option<Option<bool>> {
        use std::io::Read;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(count) => self.buffer.extend_from_slice(&chunk[..count]),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return None,
            }
        }
        Some(complete_response(&self.buffer))
    }
}

/// Whether `buffer` holds a whole `Content-Length` framed response, and if so whether it was 2xx.
fn complete_response(buffer: &[u8]) -> Option<bool> {
    let header_end = buffer.windows(4).position(|window| window == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())?;
    (buffer.len() >= header_end + length).then(|| head.get(9..10) == Some("2"))
}

/// The open loop's thread: see [`open_loop`].
fn paced_loop(address: &str, request: &[u8], rate: f64) -> Latencies {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let total = (rate * DURATION.as_secs_f64()) as usize;
    let mut connections: Vec<Paced> = (0..CONNECTIONS)
        .filter_map(|_| Paced::connect(address))
        .collect();
    if connections.is_empty() {
        return Latencies {
            sorted_micros: Vec::new(),
            errors: total as u64,
            generator_stalls: Vec::new(),
        };
    }
    let started = Instant::now() + Duration::from_millis(50);
    let deadline = started + DURATION * 2;
    let mut sorted_micros = Vec::with_capacity(total);
    let mut errors = 0u64;
    let mut next = 0usize;
    let mut waiting = std::collections::VecDeque::new();
    let mut generator_stalls = Vec::new();
    let mut previous_turn = Instant::now();
    loop {
        let now = Instant::now();
        if now - previous_turn > Duration::from_millis(1) {
            generator_stalls.push(now - previous_turn);
        }
        previous_turn = now;
        while next < total && started + interval.mul_f64(next as f64) <= now {
            waiting.push_back(started + interval.mul_f64(next as f64));
            next += 1;
        }
        for connection in connections.iter_mut() {
            if connection.due.is_none() {
                let Some(due) = waiting.pop_front() else {
                    break;
                };
                if !connection.send(request, due) {
                    errors += 1;
                    connection.due = None;
                }
            }
        }
        let mut failed = Vec::new();
        for (index, connection) in connections.iter_mut().enumerate() {
            let Some(due) = connection.due else { continue };
            match connection.poll() {
                Some(Some(ok)) => {
                    connection.due = None;
                    connection.idle_since = Instant::now();
                    if ok {
                        sorted_micros.push(due.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                Some(None) => {}
                None => failed.push(index),
            }
        }
        for index in failed.into_iter().rev() {
            errors += 1;
            match Paced::connect(address) {
                Some(fresh) => connections[index] = fresh,
                None => {
                    connections.swap_remove(index);
                }
            }
        }
        let busy = connections
            .iter()
            .filter(|connection| connection.due.is_some())
            .count();
        if next >= total && waiting.is_empty() && busy == 0 {
            break;
        }
        if connections.is_empty() || now > deadline {
            errors += (total - next + waiting.len() + busy) as u64;
            break;
        }
        std::hint::spin_loop();
    }
    sorted_micros.sort_unstable();
    Latencies {
        sorted_micros,
        errors,
        generator_stalls,
    }
}
