//! `PaymentsApi` and the payment reconciliation over real HTTP on loopback, against the PayPal
//! sandbox ([`common::pay_app::PayApp`]).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};
use shared::auth::Role;
use shared::domain::tenant::TenantId;

use common::pay_app::{PayApp, TENANT};
use common::Reply;

#[tokio::test]
async fn a_payment_is_captured_once_and_replayed_with_its_key() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);

    let paid = app.pay(&client, "key-1", &order, "sandbox-ok").await;
    paid.expect_status(201);
    let id = paid.body["id"].as_str().unwrap().to_owned();
    assert_eq!(paid.body["status"], "captured");
    assert_eq!(paid.body["capturedCents"], 2500);
    assert_eq!(paid.body["amountCents"], 2500);
    assert_eq!(paid.body["currency"], "EUR");
    assert_eq!(
        paid.header("location"),
        Some(format!("/api/v1/payments/{id}").as_str())
    );
    let outbox = app.outbox_text().await;
    assert!(
        outbox.contains("captured") && outbox.contains(&id),
        "{outbox}"
    );
    assert_eq!(app.sandbox_state().await["captures"], 1);

    let again = app.pay(&client, "key-1", &order, "sandbox-ok").await;
    again.expect_status(200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body["id"], id.as_str());
    assert_eq!(
        app.sandbox_state().await["captures"],
        1,
        "no second capture"
    );

    app.pay(&client, "key-1", &order, "sandbox-other")
        .await
        .expect_problem(422);
    let unkeyed = app
        .post(
            "/payments",
            &client,
            &json!({"orderId": order, "paymentSource": {"vaultId": "sandbox-ok"}}),
        )
        .await;
    assert_eq!(
        unkeyed.expect_problem(400)["errors"][0]["field"],
        "Idempotency-Key"
    );

    let second = app.pay(&client, "key-2", &order, "sandbox-ok").await;
    assert_eq!(second.expect_problem(409)["paymentId"], id.as_str());

    let read = app.get(&format!("/payments/{id}"), &client).await;
    assert_eq!(read.expect_status(200).body["status"], "captured");
    let of_order = app.get(&format!("/orders/{order}/payments"), &client).await;
    assert_eq!(
        of_order.expect_status(200).body["payments"][0]["id"],
        id.as_str()
    );
    let listed = app
        .get(
            &format!("/payments?orderId={order}"),
            &app.employee(&[Role::CustomerService]),
        )
        .await;
    assert_eq!(
        listed.expect_status(200).body["items"][0]["id"],
        id.as_str()
    );
    app.get("/payments", &client).await.expect_problem(403);

    let stranger = app.client_of("someone-else");
    app.get(&format!("/payments/{id}"), &stranger)
        .await
        .expect_problem(404);
    app.get(&format!("/orders/{order}/payments"), &stranger)
        .await
        .expect_problem(404);
}

#[tokio::test]
async fn card_numbers_are_refused_and_nothing_is_stored() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    let body = json!({"orderId": order, "paymentSource": {"vaultId": "4111 1111 1111 1111"}});
    let refused = app.post_keyed("/payments", &client, "card-1", &body).await;
    assert_eq!(refused.expect_problem(400)["title"], "Card Data Refused");
    assert!(!refused.text.contains("4111"));
    let listed = app.get(&format!("/orders/{order}/payments"), &client).await;
    assert_eq!(listed.expect_status(200).body["payments"], json!([]));
    assert_eq!(app.sandbox_state().await["orders"], 0);
}

#[tokio::test]
async fn declines_fail_and_flaky_gateways_are_retried_with_the_same_request_id() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    let declined = app
        .pay(&client, "decline-1", &order, "sandbox-decline")
        .await;
    let problem = declined.expect_problem(402);
    assert_eq!(problem["failureCode"], "INSTRUMENT_DECLINED");
    let failed = app
        .get(
            &format!("/payments/{}", problem["paymentId"].as_str().unwrap()),
            &client,
        )
        .await;
    assert_eq!(failed.body["status"], "failed");

    // A failed payment does not hold the order: it may be paid again, here through a flaky
    // gateway that answers 503 twice per request id.
    let paid = app.pay(&client, "flaky-1", &order, "sandbox-flaky").await;
    paid.expect_status(201);
    assert_eq!(paid.body["status"], "captured");
    let id = paid.body["id"].as_str().unwrap();
    let attempts = &app.sandbox_state().await["request_attempts"];
    assert_eq!(attempts[id], 3, "{attempts}");
    assert_eq!(app.sandbox_state().await["captures"], 1);
}

