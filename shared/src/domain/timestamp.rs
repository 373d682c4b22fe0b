//! Timestamps as the API writes them, for `#[serde(serialize_with = "…")]` on every
//! `DateTime<Utc>` of the domain types.
//!
//! The text is exactly chrono's own serde format (RFC 3339, `Z`, as many fractional digits as
//! needed: none, 3, 6 or 9), built in a stack buffer instead of through `fmt`, which was about
//! 3 % of the CPU of serving an order over HTTP (`BENCHMARKS.md`). Years outside 0–9999 go
//! through chrono. Reading timestamps is left to chrono.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// The longest text: `9999-12-31T23:59:60.999999999Z`.
const MAX_LEN: usize = 30;

/// Writes `at` as chrono would, faster.
pub(crate) fn serialize<S: Serializer>(
    at: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut buffer = [0u8; MAX_LEN];
    match write_rfc3339(at, &mut buffer).and_then(|len| std::str::from_utf8(&buffer[..len]).ok()) {
        Some(text) => serializer.serialize_str(text),
        None => at.serialize(serializer),
    }
}

/// [`serialize`] for an optional timestamp (`None` is `null`).
pub mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        struct Timestamp<'a>(&'a DateTime<Utc>);
        impl Serialize for Timestamp<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                super::serialize(self.0, serializer)
            }
        }
        match at {
            Some(at) => serializer.serialize_some(&Timestamp(at)),
            None => serializer.serialize_none(),
        }
    }
}

/// The RFC 3339 text of `at` in `out`, and its length; `None` for years outside 0–9999.
fn write_rfc3339(at: &DateTime<Utc>, out: &mut [u8; MAX_LEN]) -> Option<usize> {
    let year = u32::try_from(at.year()).ok().filter(|year| *year <= 9999)?;
    let mut second = at.second();
    let mut nano = at.nanosecond();
    if nano >= 1_000_000_000 {
        // A leap second: chrono writes it as second 60.
        second += 1;
        nano -= 1_000_000_000;
    }
    let mut len = 0;
    let mut put = |value: u32, digits: u32, after: Option<u8>| {
        for place in (0..digits).rev() {
            out[len] = b'0' + (value / 10u32.pow(place) % 10) as u8;
            len += 1;
        }
        if let Some(byte) = after {
            out[len] = byte;
            len += 1;
        }
    };
    put(year, 4, Some(b'-'));
    put(at.month(), 2, Some(b'-'));
    put(at.day(), 2, Some(b'T'));
    put(at.hour(), 2, Some(b':'));
    put(at.minute(), 2, Some(b':'));
    let (fraction, digits) = match nano {
        0 => (0, 0),
        _ if nano.is_multiple_of(1_000_000) => (nano / 1_000_000, 3),
        _ if nano.is_multiple_of(1_000) => (nano / 1_000, 6),
        _ => (nano, 9),
    };
    if digits == 0 {
        put(second, 2, Some(b'Z'));
    } else {
        put(second, 2, Some(b'.'));
        put(fraction, digits, Some(b'Z'));
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    #[derive(Serialize)]
    struct Written {
        #[serde(serialize_with = "serialize")]
        at: DateTime<Utc>,
        #[serde(serialize_with = "option::serialize")]
        maybe: Option<DateTime<Utc>>,
    }

    fn ours(at: DateTime<Utc>) -> String {
        serde_json::to_string(&Written {
            at,
            maybe: Some(at),
        })
        .unwrap()
    }

    fn chronos(at: DateTime<Utc>) -> String {
        format!(
            "{{\"at\":{0},\"maybe\":{0}}}",
            serde_json::to_string(&at).unwrap()
        )
    }

    #[test]
    fn writes_what_chrono_writes() {
        let mut rng = fastrand::Rng::with_seed(7);
        let first = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap().timestamp();
        let last = Utc
            .with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
            .unwrap()
            .timestamp();
        for _ in 0..20_000 {
            let nanos = match rng.u8(0..4) {
                0 => 0,
                1 => rng.u32(0..1000) * 1_000_000,
                2 => rng.u32(0..1_000_000) * 1_000,
                _ => rng.u32(0..1_000_000_000),
            };
            let at = Utc.timestamp_opt(rng.i64(first..=last), nanos).unwrap();
            assert_eq!(ours(at), chronos(at), "{at:?}");
        }
    }

    #[test]
    fn edge_cases_match_chrono_too() {
        let leap_second = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_250_000_000)
            .unwrap()
            .and_utc();
        let cases = [
            Utc.with_ymd_and_hms(2026, 11, 21, 9, 5, 3).unwrap(),
            Utc.timestamp_opt(1_800_000_000, 1).unwrap(),
            Utc.timestamp_opt(1_800_000_000, 999_999_999).unwrap(),
            leap_second,
            Utc.with_ymd_and_hms(-1, 6, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
        ];
        for at in cases {
            assert_eq!(ours(at), chronos(at), "{at:?}");
        }
        assert!(
            ours(leap_second).contains("23:59:60.25Z")
                || ours(leap_second).contains("23:59:60.250Z")
        );
        assert_eq!(
            serde_json::to_string(&Written {
                at: cases[0],
                maybe: None
            })
            .unwrap(),
            "{\"at\":\"2026-11-21T09:05:03Z\",\"maybe\":null}"
        );
    }
}
