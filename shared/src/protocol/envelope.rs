//! The request envelope the host POSTs to `/{FunctionName}` and the reply it expects back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient::{as_datetime, as_text, unwrap_json_ref};
use super::ProtocolError;

/// `{"Data": {binding: value}, "Metadata": {...}}` as the host sends it.
///
/// Keys are matched case-insensitively on the way in (the host writes `Data`/`Metadata`, some
/// tools write `data`/`metadata`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InvocationRequest {
    #[serde(rename = "Data", alias = "data", default)]
    pub data: Map<String, Value>,
    #[serde(rename = "Metadata", alias = "metadata", default)]
    pub metadata: Map<String, Value>,
}

impl InvocationRequest {
    /// Parses an envelope from the raw request body. An empty body is an empty envelope.
    pub fn from_slice(body: &[u8]) -> Result<Self, ProtocolError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body).map_err(ProtocolError::Envelope)
    }

    /// The value of an input binding, by its name in function.json.
    pub fn binding(&self, name: &str) -> Result<&Value, ProtocolError> {
        lookup(&self.data, name).ok_or_else(|| ProtocolError::MissingBinding {
            binding: name.to_owned(),
            present: self.data.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// A metadata entry, by name (case-insensitive, as the host's dictionaries are).
    pub(crate) fn metadata_value(&self, key: &str) -> Option<&Value> {
        lookup(&self.metadata, key)
    }

    /// `Metadata.sys`: the method name, the host's clock and a random GUID.
    pub fn sys(&self) -> SysMetadata {
        self.metadata_value("sys")
            .map(SysMetadata::from_value)
            .unwrap_or_default()
    }
}

fn lookup<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })
}

/// `Metadata.sys` as the host writes it for every invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SysMetadata {
    /// The function's name as the host knows it (`MethodName`).
    pub method_name: Option<String>,
    /// The host's clock when it started the invocation (`UtcNow`).
    pub utc_now: Option<DateTime<Utc>>,
    /// A GUID the host draws for each invocation (`RandGuid`).
    pub rand_guid: Option<String>,
}

impl SysMetadata {
    fn from_value(value: &Value) -> Self {
        let value = unwrap_json_ref(value);
        let Some(map) = value.as_object() else {
            return Self::default();
        };
        Self {
            method_name: lookup(map, "MethodName").and_then(as_text),
            utc_now: lookup(map, "UtcNow").and_then(as_datetime),
            rand_guid: lookup(map, "RandGuid").and_then(as_text),
        }
    }

    /// The `sys` object as the host writes it.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        if let Some(name) = &self.method_name {
            map.insert("MethodName".into(), Value::String(name.clone()));
        }
        if let Some(now) = self.utc_now {
            map.insert(
                "UtcNow".into(),
                Value::String(now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            );
        }
        if let Some(guid) = &self.rand_guid {
            map.insert("RandGuid".into(), Value::String(guid.clone()));
        }
        Value::Object(map)
    }
}

/// `{"Outputs": {...}, "Logs": [...], "ReturnValue": ...}`: what the handler answers.
///
/// Outputs are keyed by output binding name; an array value means several messages. The host
/// requires a 2xx, non-empty JSON body for a successful invocation: this type always
/// serialises all three keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InvocationResponse {
    #[serde(rename = "Outputs", alias = "outputs", default)]
    pub outputs: BTreeMap<String, Value>,
    #[serde(rename = "Logs", alias = "logs", default)]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue", alias = "returnValue", default)]
    pub return_value: Value,
}

impl InvocationResponse {
    /// A reply with nothing in it: still a valid, non-empty JSON body.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Adds a line to `Logs` (the host writes them to its own log stream).
    pub fn log(mut self, line: impl Into<String>) -> Self {
        self.logs.push(line.into());
        self
    }

    /// Sets an output binding's value.
    pub fn output(mut self, binding: impl Into<String>, value: Value) -> Self {
        self.outputs.insert(binding.into(), value);
        self
    }

    pub fn with_return_value(mut self, value: Value) -> Self {
        self.return_value = value;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_reply_still_has_all_three_keys() {
        let text = serde_json::to_string(&InvocationResponse::empty()).unwrap();
        assert_eq!(text, r#"{"Outputs":{},"Logs":[],"ReturnValue":null}"#);
    }

    #[test]
    fn bindings_and_metadata_are_found_case_insensitively() {
        let request: InvocationRequest = serde_json::from_value(json!({
            "data": {"MyTimer": {"IsPastDue": false}},
            "metadata": {"sys": "{\"MethodName\":\"\\\"Tick\\\"\",\"UtcNow\":\"2026-11-21T02:00:00\"}"}
        }))
        .unwrap();
        assert!(request.binding("myTimer").is_ok());
        let sys = request.sys();
        assert_eq!(sys.method_name.as_deref(), Some("Tick"));
        assert!(sys.utc_now.is_some());
    }

    #[test]
    fn a_missing_binding_names_what_is_there() {
        let request = InvocationRequest::from_slice(br#"{"Data":{"other":1}}"#).unwrap();
        let error = request.binding("message").unwrap_err().to_string();
        assert!(
            error.contains("`message`") && error.contains("other"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_body_is_an_empty_envelope_and_garbage_is_an_error() {
        assert_eq!(
            InvocationRequest::from_slice(b"").unwrap(),
            InvocationRequest::default()
        );
        assert!(InvocationRequest::from_slice(b"{nope").is_err());
    }
}
