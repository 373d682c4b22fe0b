//! HTTP trigger data in envelope form.
//!
//! An HTTP function that has output bindings besides its HTTP response (for example a Service
//! Bus output) is not forwarded as a plain request: the host POSTs `/{FunctionName}` with
//! `Data.req` = `{Url, Method, Query, Headers, Params, Identities, Body}` and reads the response
//! from the `res` output (`{statusCode, headers, body}`). This module converts between that
//! form and `http` requests/responses, so the API code handles both forms the same way.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::envelope::InvocationRequest;
use super::lenient::{as_text, as_u64, unwrap_json, unwrap_json_ref};
use super::ProtocolError;

/// The `req` binding of an HTTP trigger, as the host writes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HttpRequestData {
    /// Absolute URL of the original request (`http://host/api/v1/orders?status=pending`).
    #[serde(rename = "Url")]
    pub url: String,
    #[serde(rename = "Method")]
    pub method: String,
    /// Query parameters; the host sends an object, some versions a query string.
    #[serde(rename = "Query")]
    pub query: BTreeMap<String, String>,
    /// Header values by name; the host sends a list of values per name.
    #[serde(rename = "Headers")]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Route parameters matched by the host (`{id}` in the function's route).
    #[serde(rename = "Params")]
    pub params: BTreeMap<String, String>,
    /// Claims identities App Service authentication attached, if any; passed through.
    #[serde(rename = "Identities")]
    pub identities: Value,
    /// The body as text; `None` (and absent from the envelope) when the request had none.
    #[serde(rename = "Body", skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl HttpRequestData {
    /// Reads the HTTP trigger binding `binding` (`req` by convention) from an envelope.
    pub fn from_request(request: &InvocationRequest, binding: &str) -> Result<Self, ProtocolError> {
        let invalid = |reason: String| ProtocolError::InvalidBinding {
            binding: binding.to_owned(),
            expected: "HTTP request",
            reason,
        };
        let value = unwrap_json_ref(request.binding(binding)?);
        let map = value
            .as_object()
            .ok_or_else(|| invalid("expected an object".into()))?;
        let field = |name: &str| {
            map.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value)
        };
        let url = field("Url")
            .and_then(as_text)
            .ok_or_else(|| invalid("Url is missing".into()))?;
        let method = field("Method")
            .and_then(as_text)
            .ok_or_else(|| invalid("Method is missing".into()))?;
        Ok(Self {
            query: field("Query").map(parse_query).unwrap_or_default(),
            headers: field("Headers").map(parse_headers).unwrap_or_default(),
            params: field("Params").map(string_map).unwrap_or_default(),
            identities: field("Identities").cloned().unwrap_or(Value::Null),
            body: field("Body").and_then(body_text),
            url,
            method,
        })
    }

    /// Reads the HTTP trigger binding `binding` straight from the envelope's bytes. The shape
    /// current hosts send (`Query` and `Headers` as objects, `Body` a string) is read without
    /// building a JSON tree and without decoding `Metadata` (it repeats the request); any other
    /// shape takes the tolerant path of [`HttpRequestData::from_request`].
    pub fn from_envelope_bytes(body: &[u8], binding: &str) -> Result<Self, ProtocolError> {
        if let Some(request) = typed_envelope(body, binding) {
            return Ok(request);
        }
        Self::from_request(&InvocationRequest::from_slice(body)?, binding)
    }

    /// The path and query of `Url` (`/api/v1/orders?status=pending`); the query string is
    /// rebuilt from `Query` when `Url` carries none.
    pub fn path_and_query(&self) -> String {
        let after_scheme = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, rest)| rest);
        let path = match after_scheme.find('/') {
            Some(start) if self.url.contains("://") => &after_scheme[start..],
            _ if self.url.starts_with('/') => self.url.as_str(),
            _ => "/",
        };
        if path.contains('?') || self.query.is_empty() {
            return path.to_owned();
        }
        let query: Vec<String> = self
            .query
            .iter()
            .map(|(key, value)| format!("{}={}", encode_component(key), encode_component(value)))
            .collect();
        format!("{path}?{}", query.join("&"))
    }

    /// This request as an `http::Request`, ready for the API router.
    pub fn to_http_request(&self) -> Result<http::Request<Bytes>, http::Error> {
        self.clone().into_http_request()
    }

    /// This request as an `http::Request`, moving the header values and the body into it
    /// instead of copying them.
    pub fn into_http_request(self) -> Result<http::Request<Bytes>, http::Error> {
        let uri = self.path_and_query();
        let method = if self.method.bytes().any(|byte| byte.is_ascii_lowercase()) {
            self.method.to_ascii_uppercase()
        } else {
            self.method
        };
        let mut builder = http::Request::builder().method(method.as_str()).uri(uri);
        for (name, values) in self
            .headers
            .into_iter()
            .filter(|(_, values)| !values.is_empty())
        {
            let name = http::HeaderName::from_bytes(name.as_bytes())?;
            for value in values {
                builder = builder.header(
                    &name,
                    http::HeaderValue::from_maybe_shared(Bytes::from(value))?,
                );
            }
        }
        builder
            .extension(FromEnvelope)
            .body(self.body.map(Bytes::from).unwrap_or_default())
    }

    /// The envelope the host POSTs for this request to an HTTP function whose trigger binding
    /// is `binding`: the request in `Data`, and in `Metadata` the binding data the host adds
    /// (top-level body properties, query values and route values, each JSON-encoded into a
    /// string; `Query` and `Headers` as objects with comma-joined header values; `sys`).
    pub fn to_host_request(&self, binding: &str, function_name: &str) -> InvocationRequest {
        let encoded = |text: &str| Value::String(Value::String(text.to_owned()).to_string());
        let mut metadata = serde_json::Map::new();
        if let Some(Ok(Value::Object(properties))) =
            self.body.as_deref().map(serde_json::from_str::<Value>)
        {
            for (key, value) in properties {
                let text = match value {
                    Value::String(text) => text,
                    Value::Array(_) | Value::Null => continue,
                    other => other.to_string(),
                };
                metadata.insert(key, encoded(&text));
            }
        }
        for (key, value) in self.query.iter().chain(self.params.iter()) {
            metadata.insert(key.clone(), encoded(value));
        }
        metadata.insert(
            "Query".into(),
            serde_json::to_value(&self.query).unwrap_or(Value::Null),
        );
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(name, values)| (name.clone(), Value::String(values.join(","))))
            .collect();
        metadata.insert("Headers".into(), Value::Object(headers));
        let sys = super::SysMetadata {
            method_name: Some(function_name.to_owned()),
            utc_now: Some(chrono::Utc::now()),
            rand_guid: Some(crate::telemetry::fast_uuid()),
        };
        metadata.insert("sys".into(), sys.to_value());
        let mut data = serde_json::Map::new();
        data.insert(
            binding.to_owned(),
            serde_json::to_value(self).unwrap_or(Value::Null),
        );
        InvocationRequest { data, metadata }
    }

    /// The envelope form of a plain request: what the host builds from an incoming request.
    pub fn from_http_parts(parts: &http::request::Parts, base_url: &str, body: &[u8]) -> Self {
        let query = parts
            .uri
            .query()
            .map(|q| parse_query(&Value::String(q.to_owned())))
            .unwrap_or_default();
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in &parts.headers {
            if let Ok(text) = value.to_str() {
                headers
                    .entry(name.as_str().to_owned())
                    .or_default()
                    .push(text.to_owned());
            }
        }
        Self {
            url: format!("{}{}", base_url.trim_end_matches('/'), parts.uri),
            method: parts.method.as_str().to_owned(),
            query,
            headers,
            params: BTreeMap::new(),
            identities: Value::Array(Vec::new()),
            body: (!body.is_empty()).then(|| String::from_utf8_lossy(body).into_owned()),
        }
    }
}

