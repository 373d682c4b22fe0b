//! Span fields written straight into a JSON object, for the JSON log format.
//!
//! tracing-subscriber's `JsonFields` puts every field of a new span into a map of
//! `serde_json::Value`s (one allocation per field) and then serialises the map. Under the
//! Functions host that happens for every request's invocation span, which cost about 5 % of the
//! CPU of a point read (`BENCHMARKS.md`). [`DirectJsonFields`] writes the same JSON object
//! directly into the span's buffer; the JSON event formatter reads it back exactly as it reads
//! `JsonFields`' output. Values are encoded as `JsonFields` encodes them (a test compares the two).

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

/// Formats span fields as one JSON object, written directly.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectJsonFields;

impl<'writer> FormatFields<'writer> for DirectJsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut object = ObjectWriter {
            out: &mut writer,
            first: true,
            result: Ok(()),
        };
        object.result = object.out.write_char('{');
        fields.record(&mut object);
        object.result?;
        writer.write_char('}')
    }

    /// Fields recorded after the span began (rare): merged into the object, a later value of a
    /// name replacing the earlier one, as `JsonFields` does.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if current.fields.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        let mut added = String::new();
        self.format_fields(Writer::new(&mut added), fields)?;
        let mut merged: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&current.fields).map_err(|_| fmt::Error)?;
        let added: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&added).map_err(|_| fmt::Error)?;
        merged.extend(added);
        current.fields = serde_json::to_string(&merged).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

/// Writes `"name":value` pairs of one JSON object; the first error is kept and stops the rest.
struct ObjectWriter<'a, 'writer> {
    out: &'a mut Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl ObjectWriter<'_, '_> {
    fn entry(&mut self, name: &str, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.first { "" } else { "," };
        self.first = false;
        self.result = self
            .out
            .write_str(separator)
            .and_then(|()| write_json_string(self.out, name))
            .and_then(|()| self.out.write_char(':'))
            .and_then(|()| value(self.out));
    }
}

impl Visit for ObjectWriter<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json writes a non-finite number as null.
        self.entry(field.name(), |out| {
            match serde_json::Number::from_f64(value) {
                Some(number) => write!(out, "{number}"),
                None => out.write_str("null"),
            }
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field.name(), |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field.name(), |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field.name(), |out| write!(out, "{value}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field.name(), |out| write_json_string(out, value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.entry(field.name(), |out| {
            out.write_char('[')?;
            for (index, byte) in value.iter().enumerate() {
                write!(out, "{}{byte}", if index == 0 { "" } else { "," })?;
            }
            out.write_char(']')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name.starts_with("log.") {
            return; // `log` crate metadata, already part of the event
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.entry(name, |out| {
            out.write_char('"')?;
            write!(JsonEscaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

fn write_json_string(out: &mut Writer<'_>, text: &str) -> fmt::Result {
    out.write_char('"')?;
    JsonEscaped(out).write_str(text)?;
    out.write_char('"')
}

/// Escapes what it is given as the inside of a JSON string, as serde_json does.
struct JsonEscaped<'a, 'writer>(&'a mut Writer<'writer>);

impl Write for JsonEscaped<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain_from = 0;
        for (index, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[plain_from..index])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain_from = index + 1;
        }
        self.0.write_str(&text[plain_from..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::format::JsonFields;
    use tracing_subscriber::fmt::MakeWriter;

    /// Log lines written by a subscriber, kept in memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Shape {
        #[allow(dead_code)]
        label: &'static str,
    }

    /// Logs one event inside a span with fields of every kind (one recorded late) and returns
    /// the span's fields as the JSON event formatter printed them.
    fn span_fields_logged_with<N>(fields: N) -> serde_json::Value
    where
        N: for<'writer> FormatFields<'writer> + Send + Sync + 'static,
    {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(lines.clone())
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(fields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let odd = "quote \" backslash \\ newline \n tab \t bell \u{7} é ✓";
            let span = tracing::info_span!(
                "invocation",
                function = %"OrdersApi",
                invocation_id = "6b8b4567-1234-4cde-9f00-123456789abc",
                odd,
                debug = ?Shape { label: "a \"label\"" },
                count = 42u64,
                delta = -7i64,
                ratio = 0.25f64,
                infinite = f64::INFINITY,
                flag = true,
                r#type = %"keyword",
                late = tracing::field::Empty,
            );
            span.record("late", "recorded after the start");
            span.record("count", 43u64);
            span.in_scope(|| tracing::info!(answer = 1, "inside"));
        });
        let output = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
        line["span"].clone()
    }

    #[test]
    fn span_fields_are_the_same_json_as_json_fields_writes() {
        let direct = span_fields_logged_with(DirectJsonFields);
        let stock = span_fields_logged_with(JsonFields::default());
        assert_eq!(direct, stock);
        assert_eq!(direct["function"], "OrdersApi");
        assert_eq!(
            direct["odd"],
            "quote \" backslash \\ newline \n tab \t bell \u{7} é ✓"
        );
        assert_eq!(
            direct["count"], 43,
            "a field recorded again replaces the first value"
        );
        assert_eq!(direct["late"], "recorded after the start");
        assert_eq!(direct["infinite"], serde_json::Value::Null);
        assert_eq!(direct["type"], "keyword");
    }
}
