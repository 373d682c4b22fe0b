//! No message lost, none taking effect twice, when `handler local` is killed with SIGKILL at
//! any moment: clients create orders (each with an `Idempotency-Key`, retried after a restart)
//! and request erasures while the process is killed at 20 different moments; in the end every
//! order has exactly one "order received" notification (its `created` event was relayed and
//! dispatched once) and every erasure request completed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{client, free_port, handler, wait_for, Running};
use serde_json::{json, Value};
use shared::auth::{DevIssuer, DevSubject, Role};
use shared::domain::tenant::TenantId;

const KILLS: u64 = 20;
const ERASURES: usize = 10;

struct App {
    base: String,
    issuer: DevIssuer,
}

impl App {
    fn token(&self, subject: DevSubject) -> String {
        let tenant = TenantId::new("t1").unwrap();
        self.issuer
            .token(&tenant, subject, Duration::from_secs(3600))
            .unwrap()
    }

    fn admin(&self) -> String {
        self.token(DevSubject::Employee {
            roles: [Role::Admin].into_iter().collect(),
        })
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Option<(u16, Value)> {
        let mut request = client()
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(self.admin());
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().unwrap_or(Value::Null)))
    }
}

fn start(dir: &Path, port: u16) -> Running {
    start_with(dir, port, &[])
}

fn start_with(dir: &Path, port: u16, flags: &[&str]) -> Running {
    let running = Running::spawn(
        handler(dir)
            .args(["local", "--port", &port.to_string()])
            .args(flags)
            .env("LOCAL_TIMERS", "false")
            .env("LOCAL_QUEUE_RETRY_DELAY_MS", "50")
            .env("LOCAL_QUEUE_LOCK_SECONDS", "2")
            .env("OUTBOX_LAG_DEGRADED_SECONDS", "1")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for(
        &format!("http://127.0.0.1:{port}/api/health/live"),
        Duration::from_secs(30),
        |status| status == 200,
    );
    running
}

/// One client creating orders as fast as answers come, until the process dies: each key's
/// order id when it got one, `None` when the answer was lost (to retry after the restart).
fn create_orders(
    app: &App,
    round: u64,
    body: &Value,
    stop: &AtomicBool,
    outcomes: &Mutex<BTreeMap<String, Option<String>>>,
) {
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let key = format!("kill-{round}-{n}");
        let answer = app.call(reqwest::Method::POST, "/orders", Some(body), Some(&key));
        let order = answer.and_then(|(status, value)| {
            (status == 201)
                .then(|| value["id"].as_str().map(str::to_owned))
                .flatten()
        });
        let lost = order.is_none();
        outcomes.lock().unwrap().insert(key, order);
        if lost {
            return;
        }
    }
}

/// A data folder with the tests' dev key, and the app that will run on it.
fn prepare(dir: &Path) -> App {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    common::jwks::install_dev_key(&data);
    App {
        base: format!("http://127.0.0.1:{}", free_port()),
        issuer: DevIssuer::load_or_create(&data).unwrap(),
    }
}

impl App {
    fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// A product with plenty of stock and a customer; the order body for that customer.
    fn seed(&self) -> (String, Value) {
        let product = self
            .call(reqwest::Method::POST, "/products", Some(&json!({"name": "Kettle", "category": "kitchen", "priceCents": 1250, "currency": "EUR", "stock": 1_000_000})), None)
            .unwrap();
        assert_eq!(product.0, 201, "{product:?}");
        let customer = self
            .call(
                reqwest::Method::POST,
                "/customers",
                Some(&json!({"name": "Ada Buyer", "email": "ada@example.org"})),
                None,
            )
            .unwrap();
        assert_eq!(customer.0, 201, "{customer:?}");
        let customer_id = customer.1["id"].as_str().unwrap().to_owned();
        let body = json!({"customerId": customer_id, "items": [{"productId": product.1["id"], "quantity": 1}]});
        (customer_id, body)
    }
}