/// Marks a request rebuilt from the host's envelope (`Data.req`), whose body the host has
/// already decoded as UTF-8 text (invalid bytes replaced by U+FFFD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FromEnvelope;

/// The `res` output the host turns into the HTTP response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HttpResponseData {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl HttpResponseData {
    /// Builds the `res` output from a response produced by the API router.
    pub fn from_parts(status: http::StatusCode, headers: &http::HeaderMap, body: &[u8]) -> Self {
        Self {
            status_code: status.as_u16(),
            headers: headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect(),
            body: match std::str::from_utf8(body) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(body).into_owned(),
            },
        }
    }

    /// Reads a `res` output the way the host does: `statusCode` as a number or a string
    /// (`status` accepted too), `body` as text or JSON, `headers` as an object.
    pub fn from_output(value: &Value) -> Option<Self> {
        let value = unwrap_json_ref(value);
        let map = value.as_object()?;
        let field = |name: &str| {
            map.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value)
        };
        let status_code = field("statusCode")
            .or_else(|| field("status"))
            .and_then(as_u64)
            .and_then(|code| u16::try_from(code).ok())
            .unwrap_or(200);
        let body = match field("body") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        Some(Self {
            status_code,
            headers: field("headers").map(header_map).unwrap_or_default(),
            body,
        })
    }
}

