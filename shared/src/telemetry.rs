//! Logging and tracing: one `tracing` subscriber for the whole process, and W3C trace context.
//!
//! Under the Functions host (and with `LOG_FORMAT=json`) every line is a JSON object, which the
//! host forwards to Application Insights; locally lines are written for people. Invocation
//! spans carry the function name, the host's invocation id and the W3C trace id. Log only ids,
//! never names, emails or addresses.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

mod json_fields;

pub use json_fields::DirectJsonFields;

/// Installs the global subscriber. `under_host` picks JSON for [`LogFormat::Auto`].
/// Calling it twice is harmless (the second call does nothing).
pub fn init(format: LogFormat, under_host: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => under_host,
    };
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _already_set = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(DirectJsonFields)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}

/// A random v4 UUID from a fast thread-local generator, for ids that need to be unique but not
/// unguessable (invocation ids, `RandGuid`): no system call per id, unlike `Uuid::new_v4`.
pub fn fast_uuid() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
        .into_uuid()
        .to_string()
}

/// [`fast_uuid`] as 32 hex digits without hyphens (a new correlation id), built directly.
pub fn fast_uuid_simple() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
        .into_uuid()
        .simple()
        .to_string()
}

/// A parsed W3C `traceparent` header (`00-<trace-id>-<parent-id>-<flags>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub parent_id: String,
    pub sampled: bool,
}

impl TraceParent {
    /// Parses a `traceparent` value; anything malformed (or all-zero ids) is `None`, as the
    /// W3C spec says to then start a new trace.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let is_hex = |text: &str, len: usize| {
            text.len() == len
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let all_zero = |text: &str| text.bytes().all(|b| b == b'0');
        if !is_hex(version, 2)
            || version == "ff"
            || !is_hex(trace_id, 32)
            || !is_hex(parent_id, 16)
            || !is_hex(flags, 2)
        {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        if all_zero(trace_id) || all_zero(parent_id) {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            sampled: flags & 1 == 1,
        })
    }

    /// A new root trace context, for invocations that arrive without one.
    pub fn new_root() -> Self {
        Self {
            trace_id: Self::new_trace_id(),
            parent_id: format!("{:016x}", fastrand::u64(1..)),
            sampled: true,
        }
    }

    /// The trace id of a new root trace context (random, never all zeros).
    pub fn new_trace_id() -> String {
        format!("{:032x}", fastrand::u128(1..))
    }

    /// The header value for a child of this context (a new parent id, same trace).
    pub fn child_header(&self) -> String {
        format!(
            "00-{}-{:016x}-{:02x}",
            self.trace_id,
            fastrand::u64(1..),
            u8::from(self.sampled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_traceparent() {
        let parsed =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(parsed.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.parent_id, "00f067aa0ba902b7");
        assert!(parsed.sampled);
    }

    #[test]
    fn refuses_malformed_traceparent() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn child_keeps_the_trace_and_changes_the_parent() {
        let root = TraceParent::new_root();
        let child = TraceParent::parse(&root.child_header()).unwrap();
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.parent_id, root.parent_id);
    }
}