#[test]
fn with_the_relay_stopped_messages_wait_and_readiness_says_so_then_all_arrive_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = prepare(dir.path());
    let port = app.port();
    let mut running = start_with(dir.path(), port, &["--no-relay"]);
    let (customer_id, body) = app.seed();
    let mut orders = BTreeSet::new();
    for n in 0..12 {
        let (status, order) = app
            .call(
                reqwest::Method::POST,
                "/orders",
                Some(&body),
                Some(&format!("k-{n}")),
            )
            .unwrap();
        assert_eq!(status, 201);
        orders.insert(order["id"].as_str().unwrap().to_owned());
    }
    std::thread::sleep(Duration::from_millis(1500));
    let (status, ready) = common::process::get(&format!("{}/api/health/ready", app.base)).unwrap();
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(
        ready["outbox"]["lagSeconds"].as_f64().unwrap() >= 1.0,
        "{ready}"
    );
    assert!(
        notification_counts(&app, &customer_id).is_empty(),
        "nothing relayed while stopped"
    );
    running.stop();
    let mut running = start(dir.path(), port);
    let counts = wait_for_notifications(&app, &customer_id, &orders);
    assert_eq!(counts.len(), orders.len());
    assert!(counts.values().all(|count| *count == 1), "{counts:?}");
    // The dispatch writes email deliveries to the outbox as it handles the events: the relay
    // drains those too, so the lag reaches zero once they are sent.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let (_, ready) = common::process::get(&format!("{}/api/health/ready", app.base)).unwrap();
        let ready: Value = serde_json::from_str(&ready).unwrap();
        if ready["outbox"]["lagSeconds"] == 0.0 || std::time::Instant::now() > deadline {
            break ready;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["outbox"]["lagSeconds"], 0.0, "{ready}");
    running.stop();
}

#[test]
fn every_committed_order_and_erasure_takes_effect_once_across_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let app = prepare(dir.path());
    let port = app.port();
    let mut running = Some(start(dir.path(), port));
    let product = app
        .call(reqwest::Method::POST, "/products", Some(&json!({"name": "Kettle", "category": "kitchen", "priceCents": 1250, "currency": "EUR", "stock": 1_000_000})), None)
        .unwrap();
    assert_eq!(product.0, 201, "{product:?}");
    let customer = app
        .call(
            reqwest::Method::POST,
            "/customers",
            Some(&json!({"name": "Ada Buyer", "email": "ada@example.org"})),
            None,
        )
        .unwrap();
    assert_eq!(customer.0, 201, "{customer:?}");
    let customer_id = customer.1["id"].as_str().unwrap().to_owned();
    let mut erased: Vec<String> = Vec::new();
    for n in 0..ERASURES {
        let (status, body) = app
            .call(reqwest::Method::POST, "/customers", Some(&json!({"name": format!("Erased {n}"), "email": format!("erased{n}@example.org")})), None)
            .unwrap();
        assert_eq!(status, 201);
        erased.push(body["id"].as_str().unwrap().to_owned());
    }
    let order_body = json!({"customerId": customer_id, "items": [{"productId": product.1["id"], "quantity": 1}]});
    let outcomes: Arc<Mutex<BTreeMap<String, Option<String>>>> = Arc::default();
    let mut requested: BTreeSet<String> = BTreeSet::new();
    let retried = std::sync::atomic::AtomicUsize::new(0);
    for round in 0..KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| create_orders(&app, round, &order_body, &stop, &outcomes));
            // Erasure requests in flight too, for the first rounds.
            if let Some(id) = erased.get(round as usize) {
                let _ = app.call(
                    reqwest::Method::DELETE,
                    &format!("/customers/{id}"),
                    None,
                    None,
                );
                requested.insert(id.clone());
            }
            // A different moment each round: 15 ms to about 0.8 s after the restart.
            std::thread::sleep(Duration::from_millis(15 + (round * 211) % 800));
            drop(running.take());
            stop.store(true, Ordering::Relaxed);
            worker.join().unwrap();
        });
        running = Some(start(dir.path(), port));
        retried.fetch_add(
            retry_lost_orders(&app, &order_body, &outcomes),
            Ordering::Relaxed,
        );
    }
    // Erasure requests whose answer was lost are asked again (the same open request answers).
    for id in &erased {
        let (status, _) = app
            .call(
                reqwest::Method::DELETE,
                &format!("/customers/{id}"),
                None,
                None,
            )
            .unwrap();
        assert_eq!(status, 202);
    }
    let orders: BTreeSet<String> = outcomes
        .lock()
        .unwrap()
        .values()
        .map(|order| order.clone().expect("every order retried to success"))
        .collect();
    eprintln!(
        "{} orders over {KILLS} kills, {} of them retried after a lost answer",
        orders.len(),
        retried.load(Ordering::Relaxed)
    );
    assert!(
        orders.len() >= KILLS as usize,
        "only {} orders were created",
        orders.len()
    );
    let created = wait_for_notifications(&app, &customer_id, &orders);
    let duplicates: Vec<_> = created.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        duplicates.is_empty(),
        "orders notified more than once: {duplicates:?}"
    );
    assert_eq!(
        created.len(),
        orders.len(),
        "every order's created event processed"
    );
    wait_for_erasures(&app, &erased);
    if let Some(mut running) = running {
        running.stop();
    }
}