/// The fast path of [`HttpRequestData::from_envelope_bytes`]: `None` when the envelope is not
/// of the common shape (the caller then parses it tolerantly).
fn typed_envelope(body: &[u8], binding: &str) -> Option<HttpRequestData> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "Data", borrow)]
        data: std::collections::HashMap<&'a str, &'a serde_json::value::RawValue>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Typed {
        url: String,
        method: String,
        #[serde(default)]
        query: BTreeMap<String, String>,
        #[serde(default)]
        headers: BTreeMap<String, Vec<String>>,
        #[serde(default)]
        params: BTreeMap<String, String>,
        #[serde(default)]
        identities: Value,
        #[serde(default)]
        body: Option<String>,
    }
    let envelope: Envelope<'_> = serde_json::from_slice(body).ok()?;
    let typed: Typed = serde_json::from_str(envelope.data.get(binding)?.get()).ok()?;
    Some(HttpRequestData {
        url: typed.url,
        method: typed.method,
        query: typed.query,
        headers: typed.headers,
        params: typed.params,
        identities: typed.identities,
        body: typed.body,
    })
}

fn body_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    match unwrap_json(value) {
        Value::Object(map) => map
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), scalar_or_first(value)?)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Response headers as the handler set them: values are taken as they are (an ETag's quotes
/// are part of its value), numbers as their text.
fn header_map(value: &Value) -> BTreeMap<String, String> {
    let Value::Object(map) = unwrap_json(value) else {
        return BTreeMap::new();
    };
    map.iter()
        .filter_map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            Some((name.clone(), text))
        })
        .collect()
}

fn scalar_or_first(value: &Value) -> Option<String> {
    match value {
        Value::Array(items) => items.first().and_then(as_text),
        other => as_text(other),
    }
}

fn parse_headers(value: &Value) -> BTreeMap<String, Vec<String>> {
    let Value::Object(map) = unwrap_json(value) else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(name, values)| {
            let values = match values {
                Value::Array(items) => items.iter().filter_map(as_text).collect(),
                other => as_text(other).into_iter().collect(),
            };
            (name.clone(), values)
        })
        .collect()
}

