//! The Cosmos DB trigger (`cosmosDBTrigger`, change feed) as a custom handler receives it.
//!
//! The host hands the trigger value over as a string (the extension registers no binding rule,
//! so the default type is `string`: the batch's documents as one compact JSON array text), and
//! then JSON-encodes that string once more when it builds the envelope. So
//! `Data.{binding}` is a JSON string holding a JSON string holding the array. The trigger has no
//! binding data, so `Metadata` carries only `sys` (and `RetryContext` on a retry). The
//! derivation, with the host's and the extension's source, is in
//! `functions/tests/fixtures/host/SOURCES.md` beside the fixture of this payload. Decoding is
//! tolerant: a real array, or a string holding one through up to three layers, is accepted.

use serde_json::Value;

use super::lenient::unwrap_json;
use super::{InvocationRequest, ProtocolError};

/// The documents of a change-feed batch, in feed order.
pub fn documents(request: &InvocationRequest, binding: &str) -> Result<Vec<Value>, ProtocolError> {
    match unwrap_json(request.binding(binding)?) {
        Value::Array(documents) => Ok(documents),
        other => Err(ProtocolError::InvalidBinding {
            binding: binding.to_owned(),
            expected: "JSON array of documents",
            reason: format!("got {}", kind(&other)),
        }),
    }
}

/// `documents` encoded as the host puts them in `Data` (array text, JSON-encoded as a string,
/// then once more), for the local runtime's change feed.
pub fn to_host_value(documents: &[Value]) -> Value {
    let array_text = Value::Array(documents.to_vec()).to_string();
    Value::String(Value::String(array_text).to_string())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string that is not a JSON array",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(data: Value) -> InvocationRequest {
        serde_json::from_value(json!({"Data": {"documents": data}, "Metadata": {}})).unwrap()
    }

    #[test]
    fn the_hosts_double_encoding_a_plain_array_and_one_layer_all_decode() {
        let docs = vec![
            json!({"id": "outbox:1", "type": "outbox"}),
            json!({"id": "order:2"}),
        ];
        for data in [
            to_host_value(&docs),
            Value::Array(docs.clone()),
            Value::String(Value::Array(docs.clone()).to_string()),
        ] {
            assert_eq!(documents(&request(data), "documents").unwrap(), docs);
        }
    }

    #[test]
    fn anything_else_is_a_clear_error() {
        let error = documents(&request(json!({"id": "x"})), "documents").unwrap_err();
        assert!(
            error.to_string().contains("JSON array of documents"),
            "{error}"
        );
        assert!(documents(&request(json!([])), "missing").is_err());
    }
}