/// Retries every order whose answer was lost; how many.
fn retry_lost_orders(
    app: &App,
    body: &Value,
    outcomes: &Mutex<BTreeMap<String, Option<String>>>,
) -> usize {
    let lost: Vec<String> = outcomes
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, order)| order.is_none())
        .map(|(key, _)| key.clone())
        .collect();
    let count = lost.len();
    for key in lost {
        let (status, answer) = app
            .call(reqwest::Method::POST, "/orders", Some(body), Some(&key))
            .unwrap();
        assert_eq!(status, 201, "retry of {key}: {answer}");
        outcomes
            .lock()
            .unwrap()
            .insert(key, answer["id"].as_str().map(str::to_owned));
    }
    count
}

/// Waits until every order has its "order received" notification; the count per order.
fn wait_for_notifications(
    app: &App,
    customer_id: &str,
    orders: &BTreeSet<String>,
) -> BTreeMap<String, usize> {
    let started = Instant::now();
    loop {
        let counts = notification_counts(app, customer_id);
        if orders.iter().all(|order| counts.contains_key(order))
            || started.elapsed() > Duration::from_secs(120)
        {
            return counts;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The customer's "order received" notifications, counted per order.
fn notification_counts(app: &App, customer_id: &str) -> BTreeMap<String, usize> {
    let token = app.token(DevSubject::Client {
        customer_id: customer_id.to_owned(),
    });
    {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut continuation: Option<String> = None;
        loop {
            let mut url = format!("{}/api/v1/notifications?limit=100", app.base);
            if let Some(token) = &continuation {
                url.push_str(&format!("&continuation={}", urlencode(token)));
            }
            let page: Value = client()
                .get(url)
                .bearer_auth(&token)
                .send()
                .unwrap()
                .json()
                .unwrap();
            for item in page["items"].as_array().unwrap() {
                if item["category"] == "order.created" {
                    *counts
                        .entry(item["orderId"].as_str().unwrap().to_owned())
                        .or_default() += 1;
                }
            }
            match page["continuation"].as_str() {
                Some(next) => continuation = Some(next.to_owned()),
                None => break,
            }
        }
        counts
    }
}

fn wait_for_erasures(app: &App, customers: &[String]) {
    let started = Instant::now();
    for id in customers {
        loop {
            let (status, body) = app
                .call(
                    reqwest::Method::GET,
                    &format!("/customers/{id}"),
                    None,
                    None,
                )
                .unwrap();
            if status == 200 && body["status"] == "erased" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "customer {id} not erased: {status} {body}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
