//! Local mode over real HTTP on loopback: HTTP functions at their routes (forwarded or
//! enveloped as the host decides), the admin API, the durable queue with peek-lock delivery,
//! retries and dead-lettering, topic fan-out, timers on their schedules with status kept
//! across restarts.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{client, poll_json_until as wait_for, settings, spawn_local};
use function_app::local::ncrontab::Schedule;
use function_app::local::timers::{fire, run_timer, TimerStatusStore};
use function_app::local::LocalRuntime;
use function_app::registry;
use function_app::startup::{AppState, Mode};
use serde_json::{json, Value};

async fn local(dir: &std::path::Path) -> (SocketAddr, LocalRuntime) {
    let runtime = LocalRuntime::new(AppState::open(settings(dir, &[]), Mode::Local).unwrap());
    (spawn_local(runtime.clone()).await, runtime)
}

#[tokio::test]
async fn http_functions_answer_at_their_routes_forwarded_or_enveloped() {
    let dir = tempfile::tempdir().unwrap();
    let (address, _) = local(dir.path()).await;
    let ready = client()
        .get(format!("http://{address}/api/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // CustomersApi has a Service Bus output, so it goes through the `req` envelope and `res`;
    // without a token it answers 401 with a problem document and a bearer challenge.
    let customers = client()
        .get(format!("http://{address}/api/v1/customers/c-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(customers.status(), 401);
    assert_eq!(
        customers.headers()["content-type"],
        "application/problem+json"
    );
    assert!(customers.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let wrong_method = client()
        .post(format!("http://{address}/api/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let nothing = client()
        .get(format!("http://{address}/api/nothing/here"))
        .send()
        .await
        .unwrap();
    assert_eq!(nothing.status(), 404);
}

#[tokio::test]
async fn admin_api_runs_a_timer_function_through_the_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let (address, _) = local(dir.path()).await;
    let response = client()
        .post(format!(
            "http://{address}/admin/functions/DataRetentionCleanup"
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let outcome: Value = response.json().await.unwrap();
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(outcome["reply"]["ReturnValue"]["timer"]["isPastDue"], false);
    let http = client()
        .post(format!("http://{address}/admin/functions/Health"))
        .send()
        .await
        .unwrap();
    assert_eq!(http.status(), 404);
    let unknown = client()
        .post(format!("http://{address}/admin/functions/Nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let functions: Value = client()
        .get(format!("http://{address}/admin/functions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        functions.as_array().unwrap().len(),
        registry::FUNCTIONS.len()
    );
}

#[tokio::test]
async fn a_failing_message_is_retried_then_dead_lettered_with_its_reason_and_can_be_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (address, runtime) = local(dir.path()).await;
    let sent = client()
        .post(format!(
            "http://{address}/admin/queues/gdpr-requests/messages"
        ))
        .body("this is not an erasure request")
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    let dead = wait_for(
        &format!("http://{address}/admin/deadletters?entity=gdpr-requests"),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|items| !items.is_empty()),
    )
    .await;
    let letter = &dead[0];
    assert_eq!(
        letter["deliveryCount"], 10,
        "delivered exactly maxDeliveryCount times: {letter}"
    );
    assert_eq!(letter["deadLetterReason"], "MaxDeliveryCountExceeded");
    assert!(
        letter["lastError"].as_str().unwrap().contains("bad input"),
        "{letter}"
    );
    assert_eq!(letter["body"], "this is not an erasure request");
    assert!(runtime
        .host
        .queue()
        .peek("gdpr-requests")
        .await
        .unwrap()
        .is_empty());

    let sequence = letter["sequenceNumber"].as_i64().unwrap();
    let replay = client()
        .post(format!(
            "http://{address}/admin/deadletters/{sequence}/replay"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    let replayed: Value = replay.json().await.unwrap();
    let new_sequence = replayed["sequenceNumber"].as_i64().unwrap();
    assert!(new_sequence > sequence);
    // Still failing, so it runs its ten deliveries again and comes back as a new dead letter.
    wait_for(
        &format!("http://{address}/admin/deadletters"),
        Duration::from_secs(20),
        |v| {
            v.as_array().is_some_and(|items| {
                items.len() == 1
                    && items[0]["sequenceNumber"] == new_sequence
                    && items[0]["deliveryCount"] == 10
            })
        },
    )
    .await;
    let again = client()
        .post(format!(
            "http://{address}/admin/deadletters/{sequence}/replay"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "a dead letter is replayed once");
}

#[tokio::test]
async fn topic_messages_reach_the_subscribed_function() {
    let dir = tempfile::tempdir().unwrap();
    let (address, _) = local(dir.path()).await;
    let event = json!({"eventId": "e-1", "eventType": "shipped", "tenantId": "t-1", "orderId": "o-1", "customerId": "c-1", "occurredAt": "2026-11-21T02:00:00Z"});
    let sent = client()
        .post(format!(
            "http://{address}/admin/queues/order-events/messages"
        ))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    // NotificationDispatch consumes it (the customer does not exist, so it completes without
    // effect): the subscription empties, proving topic -> subscription -> function.
    wait_for(
        &format!("http://{address}/admin/messages?entity=order-events/subscriptions/notifications"),
        Duration::from_secs(20),
        |v| v.as_array().is_some_and(|items| items.is_empty()),
    )
    .await;
    let dead: Value = client()
        .get(format!("http://{address}/admin/deadletters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dead, json!([]), "nothing failed");
    let unknown = client()
        .post(format!("http://{address}/admin/queues/nowhere/messages"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn timer_fires_on_its_schedule_and_its_status_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let runtime =
        LocalRuntime::new(AppState::open(settings(dir.path(), &[]), Mode::Local).unwrap());
    let def = registry::find("NotificationCleanup").unwrap();
    let every_second = Schedule::parse("* * * * * *").unwrap();
    let timer = tokio::spawn(run_timer(
        runtime.host.clone(),
        runtime.timer_status.clone(),
        def,
        every_second,
    ));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = runtime.timer_status.load(def.name).await.unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the timer never fired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    timer.abort();
    assert!(status.next > status.last);
    drop(runtime);

    // A new process on the same data: the status is still there, and an occurrence that passed
    // while it was down runs as past due.
    let reopened =
        LocalRuntime::new(AppState::open(settings(dir.path(), &[]), Mode::Local).unwrap());
    let kept = TimerStatusStore::new(reopened.state.db.clone())
        .load(def.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.last, status.last);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let missed = shared::protocol::ScheduleStatus {
        next: kept.next - chrono::Duration::hours(1),
        ..kept
    };
    let reply = fire(
        &reopened.host,
        &reopened.timer_status,
        def,
        &Schedule::parse("0 0 1 * * *").unwrap(),
        Some(missed),
        missed.next,
    )
    .await
    .unwrap();
    assert_eq!(reply.return_value["timer"]["isPastDue"], true);
    let after = reopened.timer_status.load(def.name).await.unwrap().unwrap();
    assert_eq!(after.last, missed.next);
    assert!(
        after.next > chrono::Utc::now(),
        "the next run is in the future, not a replay of missed ones"
    );
}
