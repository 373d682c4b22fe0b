//! Benchmark: what the outbound client adds to a call. Starts a loopback axum server (a tiny
//! JSON route and a token endpoint), then makes the same sequential calls with a bare
//! `reqwest::Client` and with an `OutboundClient` (token cached, breaker closed), and prints
//! the p50/p99 latency of each and the difference.
//!
//! `scripts/bench-outbound [CALLS]` (default 20,000 per side, interleaved in rounds of 100; the
//! run stops after 2 minutes whatever the count).

use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::{Json, Router};
use shared::outbound::{
    ClientCredentials, OutboundClient, OutboundConfig, OutboundRequest, Secret,
};

const TIME_LIMIT: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 20_000,
    };
    let base = serve().await?;
    let bare = reqwest::Client::new();
    let mut config = OutboundConfig::new("bench", base.clone());
    config.auth = Some(ClientCredentials {
        token_url: "/token".into(),
        client_id: "bench".into(),
        client_secret: Secret::new("bench"),
        scope: None,
    });
    let outbound = OutboundClient::with_http(reqwest::Client::new(), config)?;
    let url = format!("{base}/ping");

    // Warm-up: connections open, token cached.
    for _ in 0..200 {
        bare.get(&url).send().await?.bytes().await?;
        outbound.send(OutboundRequest::get("/ping")).await?;
    }

    let mut plain = Vec::with_capacity(calls);
    let mut wrapped = Vec::with_capacity(calls);
    let started = Instant::now();
    // Interleaved in rounds of 100 so both sides see the same machine load.
    while plain.len() < calls && started.elapsed() < TIME_LIMIT {
        for _ in 0..100.min(calls - plain.len()) {
            let t = Instant::now();
            bare.get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            plain.push(t.elapsed());
        }
        for _ in 0..100.min(calls - wrapped.len()) {
            let t = Instant::now();
            outbound.send(OutboundRequest::get("/ping")).await?;
            wrapped.push(t.elapsed());
        }
    }
    let (p50_plain, p99_plain) = percentiles(&mut plain);
    let (p50_out, p99_out) = percentiles(&mut wrapped);
    println!("calls per side: {}", plain.len());
    println!("plain reqwest:  p50 {p50_plain:>8.1} µs   p99 {p99_plain:>8.1} µs");
    println!("OutboundClient: p50 {p50_out:>8.1} µs   p99 {p99_out:>8.1} µs");
    println!(
        "added:          p50 {:>8.1} µs   p99 {:>8.1} µs",
        p50_out - p50_plain,
        p99_out - p99_plain
    );
    Ok(())
}

async fn serve() -> std::io::Result<String> {
    let app = Router::new()
        .route(
            "/ping",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
        .route(
            "/token",
            post(|| async {
                Json(serde_json::json!({
                    "access_token": "bench-token", "token_type": "Bearer", "expires_in": 3600
                }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// p50 and p99 in microseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    (at(0.50), at(0.99))
}
