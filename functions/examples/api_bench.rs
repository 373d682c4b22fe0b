//! API load benchmark (issue 3): `GET /api/v1/orders/{id}` with a valid token, against a bare
//! axum route returning the same JSON, in the same run, on loopback; and `POST /api/v1/orders`.
//!
//! Run with `scripts/bench-api` (it builds the release binary first). The handler runs as a real
//! `handler local` process (requests go through the local host exactly as the Functions host
//! would send them: OrdersApi has an output binding, so each request is wrapped in the `req`
//! envelope and answered through `Outputs.res`); the bare route runs as a second process of this
//! program; the load comes from this process. Each target gets:
//! 1. closed loop: `CONNECTIONS` concurrent clients for `DURATION`, giving the maximum rate;
//! 2. open loop at half that rate for `DURATION`, latency measured from each request's scheduled
//!    send time (so queueing counts: no coordinated omission), giving p50/p99/max.
//! Bounded: every phase stops after its duration, and the open loop sends at most rate × duration.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Semaphore;

const CONNECTIONS: usize = 32;
const DURATION: Duration = Duration::from_secs(5);
const OPEN_LOOP_IN_FLIGHT: usize = 512;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.get(1).map(String::as_str) == Some("--serve-bare") {
        let port: u16 = args.get(2).ok_or("port")?.parse()?;
        let body = std::fs::read(args.get(3).ok_or("body file")?)?;
        return runtime.block_on(serve_bare(port, body));
    }
    let handler = args.get(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target/release/handler"));
    let handler = std::fs::canonicalize(&handler).map_err(|error| format!("{}: {error}", handler.display()))?;
    runtime.block_on(run(&handler))
}

/// The baseline: one axum route answering the same JSON bytes.
async fn serve_bare(port: u16, body: Vec<u8>) -> Result<(), BoxError> {
    let body = bytes::Bytes::from(body);
    let app = axum::Router::new().route(
        "/api/v1/orders/{id}",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
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

async fn run(handler: &Path) -> Result<(), BoxError> {
    let data = tempfile::tempdir()?;
    let port = free_port()?;
    let _app = Killed(
        Command::new(handler)
            .arg("local")
            .current_dir(data.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", data.path().join("data"))
            .env("LOCAL_PORT", port.to_string())
            .env("LOCAL_TIMERS", "off")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(CONNECTIONS * 2).build()?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &format!("{base}/api/health/ready")).await?;

    let token = String::from_utf8(
        Command::new(handler)
            .args(["dev-token", "--tenant", "bench", "--role", "admin", "--minutes", "120"])
            .env("DATA_DIR", data.path().join("data"))
            .output()?
            .stdout,
    )?
    .trim()
    .to_owned();
    let auth = format!("Bearer {token}");
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).header("authorization", &auth).json(&body).send();
    let product: Value = post("/api/v1/products", json!({"name": "Kettle", "category": "kitchen", "priceCents": 2999, "currency": "EUR", "stock": 1_000_000_000})).await?.json().await?;
    let customer: Value = post("/api/v1/customers", json!({"name": "Bench Customer", "email": "bench@example.org"})).await?.json().await?;
    let order_body = json!({"customerId": customer["id"], "items": [{"productId": product["id"], "quantity": 1}]});
    let order: Value = post("/api/v1/orders", order_body.clone()).await?.json().await?;
    let order_url = format!("{base}/api/v1/orders/{}", order["id"].as_str().ok_or("no order id")?);
    let order_json = client.get(&order_url).header("authorization", &auth).send().await?.bytes().await?;

    let body_file = data.path().join("order.json");
    std::fs::write(&body_file, &order_json)?;
    let bare_port = free_port()?;
    let _bare = Killed(
        Command::new(std::env::current_exe()?)
            .args(["--serve-bare", &bare_port.to_string(), &body_file.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let bare_url = format!("http://127.0.0.1:{bare_port}/api/v1/orders/{}", order["id"].as_str().unwrap_or_default());
    wait_ready(&client, &bare_url).await?;

    let get_bare = Target { client: client.clone(), method: reqwest::Method::GET, url: bare_url, auth: None, body: None };
    let get_order = Target { client: client.clone(), method: reqwest::Method::GET, url: order_url, auth: Some(auth.clone()), body: None };
    let create_order = Target { client: client.clone(), method: reqwest::Method::POST, url: format!("{base}/api/v1/orders"), auth: Some(auth.clone()), body: Some(order_body.to_string()) };

    println!("Loopback, {CONNECTIONS} connections, {} s per phase, 2 cores shared by load generator and server.", DURATION.as_secs());
    println!();
    println!("| target | max rate (closed loop) | open loop at half rate: p50 | p99 | max | errors |");
    println!("|---|---|---|---|---|---|");
    let bare = measure("bare axum route, same JSON", &get_bare).await?;
    let handler_get = measure("`GET /api/v1/orders/{id}` (token, tenant-scoped read)", &get_order).await?;
    let handler_post = measure("`POST /api/v1/orders` (token, stock reserved, audit, event)", &create_order).await?;
    println!();
    let ratio = handler_get / bare;
    println!("Throughput ratio GET order / bare route: {ratio:.2} (goal ≥ 0.5)");
    let _ = handler_post;
    Ok(())
}

#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    method: reqwest::Method,
    url: String,
    auth: Option<String>,
    body: Option<String>,
}

impl Target {
    async fn send(&self) -> bool {
        let mut request = self.client.request(self.method.clone(), &self.url);
        if let Some(auth) = &self.auth {
            request = request.header("authorization", auth);
        }
        if let Some(body) = &self.body {
            request = request.header("content-type", "application/json").body(body.clone());
        }
        match request.send().await {
            Ok(response) => {
                let ok = response.status().is_success();
                ok && response.bytes().await.is_ok()
            }
            Err(_) => false,
        }
    }
}

/// Closed loop for the maximum rate, then open loop at half of it for latency; prints a row.
async fn measure(name: &str, target: &Target) -> Result<f64, BoxError> {
    let max_rate = closed_loop(target).await;
    let (latencies, errors) = open_loop(target, max_rate / 2.0).await;
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index] as f64 / 1000.0
    };
    println!(
        "| {name} | {max_rate:.0} req/s | {:.2} ms | {:.2} ms | {:.2} ms | {errors} |",
        percentile(0.50),
        percentile(0.99),
        latencies.last().map_or(f64::NAN, |max| *max as f64 / 1000.0)
    );
    Ok(max_rate)
}

async fn closed_loop(target: &Target) -> f64 {
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let target = target.clone();
        workers.push(tokio::spawn(async move {
            let mut done = 0u64;
            while started.elapsed() < DURATION {
                if target.send().await {
                    done += 1;
                }
            }
            done
        }));
    }
    let mut total = 0u64;
    for worker in workers {
        total += worker.await.unwrap_or(0);
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Sends at `rate` per second for `DURATION`; returns sorted latencies (µs) and the error count.
async fn open_loop(target: &Target, rate: f64) -> (Vec<u64>, u64) {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let total = (rate * DURATION.as_secs_f64()) as u64;
    let in_flight = Arc::new(Semaphore::new(OPEN_LOOP_IN_FLIGHT));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for index in 0..total {
        let scheduled = started + interval.mul_f64(index as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else { break };
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let ok = target.send().await;
            drop(permit);
            (scheduled.elapsed().as_micros() as u64, ok)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for task in tasks {
        match task.await {
            Ok((latency, true)) => latencies.push(latency),
            _ => errors += 1,
        }
    }
    latencies.sort_unstable();
    (latencies, errors)
}
