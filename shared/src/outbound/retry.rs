//! Which failures are retried, and how long to wait: exponential backoff with full jitter, or
//! the service's `Retry-After`.
//!
//! Written here rather than with `backon`: its jitter adds a random part of the *minimum* delay
//! (not full jitter), and each of our attempts decides from the failure itself whether a retry
//! is allowed (was the request sent? may it be repeated?) and how long to wait (`Retry-After`),
//! which leaves the crate only a loop of ten lines to do.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

/// The backoff before retry number `retry` (1 for the first retry): a random duration in
/// `[0, min(max, base * 2^(retry-1))]` ("full jitter").
pub(crate) fn full_jitter(base: Duration, max: Duration, retry: u32) -> Duration {
    let exp = retry.saturating_sub(1).min(31);
    let ceiling = base.saturating_mul(1u32 << exp).min(max);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// Statuses worth another attempt: the service is overloaded or a gateway failed.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// Statuses the circuit breaker counts as failures: every 5xx and 429.
pub(crate) fn is_breaker_failure(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// `Retry-After` (RFC 9110 §10.2.3): delay seconds or an HTTP date (a past date is zero).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    parse_retry_after(
        headers.get(http::header::RETRY_AFTER)?.to_str().ok()?,
        SystemTime::now(),
    )
}

fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_capped_exponential() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for _ in 0..1000 {
            assert!(full_jitter(base, max, 1) <= base);
            assert!(full_jitter(base, max, 3) <= Duration::from_millis(400));
            assert!(full_jitter(base, max, 30) <= max);
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        // 2015-10-21 07:28:00 GMT = 1_445_412_480; 07:28:05 is 5 s later.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
