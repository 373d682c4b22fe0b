//! The EasyPost adapter against a loopback fake that records what it receives and answers as
//! EasyPost documents: the exact requests (paths, HTTP Basic with the key as user name and no
//! password, the `shipment`/`rate` envelopes, inches and ounces), the answers read (rates as
//! decimal strings, the bought label with its tracker, a tracker's scans and `max-age`), and
//! EasyPost's error body read as a refusal with its code only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use shared::domain::shipment::TrackingStatus;
use shared::outbound::Secret;
use shared::shipping::easypost::{EasyPost, EasyPostConfig};
use shared::shipping::{Carrier, CarrierError, Parcel, ShipAddress, ShipmentRequest};

type Seen = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

async fn record(seen: &Seen, path: String, headers: &HeaderMap, body: Value) {
    let auth = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    seen.lock().unwrap().push((path, auth, body));
}

async fn fake() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/v2/shipments",
            post(|State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>| async move {
                let refuse = body["shipment"]["to_address"]["street1"] == "nowhere";
                record(&seen, "/v2/shipments".into(), &headers, body).await;
                if refuse {
                    let error = json!({"error": {"code": "ADDRESS.VERIFY.FAILURE", "message": "Address not found at 1 Secret Lane", "errors": [{"field": "street1", "message": "House number is missing", "suggestion": null}]}});
                    return (StatusCode::UNPROCESSABLE_ENTITY, Json(error)).into_response();
                }
                (StatusCode::CREATED, Json(json!({
                    "id": "shp_123", "object": "Shipment", "mode": "test",
                    "rates": [
                        {"id": "rate_b", "object": "Rate", "carrier": "USPS", "service": "Priority", "rate": "7.58", "currency": "USD", "delivery_days": 2, "shipment_id": "shp_123"},
                        {"id": "rate_a", "object": "Rate", "carrier": "USPS", "service": "GroundAdvantage", "rate": "5.2", "currency": "USD", "delivery_days": null, "shipment_id": "shp_123"}
                    ],
                    "tracking_code": null, "postage_label": null, "selected_rate": null, "tracker": null,
                    "messages": []
                }))).into_response()
            }),
        )
        .route(
            "/v2/shipments/{id}/buy",
            post(|State(seen): State<Seen>, Path(id): Path<String>, headers: HeaderMap, Json(body): Json<Value>| async move {
                record(&seen, format!("/v2/shipments/{id}/buy"), &headers, body).await;
                Json(json!({
                    "id": id, "object": "Shipment", "rates": [],
                    "tracking_code": "9400100000000000000000",
                    "postage_label": {"object": "PostageLabel", "label_url": "https://easypost-files.example/label.png", "label_file_type": "image/png"},
                    "selected_rate": {"id": "rate_a", "carrier": "USPS", "service": "GroundAdvantage", "rate": "5.20", "currency": "USD"},
                    "tracker": {"id": "trk_9", "object": "Tracker", "status": "pre_transit", "tracking_code": "9400100000000000000000"}
                }))
            }),
        )
        .route(
            "/v2/trackers/{id}",
            get(|State(seen): State<Seen>, Path(id): Path<String>, headers: HeaderMap| async move {
                record(&seen, format!("/v2/trackers/{id}"), &headers, Value::Null).await;
                (
                    [("cache-control", "private, max-age=120")],
                    Json(json!({
                        "id": id, "object": "Tracker", "mode": "test", "tracking_code": "9400100000000000000000",
                        "status": "in_transit", "status_detail": "arrived_at_facility",
                        "est_delivery_date": "2026-12-05T00:00:00Z",
                        "tracking_details": [
                            {"object": "TrackingDetail", "message": "Pre-Shipment information received", "status": "pre_transit", "datetime": "2026-12-03T08:00:00Z", "tracking_location": {"city": null, "state": null, "country": null, "zip": null}},
                            {"object": "TrackingDetail", "message": "Arrived at USPS Facility", "status": "in_transit", "datetime": "2026-12-03T14:00:00Z", "tracking_location": {"city": "BERLIN", "state": null, "country": "DE", "zip": "10115"}},
                            {"object": "TrackingDetail", "message": "Teleported", "status": "a_future_status", "datetime": "2026-12-03T15:00:00Z", "tracking_location": {}}
                        ]
                    })),
                )
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}"), seen)
}

fn adapter(base_url: String) -> EasyPost {
    EasyPost::new(EasyPostConfig {
        base_url,
        api_key: Secret::new("EZTKtestkey"),
        timeout: Duration::from_secs(5),
        breaker_open_for: Duration::from_secs(30),
    })
    .unwrap()
}

fn request(street: &str) -> ShipmentRequest {
    let address = |name: Option<&str>, line1: &str| ShipAddress {
        name: name.map(str::to_owned),
        line1: line1.to_owned(),
        line2: None,
        city: "Berlin".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
    };
    ShipmentRequest {
        reference: "order-1".into(),
        from: address(Some("Warehouse"), "1 Warehouse Way"),
        to: address(Some("Ada Lovelace"), street),
        parcel: Parcel {
            weight_oz: 32.0,
            length_in: 12.0,
            width_in: 10.0,
            height_in: 6.0,
        },
    }
}

#[tokio::test]
async fn a_shipment_is_created_bought_and_tracked_as_easypost_documents() {
    let (base, seen) = fake().await;
    let carrier = adapter(base);
    let quoted = carrier
        .create_shipment(&request("1 Main St"))
        .await
        .unwrap();
    assert_eq!(quoted.id, "shp_123");
    let cents: Vec<i64> = quoted.rates.iter().map(|rate| rate.amount_cents).collect();
    assert_eq!(cents, vec![758, 520], "decimal strings read as cents");
    let cheapest = quoted.cheapest().unwrap();
    assert_eq!(cheapest.id, "rate_a");

    let label = carrier.buy_label(&quoted.id, &cheapest.id).await.unwrap();
    assert_eq!(label.tracking_number, "9400100000000000000000");
    assert_eq!(label.tracker_id.as_deref(), Some("trk_9"));
    assert_eq!(label.service.as_deref(), Some("USPS GroundAdvantage"));
    assert_eq!(label.status, TrackingStatus::PreTransit);

    let tracking = carrier.tracker("trk_9").await.unwrap();
    assert_eq!(tracking.status, TrackingStatus::InTransit);
    assert_eq!(tracking.max_age, Some(Duration::from_secs(120)));
    let statuses: Vec<TrackingStatus> = tracking.events.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        vec![
            TrackingStatus::PreTransit,
            TrackingStatus::InTransit,
            TrackingStatus::Unknown
        ],
        "a status EasyPost adds later reads as unknown"
    );

    let seen = seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|(path, _, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v2/shipments",
            "/v2/shipments/shp_123/buy",
            "/v2/trackers/trk_9"
        ]
    );
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("EZTKtestkey:")
    );
    assert!(seen
        .iter()
        .all(|(_, auth, _)| auth.as_deref() == Some(expected_auth.as_str())));
    let shipment = &seen[0].2["shipment"];
    assert_eq!(shipment["reference"], "order-1");
    assert_eq!(shipment["to_address"]["street1"], "1 Main St");
    assert_eq!(shipment["to_address"]["zip"], "10115");
    assert_eq!(shipment["to_address"]["name"], "Ada Lovelace");
    assert_eq!(shipment["from_address"]["street1"], "1 Warehouse Way");
    assert_eq!(
        shipment["parcel"],
        json!({"length": 12.0, "width": 10.0, "height": 6.0, "weight": 32.0})
    );
    assert_eq!(seen[1].2, json!({"rate": {"id": "rate_a"}}));
}

#[tokio::test]
async fn an_easypost_error_is_a_refusal_with_its_code_and_never_its_message() {
    let (base, _) = fake().await;
    let carrier = adapter(base);
    let error = carrier
        .create_shipment(&request("nowhere"))
        .await
        .unwrap_err();
    match &error {
        CarrierError::Refused { status, code, .. } => {
            assert_eq!(
                (*status, code.as_deref()),
                (422, Some("ADDRESS.VERIFY.FAILURE"))
            );
        }
        other => panic!("not a refusal: {other:?}"),
    }
    assert!(!error.is_transient());
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains("Secret Lane"),
        "the message may repeat the address: {shown}"
    );
}