/// `Query` as an object (`{"a": "1"}`), a JSON string holding one, or a query string.
fn parse_query(value: &Value) -> BTreeMap<String, String> {
    match unwrap_json(value) {
        Value::Object(map) => string_map(&Value::Object(map)),
        Value::String(text) => text
            .trim_start_matches('?')
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_component(key), decode_component(value))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn encode_component(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |byte: u8| (byte as char).to_digit(16).map(|digit| digit as u8);
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = match (bytes[index], bytes.get(index + 1), bytes.get(index + 2)) {
            (b'%', Some(&high), Some(&low)) => hex(high).zip(hex(low)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (escaped, bytes[index]) {
            (Some(byte), _) => {
                decoded.push(byte);
                index += 3;
            }
            (None, b'+') => {
                decoded.push(b' ');
                index += 1;
            }
            (None, other) => {
                decoded.push(other);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(req: Value) -> InvocationRequest {
        serde_json::from_value(json!({"Data": {"req": req}, "Metadata": {}})).unwrap()
    }

    #[test]
    fn query_as_object_or_string_gives_the_same_map() {
        let as_object = HttpRequestData::from_request(
            &envelope(
                json!({"Url": "http://h/api/x", "Method": "GET", "Query": {"a": "1", "b": "x y"}}),
            ),
            "req",
        )
        .unwrap();
        let as_string = HttpRequestData::from_request(
            &envelope(json!({"Url": "http://h/api/x", "Method": "GET", "Query": "?a=1&b=x%20y"})),
            "req",
        )
        .unwrap();
        let as_json_string = HttpRequestData::from_request(
            &envelope(json!({"Url": "http://h/api/x", "Method": "GET", "Query": "{\"a\":\"1\",\"b\":\"x y\"}"})),
            "req",
        )
        .unwrap();
        assert_eq!(as_object.query, as_string.query);
        assert_eq!(as_object.query, as_json_string.query);
        assert_eq!(as_object.query["b"], "x y");
    }

    #[test]
    fn becomes_an_http_request_with_path_query_headers_and_body() {
        let data = HttpRequestData::from_request(
            &envelope(json!({
                "Url": "https://app.azurewebsites.net/api/v1/customers?limit=5",
                "Method": "post",
                "Query": {"limit": "5"},
                "Headers": {"Content-Type": ["application/json"], "X-One": "1"},
                "Params": {},
                "Body": "{\"name\":\"x\"}"
            })),
            "req",
        )
        .unwrap();
        let request = data.to_http_request().unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri().to_string(), "/api/v1/customers?limit=5");
        assert_eq!(request.headers()["content-type"], "application/json");
        assert_eq!(request.headers()["x-one"], "1");
        assert_eq!(request.body().as_ref(), br#"{"name":"x"}"#);
    }

    #[test]
    fn the_fast_path_and_the_tolerant_path_read_the_same_request() {
        let current = json!({"Data": {"req": {"Url": "http://h/api/x?a=1", "Method": "GET", "Query": {"a": "1"}, "Headers": {"X": ["1", "2"]}, "Params": {}, "Identities": [], "Body": "b"}}, "Metadata": {"Headers": {"X": "1,2"}}});
        let bytes = serde_json::to_vec(&current).unwrap();
        let fast = typed_envelope(&bytes, "req").expect("the common shape takes the fast path");
        let tolerant =
            HttpRequestData::from_request(&serde_json::from_value(current).unwrap(), "req")
                .unwrap();
        assert_eq!(fast, tolerant);
        let legacy = json!({"Data": {"req": {"Url": "http://h/api/x", "Method": "GET", "Query": "{\"a\":\"1\"}"}}});
        let bytes = serde_json::to_vec(&legacy).unwrap();
        assert!(
            typed_envelope(&bytes, "req").is_none(),
            "a string Query falls back"
        );
        assert_eq!(
            HttpRequestData::from_envelope_bytes(&bytes, "req")
                .unwrap()
                .query["a"],
            "1"
        );
    }

    #[test]
    fn query_is_rebuilt_when_the_url_has_none() {
        let data = HttpRequestData {
            url: "http://h/api/x".into(),
            method: "GET".into(),
            query: [("q".to_owned(), "a&b".to_owned())].into(),
            ..Default::default()
        };
        assert_eq!(data.path_and_query(), "/api/x?q=a%26b");
    }

    #[test]
    fn response_output_accepts_string_status_and_json_body() {
        let res = HttpResponseData::from_output(
            &json!({"statusCode": "201", "body": {"id": 1}, "headers": {"Location": "/x"}}),
        )
        .unwrap();
        assert_eq!(res.status_code, 201);
        assert_eq!(res.body, r#"{"id":1}"#);
        assert_eq!(res.headers["Location"], "/x");
    }

    #[test]
    fn response_header_values_keep_their_quotes() {
        let res = HttpResponseData::from_output(
            &json!({"statusCode": 200, "headers": {"ETag": "\"abc\"", "Content-Length": 5}}),
        )
        .unwrap();
        assert_eq!(res.headers["ETag"], "\"abc\"");
        assert_eq!(res.headers["Content-Length"], "5");
    }

    #[test]
    fn percent_decoding_handles_edges() {
        assert_eq!(decode_component("a%2"), "a%2");
        assert_eq!(decode_component("%41%zz"), "A%zz");
        assert_eq!(decode_component("x+y"), "x y");
    }
}
