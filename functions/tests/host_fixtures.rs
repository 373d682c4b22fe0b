//! The protocol types read the host's own payloads (fixtures under `tests/fixtures/host`,
//! taken from Azure/azure-functions-host; SOURCES.md says where each comes from) into the
//! exact typed values, quirks included.

mod common;

use chrono::{DateTime, Utc};
use common::{fixture, fixture_request};
use serde_json::{json, Value};
use shared::protocol::{
    output_messages, HttpRequestData, HttpResponseData, InvocationResponse, ServiceBusMessage,
    SignalRConnectionInfo, TimerInfo,
};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("test date")
}

#[test]
fn timer_with_schedule_status() {
    let request = fixture_request("timer_request.json");
    let timer = TimerInfo::from_request(&request, "myTimer").unwrap();
    let status = timer.schedule_status.expect("status present");
    assert_eq!(status.last, at("2024-05-01T09:55:00.0154512Z"));
    assert_eq!(status.next, at("2024-05-01T10:00:00Z"));
    assert_eq!(status.last_updated, at("2024-05-01T09:55:00.0154512Z"));
    assert!(!timer.is_past_due);
    assert_eq!(timer.schedule, json!({"AdjustForDST": true}));
    let sys = request.sys();
    assert_eq!(sys.method_name.as_deref(), Some("CleanupTimer"));
    assert_eq!(sys.utc_now, Some(at("2024-05-01T10:00:00.0187311Z")));
    assert_eq!(
        sys.rand_guid.as_deref(),
        Some("0b9e8d7c-6a5f-4e3d-9c2b-1a0f9e8d7c6b")
    );
}

#[test]
fn timer_without_monitoring_has_no_status() {
    let timer =
        TimerInfo::from_request(&fixture_request("timer_request_first_run.json"), "myTimer")
            .unwrap();
    assert_eq!(timer.schedule_status, None);
}

#[test]
fn timer_that_never_ran_has_the_minimum_date_without_zone() {
    let timer =
        TimerInfo::from_request(&fixture_request("timer_request_never_run.json"), "myTimer")
            .unwrap();
    let status = timer.schedule_status.unwrap();
    assert_eq!(status.last, at("0001-01-01T00:00:00Z"));
    assert_eq!(status.next, at("2024-05-01T10:00:00Z"));
}

#[test]
fn service_bus_message_with_triple_encoded_body_and_double_encoded_metadata() {
    let request = fixture_request("servicebus_request.json");
    let message: ServiceBusMessage<Value> =
        ServiceBusMessage::from_request(&request, "msg").unwrap();
    assert_eq!(message.body["orderId"], "ord-1001");
    assert_eq!(message.body["items"][0]["quantity"], 3);
    assert_eq!(message.message_id, "6f1c2b9a0d3e4f5a8b7c6d5e4f3a2b1c");
    assert_eq!(message.delivery_count, 1);
    assert_eq!(message.enqueued_time_utc, Some(at("2024-05-01T09:54:58Z")));
    assert_eq!(
        message.correlation_id.as_deref(),
        Some("c0ffee00-0000-4000-8000-000000000001")
    );
    assert_eq!(message.content_type.as_deref(), Some("application/json"));
    assert_eq!(message.application_properties["tenantId"], "t-001");
    assert_eq!(message.application_properties["schemaVersion"], 2);
    assert_eq!(
        message.sys.method_name.as_deref(),
        Some("ProcessOrderEvent")
    );
}

#[test]
fn service_bus_body_types_pick_the_right_decoding() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Line {
        order_id: String,
        line_no: u32,
    }
    let request = fixture_request("servicebus_request_string_body.json");
    let lines: ServiceBusMessage<Vec<Line>> =
        ServiceBusMessage::from_request(&request, "msg").unwrap();
    assert_eq!(
        lines.body,
        vec![
            Line {
                order_id: "ord-1002".into(),
                line_no: 1
            },
            Line {
                order_id: "ord-1002".into(),
                line_no: 2
            }
        ]
    );
    assert_eq!(lines.delivery_count, 2);
    let text: ServiceBusMessage<String> = ServiceBusMessage::from_request(&request, "msg").unwrap();
    assert_eq!(
        text.body,
        r#"[{"orderId":"ord-1002","lineNo":1},{"orderId":"ord-1002","lineNo":2}]"#
    );
}

#[test]
fn service_bus_body_of_the_wrong_type_is_a_clear_error() {
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Erasure {
        customer: String,
    }
    let error = ServiceBusMessage::<Erasure>::from_request(
        &fixture_request("servicebus_request.json"),
        "msg",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("binding `msg`") && error.contains("Erasure"),
        "{error}"
    );
}