#[tokio::test]
async fn concurrent_payments_of_one_order_capture_once() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    let pay = |key: &'static str| app.pay(&client, key, &order, "sandbox-ok");
    let (a, b, c, d, e) = tokio::join!(
        pay("race-1"),
        pay("race-2"),
        pay("race-3"),
        pay("race-4"),
        pay("race-5")
    );
    let statuses = [a.status, b.status, c.status, d.status, e.status];
    assert_eq!(
        statuses.iter().filter(|status| **status == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|status| [201, 409].contains(status)),
        "{statuses:?}"
    );
    assert_eq!(app.sandbox_state().await["captures"], 1);
}

#[tokio::test]
async fn refunds_stay_within_what_was_captured() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    let paid = app.pay(&client, "pay-1", &order, "sandbox-ok").await;
    let id = paid.expect_status(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/payments/{id}/refund");
    let admin = app.admin();

    app.post_keyed(&path, &client, "r-0", &json!({"amountCents": 100}))
        .await
        .expect_problem(403);
    let partial = app
        .post_keyed(
            &path,
            &admin,
            "r-1",
            &json!({"amountCents": 1000, "reason": "one returned"}),
        )
        .await;
    partial.expect_status(201);
    assert_eq!(partial.body["status"], "partiallyRefunded");
    assert_eq!(partial.body["refundedCents"], 1000);
    let over = app
        .post_keyed(&path, &admin, "r-2", &json!({"amountCents": 1600}))
        .await;
    assert_eq!(over.expect_problem(422)["refundableCents"], 1500);
    // The largest amount the schema takes is only more than is left; one digit more is invalid
    // (never read as a card number: amounts stop short of 13 digits).
    let largest = app
        .post_keyed(
            &path,
            &admin,
            "r-big",
            &json!({"amountCents": 99_999_999_999_i64}),
        )
        .await;
    assert_eq!(largest.expect_problem(422)["refundableCents"], 1500);
    let too_large = app
        .post_keyed(
            &path,
            &admin,
            "r-big",
            &json!({"amountCents": 100_000_000_000_i64}),
        )
        .await;
    let problem = too_large.expect_problem(400);
    assert_eq!(problem["errors"][0]["field"], "amountCents", "{problem}");
    let replay = app
        .post_keyed(
            &path,
            &admin,
            "r-1",
            &json!({"amountCents": 1000, "reason": "one returned"}),
        )
        .await;
    assert_eq!(
        replay.expect_status(200).header("idempotent-replayed"),
        Some("true")
    );
    let rest = app.post_keyed(&path, &admin, "r-3", &json!({})).await;
    assert_eq!(rest.expect_status(201).body["status"], "refunded");
    assert_eq!(app.sandbox_state().await["refunds"], 2);
}

