//! `TimerInfo`: the value a timer trigger binds to.
//!
//! The host writes `{"Schedule": {...}, "ScheduleStatus": {"Last", "Next", "LastUpdated"} or
//! null, "IsPastDue": bool}`. `ScheduleStatus` is null the first time a timer ever fires.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::envelope::InvocationRequest;
use super::lenient::{as_datetime, unwrap_json};
use super::{format_host_datetime, ProtocolError};

/// When the timer last fired and when it fires next, as the host's schedule monitor keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    pub last: DateTime<Utc>,
    pub next: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
}

/// A timer trigger's input.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimerInfo {
    /// `Schedule` as the host describes it (`{"AdjustForDST": true}` for cron schedules).
    pub schedule: Value,
    /// `None` on a timer's very first run.
    pub schedule_status: Option<ScheduleStatus>,
    /// True when the host started this run later than it was scheduled (after downtime).
    pub is_past_due: bool,
}

impl TimerInfo {
    /// Reads the timer binding `binding` from an envelope.
    pub fn from_request(request: &InvocationRequest, binding: &str) -> Result<Self, ProtocolError> {
        Self::from_value(request.binding(binding)?).map_err(|reason| {
            ProtocolError::InvalidBinding {
                binding: binding.to_owned(),
                expected: "TimerInfo",
                reason,
            }
        })
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        let value = unwrap_json(value);
        let map = value
            .as_object()
            .ok_or_else(|| format!("expected an object, got {}", kind_of(&value)))?;
        let field = |name: &str| {
            map.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let is_past_due = match field("IsPastDue") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => *flag,
            Some(Value::String(text)) => text
                .trim_matches('"')
                .parse::<bool>()
                .map_err(|_| format!("IsPastDue is not a boolean: {text:?}"))?,
            Some(other) => return Err(format!("IsPastDue is not a boolean: {other}")),
        };
        let schedule_status = match field("ScheduleStatus").map(unwrap_json) {
            None | Some(Value::Null) => None,
            Some(Value::Object(status)) => Some(parse_status(&status)?),
            Some(other) => return Err(format!("ScheduleStatus is not an object: {other}")),
        };
        Ok(Self {
            schedule: field("Schedule").cloned().unwrap_or_else(|| json!({})),
            schedule_status,
            is_past_due,
        })
    }

    /// The binding value as the host writes it.
    pub fn to_host_value(&self) -> Value {
        let status = self.schedule_status.map_or(Value::Null, |status| {
            json!({
                "Last": format_host_datetime(status.last),
                "Next": format_host_datetime(status.next),
                "LastUpdated": format_host_datetime(status.last_updated),
            })
        });
        json!({
            "Schedule": self.schedule,
            "ScheduleStatus": status,
            "IsPastDue": self.is_past_due,
        })
    }
}

fn parse_status(status: &Map<String, Value>) -> Result<ScheduleStatus, String> {
    let date = |name: &str| -> Result<DateTime<Utc>, String> {
        let value = status
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .ok_or_else(|| format!("ScheduleStatus.{name} is missing"))?;
        as_datetime(value).ok_or_else(|| format!("ScheduleStatus.{name} is not a date: {value}"))
    };
    Ok(ScheduleStatus {
        last: date("Last")?,
        next: date("Next")?,
        last_updated: date("LastUpdated")?,
    })
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(value: Value) -> InvocationRequest {
        serde_json::from_value(json!({"Data": {"timer": value}, "Metadata": {}})).unwrap()
    }

    #[test]
    fn first_run_has_no_status() {
        let info = TimerInfo::from_request(
            &request_with(json!({"Schedule": {"AdjustForDST": true}, "ScheduleStatus": null, "IsPastDue": false})),
            "timer",
        )
        .unwrap();
        assert_eq!(info.schedule_status, None);
        assert!(!info.is_past_due);
    }

    #[test]
    fn status_dates_without_zone_are_utc_and_a_string_wrapped_value_is_accepted() {
        let inner = json!({"ScheduleStatus": {"Last": "2026-11-20T02:00:00", "Next": "2026-11-21T02:00:00", "LastUpdated": "2026-11-20T02:00:00.0000000"}, "IsPastDue": "true"});
        let info =
            TimerInfo::from_request(&request_with(Value::String(inner.to_string())), "timer")
                .unwrap();
        let status = info.schedule_status.unwrap();
        assert_eq!(status.next.to_rfc3339(), "2026-11-21T02:00:00+00:00");
        assert!(info.is_past_due);
    }

    #[test]
    fn a_bad_date_is_a_clear_error() {
        let error = TimerInfo::from_request(
            &request_with(
                json!({"ScheduleStatus": {"Last": "soon", "Next": "x", "LastUpdated": "y"}}),
            ),
            "timer",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("ScheduleStatus.Last is not a date"),
            "{error}"
        );
    }

    #[test]
    fn encoding_round_trips() {
        let at = "2026-11-21T02:00:00Z".parse().unwrap();
        let info = TimerInfo {
            schedule: json!({"AdjustForDST": true}),
            schedule_status: Some(ScheduleStatus {
                last: at,
                next: at,
                last_updated: at,
            }),
            is_past_due: true,
        };
        let parsed = TimerInfo::from_request(&request_with(info.to_host_value()), "timer").unwrap();
        assert_eq!(parsed, info);
    }
}
