//! `ServiceBusMessage<T>`: a Service Bus trigger's input, body typed, properties parsed from the
//! trigger metadata; and the encoding the host uses, for the local runtime.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::envelope::{InvocationRequest, SysMetadata};
use super::lenient::{as_datetime, as_text, as_u64, unwrap_json, unwrap_json_layers};
use super::timer::kind_of;
use super::ProtocolError;

/// A message delivered by a Service Bus trigger, with its body deserialised into `T`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBusMessage<T> {
    pub body: T,
    pub message_id: String,
    /// 1 on the first delivery; the host dead-letters after `maxDeliveryCount`.
    pub delivery_count: u32,
    pub enqueued_time_utc: Option<DateTime<Utc>>,
    pub correlation_id: Option<String>,
    pub content_type: Option<String>,
    pub application_properties: Map<String, Value>,
    pub sys: SysMetadata,
}

impl<T: DeserializeOwned> ServiceBusMessage<T> {
    /// Reads the Service Bus binding `binding` and the trigger metadata from an envelope.
    pub fn from_request(request: &InvocationRequest, binding: &str) -> Result<Self, ProtocolError> {
        let body = decode_body(request.binding(binding)?).map_err(|reason| {
            ProtocolError::InvalidBinding {
                binding: binding.to_owned(),
                expected: short_type_name::<T>(),
                reason,
            }
        })?;
        let text = |key: &str| request.metadata_value(key).and_then(as_text);
        let message_id =
            text("MessageId").ok_or_else(|| invalid(request, "MessageId", "string"))?;
        let delivery_count = request
            .metadata_value("DeliveryCount")
            .and_then(as_u64)
            .and_then(|count| u32::try_from(count).ok())
            .ok_or_else(|| invalid(request, "DeliveryCount", "positive integer"))?;
        let enqueued_time_utc = match request.metadata_value("EnqueuedTimeUtc") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                as_datetime(value).ok_or_else(|| invalid(request, "EnqueuedTimeUtc", "date"))?,
            ),
        };
        Ok(Self {
            body,
            message_id,
            delivery_count,
            enqueued_time_utc,
            correlation_id: text("CorrelationId").filter(|id| !id.is_empty()),
            content_type: text("ContentType").filter(|ct| !ct.is_empty()),
            application_properties: application_properties(request),
            sys: request.sys(),
        })
    }
}

/// `ErasureRequest` rather than `shared::domain::messages::ErasureRequest`.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let without_generics = full.split('<').next().unwrap_or(full);
    without_generics.rsplit("::").next().unwrap_or(full)
}

