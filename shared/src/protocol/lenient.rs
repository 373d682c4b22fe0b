//! Tolerant decoding of the values the Functions host puts in envelopes.
//!
//! The host serialises trigger metadata through its own converters, so a scalar can arrive as
//! itself (`1`), as a JSON string (`"1"`), or JSON-encoded a second time (`"\"abc\""`); a
//! message body bound as a string can be a JSON string that itself holds JSON; dates come in
//! ISO 8601 with or without fractional seconds, offset or `Z`. These helpers undo all of that.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;

/// How many layers of "a JSON string holding JSON" we are willing to peel.
const MAX_ENCODING_DEPTH: usize = 3;

/// Peels JSON-in-a-string layers off a scalar: `"\"abc\""` becomes `"abc"`, `"1"` stays a
/// string (callers that want a number use [`as_u64`]).
pub(crate) fn unwrap_string(value: &Value) -> Option<String> {
    let mut current = value.as_str()?.to_owned();
    for _ in 0..MAX_ENCODING_DEPTH {
        let trimmed = current.trim();
        if trimmed.len() >= 2 && trimmed.starts_with('"') && trimmed.ends_with('"') {
            match serde_json::from_str::<String>(trimmed) {
                Ok(inner) => current = inner,
                Err(_) => break,
            }
        } else {
            break;
        }
    }
    Some(current)
}

/// A string-or-scalar metadata value rendered as text (numbers and booleans included).
pub(crate) fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(_) => unwrap_string(value),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An unsigned integer given as a number, a string, or a doubly encoded string.
pub(crate) fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(_) => unwrap_string(value)?.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value that may have been wrapped into strings: `"{\"a\":1}"` becomes `{"a":1}`.
/// Text that is not JSON stays the string it is.
pub(crate) fn unwrap_json(value: &Value) -> Value {
    unwrap_json_ref(value).into_owned()
}

/// [`unwrap_json`] without copying a value that is not wrapped in a string (the usual case
/// for objects such as `Data.req`).
pub(crate) fn unwrap_json_ref(value: &Value) -> std::borrow::Cow<'_, Value> {
    match value {
        Value::String(_) => {
            std::borrow::Cow::Owned(unwrap_json_layers(value).pop().unwrap_or(Value::Null))
        }
        other => std::borrow::Cow::Borrowed(other),
    }
}

/// Every decoding of a value, outermost first: the value itself, then each layer of JSON
/// found inside a string (`"\"{...}\""` gives the string, the inner string, the object).
pub(crate) fn unwrap_json_layers(value: &Value) -> Vec<Value> {
    let mut layers = vec![value.clone()];
    for _ in 0..MAX_ENCODING_DEPTH {
        let Some(Value::String(text)) = layers.last() else {
            break;
        };
        let trimmed = text.trim_start();
        let looks_like_json =
            trimmed.starts_with('{') || trimmed.starts_with('[') || trimmed.starts_with('"');
        if !looks_like_json {
            break;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(inner) => layers.push(inner),
            Err(_) => break,
        }
    }
    layers
}

/// Parses a date the way the host may write it: RFC 3339 (`2026-11-21T02:00:00.1234567Z`,
/// `...+00:00`) or without any offset (`2026-11-21T02:00:00`, read as UTC), with or without
/// fractional seconds, possibly wrapped in an extra layer of JSON quotes.
pub fn parse_host_datetime(text: &str) -> Option<DateTime<Utc>> {
    let unwrapped = unwrap_string(&Value::String(text.to_owned()))?;
    let text = unwrapped.trim();
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        return Some(with_offset.with_timezone(&Utc));
    }
    // .NET writes up to 7 fractional digits, which RFC 3339 parsing above accepts; what is
    // left are dates without an offset, with a space or a `T` between date and time.
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%m/%d/%Y %H:%M:%S",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .map(|naive| naive.and_utc())
}

/// Writes a date the way the host does in trigger data: ISO 8601 with an offset and up to
/// seven fractional digits (we write microseconds, which the host's parsers accept).
pub fn format_host_datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, false)
}

pub(crate) fn as_datetime(value: &Value) -> Option<DateTime<Utc>> {
    parse_host_datetime(value.as_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn peels_double_encoded_strings() {
        assert_eq!(unwrap_string(&json!("\"abc\"")).as_deref(), Some("abc"));
        assert_eq!(unwrap_string(&json!("abc")).as_deref(), Some("abc"));
        assert_eq!(
            unwrap_string(&json!("\"\\\"abc\\\"\"")).as_deref(),
            Some("abc")
        );
        assert_eq!(unwrap_string(&json!(3)), None);
    }

    #[test]
    fn reads_numbers_in_every_encoding() {
        assert_eq!(as_u64(&json!(3)), Some(3));
        assert_eq!(as_u64(&json!("3")), Some(3));
        assert_eq!(as_u64(&json!("\"3\"")), Some(3));
        assert_eq!(as_u64(&json!("three")), None);
        assert_eq!(as_u64(&json!(-1)), None);
    }

    #[test]
    fn unwraps_json_held_in_strings() {
        assert_eq!(unwrap_json(&json!("{\"a\":1}")), json!({"a": 1}));
        assert_eq!(unwrap_json(&json!("\"{\\\"a\\\":1}\"")), json!({"a": 1}));
        assert_eq!(unwrap_json(&json!("plain text")), json!("plain text"));
        assert_eq!(unwrap_json(&json!("{not json")), json!("{not json"));
        assert_eq!(unwrap_json(&json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn parses_the_date_shapes_the_host_writes() {
        let expected = "2026-11-21T02:00:00Z".parse::<DateTime<Utc>>().unwrap();
        for text in [
            "2026-11-21T02:00:00Z",
            "2026-11-21T02:00:00",
            "2026-11-21T02:00:00.0000000",
            "2026-11-21T02:00:00.0000000Z",
            "2026-11-21T02:00:00+00:00",
            "2026-11-21T03:00:00+01:00",
            "\"2026-11-21T02:00:00\"",
            "2026-11-21 02:00:00",
        ] {
            assert_eq!(parse_host_datetime(text), Some(expected), "{text}");
        }
        assert_eq!(parse_host_datetime("yesterday"), None);
    }

    #[test]
    fn formatted_dates_parse_back() {
        let at = "2026-11-21T02:00:00.123456Z"
            .parse::<DateTime<Utc>>()
            .unwrap();
        assert_eq!(parse_host_datetime(&format_host_datetime(at)), Some(at));
    }
}