#[tokio::test]
async fn webhooks_are_verified_deduplicated_and_settle_slow_captures() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);

    let forged = app
        .http
        .post(format!("{}/api/v1/payments/webhooks/paypal", app.base))
        .header("paypal-transmission-sig", "Zm9yZ2Vk")
        .header("content-type", "application/json")
        .body(r#"{"id":"WH-FORGED","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{}}"#);
    Reply::read(forged).await.expect_problem(400);
    let elsewhere = app
        .http
        .post(format!("{}/api/v1/payments/webhooks/stripe", app.base))
        .body("{}");
    Reply::read(elsewhere).await.expect_problem(404);

    let slow = app.pay(&client, "slow-1", &order, "sandbox-slow").await;
    slow.expect_status(202);
    assert_eq!(slow.body["status"], "authorized");
    let id = slow.body["id"].as_str().unwrap().to_owned();
    let settled = app.wait_for_status(&id, "captured").await;
    assert_eq!(settled["status"], "captured", "{settled}");

    let events: Value = app
        .http
        .get(format!("{}/sandbox/webhooks", app.sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let completed = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["event_type"] == "PAYMENT.CAPTURE.COMPLETED")
        .unwrap_or_else(|| panic!("{events}"));
    let before = app.webhook_answers.lock().unwrap().len();
    let replay = app
        .http
        .post(format!(
            "{}/sandbox/webhooks/replay/{}",
            app.sandbox.base_url(),
            completed["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert!(replay.status().is_success());
    // The replay is delivered in the background: the app answers "duplicate".
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let last = loop {
        let answers = app.webhook_answers.lock().unwrap().clone();
        if answers.len() > before || std::time::Instant::now() > deadline {
            break answers.last().cloned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(last, Some((200, json!({"status": "duplicate"}))));
    let answers = app.webhook_answers.lock().unwrap().clone();
    assert!(
        answers.contains(&(200, json!({"status": "applied"}))),
        "{answers:?}"
    );
    let after = app.get(&format!("/payments/{id}"), &client).await;
    assert_eq!(after.body["status"], "captured");
    assert_eq!(after.body["etag"], settled["etag"]);
}

#[tokio::test]
async fn only_payable_orders_of_the_caller_are_paid_by_the_roles_that_may() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let stranger = app.client_of("someone-else");
    app.pay(&stranger, "k-1", &order, "sandbox-ok")
        .await
        .expect_problem(404);
    let reader = app.employee(&[Role::CustomerService]);
    app.pay(&reader, "k-2", &order, "sandbox-ok")
        .await
        .expect_problem(403);
    let unknown_field =
        json!({"orderId": order, "paymentSource": {"vaultId": "sandbox-ok"}, "amountCents": 1});
    app.post_keyed(
        "/payments",
        &app.client_of(&customer),
        "k-3",
        &unknown_field,
    )
    .await
    .expect_problem(400);
    let cancel = json!({"status": "cancelled"});
    let cancelled = Reply::read(
        app.request(
            reqwest::Method::PUT,
            &format!("/orders/{order}/status"),
            &app.client_of(&customer),
        )
        .json(&cancel),
    )
    .await;
    cancelled.expect_status(200);
    let refused = app
        .pay(&app.client_of(&customer), "k-4", &order, "sandbox-ok")
        .await;
    assert_eq!(refused.expect_problem(409)["title"], "Order Not Payable");
    assert_eq!(app.sandbox_state().await["orders"], 0);
}

#[tokio::test]
async fn an_unreachable_gateway_leaves_the_payment_pending_and_a_retry_resumes_it() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    app.outage("unavailable").await;
    let down = app.pay(&client, "down-1", &order, "sandbox-ok").await;
    let problem = down.expect_problem(503).clone();
    assert!(down.header("retry-after").is_some());
    let id = problem["paymentId"].as_str().unwrap().to_owned();
    let pending = app.get(&format!("/payments/{id}"), &client).await;
    assert_eq!(pending.body["status"], "pending");

    app.outage("none").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let resumed = loop {
        let reply = app.pay(&client, "down-1", &order, "sandbox-ok").await;
        if reply.status != 503 || std::time::Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    resumed.expect_status(201);
    assert_eq!(resumed.body["id"], id.as_str(), "the same payment, resumed");
    assert_eq!(resumed.body["status"], "captured");
}

#[tokio::test]
async fn a_timed_out_payment_stays_unknown_until_reconciliation_settles_it_once() {
    let app = PayApp::start_with_timeout(Duration::from_secs(1)).await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    // The first attempt reaches PayPal and is answered after 1.5 s (the client gives up after
    // 1 s); PayPal then goes silent, so the retries with the same request id get no answer.
    let paying = app.pay(&client, "slow-1", &order, "sandbox-timeout");
    let outage = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        app.outage("refuse").await;
    };
    let (first, ()) = tokio::join!(paying, outage);
    first.expect_status(202);
    assert_eq!(first.body["status"], "unknown", "never reported failed");
    app.outage("none").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let id = first.body["id"].as_str().unwrap().to_owned();

    let mut reports = Vec::new();
    for _ in 0..4 {
        let report = app
            .run_job(&shared::jobs::PAYMENT_RECONCILIATION, None)
            .await;
        assert_eq!(report.outcome.as_str(), "finished", "{report:?}");
        reports.push(report);
        if app.get(&format!("/payments/{id}"), &client).await.body["status"] == "captured" {
            break;
        }
    }
    let settled = app.get(&format!("/payments/{id}"), &client).await;
    assert_eq!(settled.body["status"], "captured", "{reports:?}");
    assert_eq!(settled.body["capturedCents"], 2500);
    let settled_count: u64 = reports
        .iter()
        .map(|report| report.totals.get("paymentsSettled").copied().unwrap_or(0))
        .sum();
    assert!(settled_count >= 1, "{reports:?}");

    let again = app
        .run_job(&shared::jobs::PAYMENT_RECONCILIATION, None)
        .await;
    assert!(again.totals.is_empty(), "nothing left to settle: {again:?}");
    let sandbox = app.sandbox_state().await;
    assert_eq!(sandbox["captures"], 1, "captured exactly once: {sandbox}");
    assert!(
        app.outbox_text().await.contains("\"captured\""),
        "the capture is announced on payment-events"
    );
}

#[tokio::test]
async fn reconciliation_stops_while_the_gateway_is_down_and_settles_after() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    app.outage("unavailable").await;
    let down = app.pay(&client, "drill-1", &order, "sandbox-ok").await;
    let id = down.expect_problem(503)["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();

    let during = app
        .run_job(&shared::jobs::PAYMENT_RECONCILIATION, None)
        .await;
    assert_eq!(during.outcome.as_str(), "partial", "{during:?}");
    assert!(
        during.findings.contains_key("gatewayUnavailable"),
        "{during:?}"
    );
    assert_eq!(during.left.get("unsettledPayments"), Some(&1), "{during:?}");
    assert_eq!(
        app.get(&format!("/payments/{id}"), &client).await.body["status"],
        "pending"
    );

    app.outage("none").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the breaker lets a probe through
    let after = app
        .run_job(&shared::jobs::PAYMENT_RECONCILIATION, None)
        .await;
    assert_eq!(after.outcome.as_str(), "finished", "{after:?}");
    let settled = app.get(&format!("/payments/{id}"), &client).await;
    assert_eq!(settled.body["status"], "captured");
    assert_eq!(app.sandbox_state().await["captures"], 1);
    let retry = app.pay(&client, "drill-1", &order, "sandbox-ok").await;
    assert_eq!(
        retry.status, 200,
        "the client's retry replays: {:?}",
        retry.body
    );
    assert_eq!(retry.body["status"], "captured");
}

#[tokio::test]
async fn the_daily_comparison_matches_the_gateway_and_reports_each_mismatch() {
    let app = PayApp::start().await;
    let admin = app.admin();
    let mut ids = Vec::new();
    for key in ["day-1", "day-2"] {
        let (customer, order) = app.order().await;
        let paid = app
            .pay(&app.client_of(&customer), key, &order, "sandbox-ok")
            .await;
        ids.push(
            paid.expect_status(201).body["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.post_keyed(
        &format!("/payments/{}/refund", ids[0]),
        &admin,
        "day-refund",
        &json!({"amountCents": 500}),
    )
    .await
    .expect_status(201);
    let today = chrono::Utc::now().date_naive();

    let clean = app
        .run_job(&shared::jobs::PAYMENT_DAILY_RECONCILIATION, Some(today))
        .await;
    assert_eq!(clean.outcome.as_str(), "finished", "{clean:?}");
    assert_eq!(clean.findings["mismatches"], json!([]), "{clean:?}");
    assert_eq!(clean.findings["gatewayTransactions"], 3, "{clean:?}");

    // A refund the store learnt of (as from the gateway's dashboard) that the gateway's books
    // lack, and a capture amount that differs.
    let tenant = TenantId::new(TENANT).unwrap();
    let mut elsewhere = shared::domain::payment::PaymentUpdate::release(
        shared::domain::payment::UpdateSource::Reconciliation,
    );
    elsewhere.refund = Some(shared::domain::payment::RefundUpdate {
        refund_id: None,
        gateway_refund_id: Some("REFUND-NOT-AT-GATEWAY".into()),
        status: shared::domain::payment::RefundStatus::Completed,
        amount_cents: Some(100),
    });
    let audit =
        shared::domain::audit::AuditEntry::now(TENANT, "test", "t", "payment", &ids[1], "c");
    app.state
        .store
        .update_payment(&tenant, &ids[1], &elsewhere, None, audit)
        .await
        .unwrap();
    let db = app._dir.path().join("app.db");
    let connection = rusqlite::Connection::open(&db).unwrap();
    let changed = connection
        .execute(
            "UPDATE payments SET doc = json_set(doc, '$.capturedCents', 2400) WHERE id = ?1",
            [&ids[0]],
        )
        .unwrap();
    assert_eq!(changed, 1);

    let found = app
        .run_job(&shared::jobs::PAYMENT_DAILY_RECONCILIATION, Some(today))
        .await;
    let mismatches = found.findings["mismatches"].as_array().unwrap().clone();
    assert_eq!(mismatches.len(), 2, "{mismatches:?}");
    assert!(mismatches.iter().any(|m| m["kind"] == "missingThere"
        && m["movement"] == "refund"
        && m["transactionId"] == "REFUND-NOT-AT-GATEWAY"
        && m["paymentId"] == ids[1].as_str()));
    assert!(mismatches.iter().any(|m| m["kind"] == "amountDiffers"
        && m["movement"] == "capture"
        && m["gatewayCents"] == 2500
        && m["storeCents"] == 2400));
    assert_eq!(found.totals.get("missingThere"), Some(&1));
    assert_eq!(found.totals.get("amountDiffers"), Some(&1));
    let trail = app.get("/audit/logs?action=payment.mismatch", &admin).await;
    assert_eq!(
        trail.body["items"].as_array().map(Vec::len),
        Some(2),
        "one audit entry per mismatch: {:?}",
        trail.body
    );
}

/// The audit entries with `action` about the payment `id`.
async fn audited(app: &PayApp, action: &str, id: &str) -> usize {
    let reply = app
        .get(
            &format!("/audit/logs?action={action}&targetId={id}&limit=100"),
            &app.admin(),
        )
        .await;
    reply.expect_status(200).body["items"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn a_capture_declined_after_the_authorization_voids_it() {
    let app = PayApp::start().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);

    let declined = app
        .pay(&client, "cd-1", &order, "sandbox-capture-decline")
        .await;
    let problem = declined.expect_problem(402).clone();
    assert_eq!(
        (&problem["failureCode"], &problem["paymentStatus"]),
        (&json!("INSTRUMENT_DECLINED"), &json!("voided")),
        "{problem}"
    );
    let id = problem["paymentId"].as_str().unwrap().to_owned();
    let payment = app.get(&format!("/payments/{id}"), &client).await;
    let payment = payment.expect_status(200).body.clone();
    assert_eq!(payment["status"], "voided");
    assert_eq!(payment["failureCode"], "INSTRUMENT_DECLINED");
    assert_eq!(payment["capturedCents"], 0, "nothing was taken");
    assert!(
        payment["gateway"]["authorizationId"].is_string(),
        "{payment}"
    );
    assert!(
        payment.get("inFlightUntil").is_none(),
        "released: {payment}"
    );

    // PayPal was asked once to void, with the payment's own request id, and announced it.
    let state = app.sandbox_state().await;
    assert_eq!(state["captures"], 0);
    assert_eq!(
        state["request_attempts"][format!("{id}-void")],
        1,
        "{state}"
    );
    let hooks: Value = app
        .http
        .get(format!("{}/sandbox/webhooks", app.sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        hooks["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["event_type"] == "PAYMENT.AUTHORIZATION.VOIDED"),
        "{hooks}"
    );
    // Audited: the declined capture, then the void.
    assert_eq!(audited(&app, "payment.capture.declined", &id).await, 1);
    assert_eq!(audited(&app, "payment.void", &id).await, 1);
    // The state machine announces no event for a void (nothing was taken).
    let outbox = app.outbox_text().await;
    assert!(
        !outbox.contains("\"failed\"") && !outbox.contains("captured"),
        "{outbox}"
    );

    // A replay with the same key answers the voided payment and voids nothing again.
    let replay = app
        .pay(&client, "cd-1", &order, "sandbox-capture-decline")
        .await;
    replay.expect_status(200);
    assert_eq!(replay.body["status"], "voided");
    let state = app.sandbox_state().await;
    assert_eq!(state["request_attempts"][format!("{id}-void")], 1);
    // A voided payment does not hold the order: another source pays it.
    let paid = app.pay(&client, "cd-2", &order, "sandbox-ok").await;
    paid.expect_status(201);
    assert_eq!(paid.body["status"], "captured");
}

#[tokio::test]
async fn a_void_without_an_answer_leaves_the_payment_authorized_for_reconciliation() {
    let app = PayApp::start_with_void_fault().await;
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    app.fail_voids.store(true, Ordering::SeqCst);

    let declined = app
        .pay(&client, "cv-1", &order, "sandbox-capture-decline")
        .await;
    let problem = declined.expect_problem(402).clone();
    assert_eq!(problem["paymentStatus"], "authorized", "{problem}");
    let id = problem["paymentId"].as_str().unwrap().to_owned();
    let payment = app.get(&format!("/payments/{id}"), &client).await;
    let payment = payment.expect_status(200).body.clone();
    assert_eq!(
        (&payment["status"], &payment["failureCode"]),
        (&json!("authorized"), &json!("INSTRUMENT_DECLINED")),
        "authorized with the capture's decline: {payment}"
    );
    assert!(
        payment.get("inFlightUntil").is_none(),
        "released: {payment}"
    );
    // Reconciliation's query finds it (authorized is unsettled) once it is stale.
    let unsettled = app
        .state
        .ports
        .payments
        .unsettled_payments(chrono::Utc::now() + chrono::Duration::minutes(1), 10)
        .await
        .unwrap();
    assert!(
        unsettled.iter().any(|p| p.id == id && p.capture_declined()),
        "{unsettled:?}"
    );
    // It still holds the order until voided.
    let other = app.pay(&client, "cv-2", &order, "sandbox-ok").await;
    assert_eq!(other.expect_problem(409)["paymentId"], id.as_str());

    // PayPal is back: a retry with the same key voids it (same request id), capturing nothing.
    app.fail_voids.store(false, Ordering::SeqCst);
    let retried = app
        .pay(&client, "cv-1", &order, "sandbox-capture-decline")
        .await;
    let problem = retried.expect_problem(402).clone();
    assert_eq!(
        (&problem["paymentId"], &problem["paymentStatus"]),
        (&json!(id), &json!("voided")),
        "{problem}"
    );
    let state = app.sandbox_state().await;
    assert_eq!(
        state["request_attempts"][format!("{id}-capture")],
        1,
        "the declined capture is not sent again: {state}"
    );
    assert_eq!(audited(&app, "payment.void", &id).await, 1);
}

#[tokio::test]
async fn reconciliation_voids_what_a_declined_capture_left_and_never_captures_a_cancelled_order() {
    let app = PayApp::start_with_void_fault().await;
    let admin = app.admin();
    // A declined capture whose void got no answer: authorized with its failure code.
    let (customer, order) = app.order().await;
    let client = app.client_of(&customer);
    app.fail_voids.store(true, Ordering::SeqCst);
    let declined = app
        .pay(&client, "rv-1", &order, "sandbox-capture-decline")
        .await;
    let declined_id = declined.expect_problem(402)["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.fail_voids.store(false, Ordering::SeqCst);
    // A payment PayPal never saw, whose order is cancelled before it is settled.
    let (other_customer, cancelled_order) = app.order().await;
    app.outage("unavailable").await;
    let pending = app
        .pay(
            &app.client_of(&other_customer),
            "rv-2",
            &cancelled_order,
            "sandbox-ok",
        )
        .await;
    // Through the test's proxy PayPal's 503s come back as answers: unknown, not "not sent".
    assert!(matches!(pending.status, 202 | 503), "{:?}", pending.body);
    let pending_id = pending.body["id"]
        .as_str()
        .or_else(|| pending.body["paymentId"].as_str())
        .unwrap()
        .to_owned();
    app.outage("none").await;
    app.request(
        reqwest::Method::PUT,
        &format!("/orders/{cancelled_order}/status"),
        &admin,
    )
    .json(&json!({"status": "cancelled"}))
    .send()
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the breaker lets a probe through

    let report = app
        .run_job(&shared::jobs::PAYMENT_RECONCILIATION, None)
        .await;
    assert_eq!(report.outcome.as_str(), "finished", "{report:?}");
    assert_eq!(report.totals.get("declined"), Some(&1), "{report:?}");
    assert_eq!(
        report.totals.get("voidedOrderCancelled"),
        Some(&1),
        "{report:?}"
    );
    let voided = app.get(&format!("/payments/{declined_id}"), &admin).await;
    assert_eq!(voided.body["status"], "voided");
    assert_eq!(voided.body["failureCode"], "INSTRUMENT_DECLINED");
    let never_captured = app.get(&format!("/payments/{pending_id}"), &admin).await;
    assert_eq!(
        never_captured.body["status"], "voided",
        "{:?}",
        never_captured.body
    );
    assert_eq!(never_captured.body["failureCode"], "ORDER_CANCELLED");
    let sandbox = app.sandbox_state().await;
    assert_eq!(sandbox["captures"], 0, "nothing taken: {sandbox}");
    assert_eq!(
        audited(&app, "payment.capture.cancelled", &pending_id).await,
        1
    );
}