#[test]
fn http_request_envelope_current_shape() {
    let data = HttpRequestData::from_request(&fixture_request("http_request.json"), "req").unwrap();
    assert_eq!(data.method, "POST");
    assert_eq!(data.query["include"], "items");
    assert_eq!(data.params["orderId"], "ord-1001");
    assert_eq!(
        data.headers["Content-Type"],
        vec!["application/json".to_owned()]
    );
    let request = data.to_http_request().unwrap();
    assert_eq!(
        request.uri().to_string(),
        "/api/orders/ord-1001?include=items"
    );
    assert_eq!(request.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(body, json!({"sku": "sku-42", "quantity": 3}));
}

#[test]
fn http_request_envelope_legacy_shape_with_query_as_string() {
    let legacy =
        HttpRequestData::from_request(&fixture_request("http_request_query_string.json"), "req")
            .unwrap();
    let current =
        HttpRequestData::from_request(&fixture_request("http_request.json"), "req").unwrap();
    assert_eq!(legacy.query, current.query);
    assert_eq!(legacy.path_and_query(), current.path_and_query());
    assert_eq!(legacy.body, current.body);
}

#[test]
fn reply_with_http_and_service_bus_outputs() {
    let reply: InvocationResponse =
        serde_json::from_value(fixture("response_with_outputs.json")).unwrap();
    let res = HttpResponseData::from_output(&reply.outputs["res"]).unwrap();
    assert_eq!(res.status_code, 201);
    assert_eq!(res.headers["Location"], "/api/orders/ord-1001");
    let messages = output_messages(&reply.outputs["outMessages"]);
    assert_eq!(messages.len(), 2);
    let first: Value = serde_json::from_str(&messages[0]).unwrap();
    assert_eq!(first["event"], "OrderAccepted");
    assert_eq!(reply.logs.len(), 2);
    assert_eq!(reply.return_value, Value::Null);
}

#[test]
fn a_change_feed_batch_decodes_to_its_documents_and_the_outbox_record_in_it() {
    let request = fixture_request("cosmos_trigger_request.json");
    let documents = shared::protocol::change_feed::documents(&request, "documents").unwrap();
    assert_eq!(documents.len(), 2);
    let records: Vec<shared::outbox::FeedDocument> = documents
        .into_iter()
        .map(|document| serde_json::from_value(document).unwrap())
        .filter(shared::outbox::FeedDocument::is_outbox)
        .collect();
    assert_eq!(
        records.len(),
        1,
        "the order document is not an outbox record"
    );
    let message = records[0].message().unwrap();
    assert_eq!(message.destination, "order-events");
    assert_eq!(message.message_id, "9b2f7c1e-4d3a-4c5b-8e6f-1a2b3c4d5e6f");
    let event: shared::domain::messages::OrderEvent = serde_json::from_str(&message.body).unwrap();
    assert_eq!(event.event_id, message.message_id);
    assert_eq!(records[0].ttl, Some(604_800));
    assert_eq!(request.sys().method_name.as_deref(), Some("OutboxRelay"));
    // The local runtime encodes a batch as the host does: a string holding a string holding
    // the array (key order aside).
    let documents = shared::protocol::change_feed::documents(&request, "documents").unwrap();
    let layers = |value: &Value| -> Value {
        let once: String = serde_json::from_value(value.clone()).unwrap();
        let twice: String = serde_json::from_str(&once).unwrap();
        serde_json::from_str(&twice).unwrap()
    };
    let local = shared::protocol::change_feed::to_host_value(&documents);
    assert_eq!(
        layers(&local),
        layers(request.binding("documents").unwrap())
    );
    assert_eq!(layers(&local), Value::Array(documents));
}

#[test]
fn signalr_connection_info_is_read_in_the_string_and_the_object_form() {
    let from_string = SignalRConnectionInfo::from_request(
        &fixture_request("signalr_negotiate_request.json"),
        "connectionInfo",
    )
    .unwrap();
    let from_object = SignalRConnectionInfo::from_request(
        &fixture_request("signalr_negotiate_request_object.json"),
        "connectionInfo",
    )
    .unwrap();
    assert_eq!(from_string, from_object);
    assert_eq!(
        from_string.url,
        "https://sigr-platform.service.signalr.net/client/?hub=notifications"
    );
    assert!(from_string.access_token.starts_with("eyJ"));
    let request = fixture_request("signalr_negotiate_request.json");
    let data = HttpRequestData::from_request(&request, "req").unwrap();
    assert_eq!(
        data.headers["x-ms-signalr-userid"],
        vec!["contoso:customer:c-1001".to_owned()]
    );
    assert!(SignalRConnectionInfo::from_request(&request, "missing").is_err());
}