/// The body as `T`. The host JSON-encodes a string-bound body into the binding value, which
/// may itself hold JSON, so the innermost decoding that fits `T` wins: an object for a struct,
/// the text for a `String`.
fn decode_body<T: DeserializeOwned>(raw: &Value) -> Result<T, String> {
    let layers = unwrap_json_layers(raw);
    let mut first_error = None;
    for layer in layers.iter().rev() {
        match T::deserialize(layer) {
            Ok(body) => return Ok(body),
            Err(error) => {
                first_error.get_or_insert_with(|| describe(&error, layer));
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "the body is empty".to_owned()))
}

fn describe(error: &serde_json::Error, layer: &Value) -> String {
    match layer {
        Value::String(_) => format!("{error} (the body is text that is not JSON)"),
        Value::Object(_) => error.to_string(),
        other => format!("{error} (the body is {})", kind_of(other)),
    }
}

/// `ApplicationProperties` (older hosts: `UserProperties`): an object, possibly JSON in a string.
fn application_properties(request: &InvocationRequest) -> Map<String, Value> {
    ["ApplicationProperties", "UserProperties"]
        .iter()
        .find_map(|key| request.metadata_value(key))
        .map(unwrap_json)
        .and_then(|value| match value {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default()
}

fn invalid(request: &InvocationRequest, key: &str, expected: &'static str) -> ProtocolError {
    ProtocolError::InvalidMetadata {
        key: key.to_owned(),
        expected,
        got: request
            .metadata_value(key)
            .map_or_else(|| "nothing".to_owned(), Value::to_string),
    }
}

/// A message as a queue holds it, before it is handed to a function: what the local runtime
/// stores and what it encodes into a host-shaped envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingMessage {
    /// The body as text (the host binds Service Bus bodies to custom handlers as strings).
    pub body: String,
    pub message_id: String,
    pub delivery_count: u32,
    pub enqueued_time_utc: DateTime<Utc>,
    pub correlation_id: Option<String>,
    pub content_type: Option<String>,
    pub application_properties: Map<String, Value>,
}

impl OutgoingMessage {
    /// `body` as a JSON message on its first delivery, with a new id: what an operator (or the
    /// host's admin API) hands a Service Bus function directly.
    pub fn first_delivery(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            message_id: uuid::Uuid::new_v4().simple().to_string(),
            delivery_count: 1,
            enqueued_time_utc: Utc::now(),
            correlation_id: None,
            content_type: Some("application/json".into()),
            application_properties: Map::new(),
        }
    }

    /// The envelope the host would POST for this message to a function whose trigger binding
    /// is named `binding`, with the host's encodings (see `functions/tests/fixtures/host`):
    /// the body bound as a string and JSON-encoded twice more, scalar metadata JSON-encoded a
    /// second time (`"MessageId": "\"abc\""`, `"DeliveryCount": "1"`), dates without
    /// fractions or zone, and the top-level properties of a JSON object body copied into the
    /// metadata as the host's binding data does.
    pub fn to_host_request(&self, binding: &str, function_name: &str) -> InvocationRequest {
        let mut metadata = Map::new();
        if let Ok(Value::Object(properties)) = serde_json::from_str::<Value>(&self.body) {
            for (key, value) in properties {
                match value {
                    Value::Array(_) | Value::Null => {}
                    Value::Object(_) => {
                        metadata.insert(key, value);
                    }
                    scalar => {
                        metadata.insert(key, encode_scalar(&scalar));
                    }
                }
            }
        }
        metadata.insert("MessageId".into(), encode_text(&self.message_id));
        metadata.insert(
            "DeliveryCount".into(),
            Value::String(self.delivery_count.to_string()),
        );
        metadata.insert(
            "EnqueuedTimeUtc".into(),
            Value::String(host_trigger_date(self.enqueued_time_utc)),
        );
        if let Some(id) = &self.correlation_id {
            metadata.insert("CorrelationId".into(), encode_text(id));
        }
        if let Some(content_type) = &self.content_type {
            metadata.insert("ContentType".into(), encode_text(content_type));
        }
        let properties = Value::Object(self.application_properties.clone());
        metadata.insert("ApplicationProperties".into(), properties.clone());
        metadata.insert("UserProperties".into(), properties);
        let sys = SysMetadata {
            method_name: Some(function_name.to_owned()),
            utc_now: Some(Utc::now()),
            rand_guid: Some(crate::telemetry::fast_uuid()),
        };
        metadata.insert("sys".into(), sys.to_value());
        let mut data = Map::new();
        data.insert(
            binding.to_owned(),
            encode_text(&Value::String(self.body.clone()).to_string()),
        );
        InvocationRequest { data, metadata }
    }
}

/// A string as the host passes scalar binding data: JSON-encoded into a string.
fn encode_text(text: &str) -> Value {
    Value::String(Value::String(text.to_owned()).to_string())
}

/// A number or boolean as the host passes it: its JSON text, encoded once more as a string
/// (`3` becomes `"\"3\""` in the body-property copies, as `ToString()` then JSON does).
fn encode_scalar(value: &Value) -> Value {
    match value {
        Value::String(text) => encode_text(text),
        other => encode_text(&other.to_string()),
    }
}

/// A trigger date as the host writes it after its `ToString()` round trip: no fraction, no zone.
fn host_trigger_date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Output-binding values as a list of message bodies: the handler may set one message
/// (any JSON value) or several (an array).
pub fn output_messages(value: &Value) -> Vec<String> {
    let as_text = |message: &Value| match message {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(as_text).collect(),
        single => vec![as_text(single)],
    }
}

impl<T> ServiceBusMessage<T> {
    /// A JSON summary for logs and replies: ids only, never the body.
    pub fn summary(&self) -> Value {
        json!({
            "messageId": self.message_id,
            "deliveryCount": self.delivery_count,
            "correlationId": self.correlation_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Request {
        customer_id: String,
    }

    fn message() -> OutgoingMessage {
        OutgoingMessage {
            body: r#"{"customerId":"c-1"}"#.into(),
            message_id: "m-1".into(),
            delivery_count: 2,
            enqueued_time_utc: "2026-11-21T02:00:00Z".parse().unwrap(),
            correlation_id: Some("corr-1".into()),
            content_type: Some("application/json".into()),
            application_properties: serde_json::from_value(json!({"source": "api"})).unwrap(),
        }
    }

    #[test]
    fn host_encoded_messages_parse_into_typed_values() {
        let request = message().to_host_request("message", "GDPRDataAnonymization");
        let parsed: ServiceBusMessage<Request> =
            ServiceBusMessage::from_request(&request, "message").unwrap();
        assert_eq!(
            parsed.body,
            Request {
                customer_id: "c-1".into()
            }
        );
        assert_eq!(parsed.message_id, "m-1");
        assert_eq!(parsed.delivery_count, 2);
        assert_eq!(parsed.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(parsed.content_type.as_deref(), Some("application/json"));
        assert_eq!(parsed.application_properties["source"], json!("api"));
        assert_eq!(
            parsed.sys.method_name.as_deref(),
            Some("GDPRDataAnonymization")
        );
        assert_eq!(parsed.enqueued_time_utc, Some(message().enqueued_time_utc));
    }

    #[test]
    fn a_body_of_the_wrong_shape_names_the_problem() {
        let mut bad = message();
        bad.body = r#"{"customer":"c-1"}"#.into();
        let error = ServiceBusMessage::<Request>::from_request(
            &bad.to_host_request("message", "F"),
            "message",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown field `customer`"), "{error}");
    }

    #[test]
    fn string_bodies_stay_strings() {
        let mut text = message();
        text.body = "hello".into();
        let parsed: ServiceBusMessage<String> =
            ServiceBusMessage::from_request(&text.to_host_request("message", "F"), "message")
                .unwrap();
        assert_eq!(parsed.body, "hello");
    }

    #[test]
    fn missing_delivery_count_is_an_error() {
        let mut request = message().to_host_request("message", "F");
        request.metadata.remove("DeliveryCount");
        let error = ServiceBusMessage::<Request>::from_request(&request, "message").unwrap_err();
        assert!(error.to_string().contains("DeliveryCount"));
    }

    #[test]
    fn outputs_become_message_lists() {
        assert_eq!(output_messages(&json!(null)), Vec::<String>::new());
        assert_eq!(output_messages(&json!("one")), vec!["one".to_owned()]);
        assert_eq!(
            output_messages(&json!([{"a": 1}, "b"])),
            vec![r#"{"a":1}"#.to_owned(), "b".to_owned()]
        );
    }
}
