//! The circuit breaker of one service: closed (calls pass), open (calls fail fast for
//! `open_for`), half-open (a few probes pass; a success closes it, a failure opens it again).
//!
//! Each attempt takes a [`Pass`] and reports how it went; a pass dropped without a report (the
//! caller gave up) frees its probe slot without counting.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::BreakerConfig;

/// The breaker's state, as the readiness endpoint shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// How an attempt went, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The service answered sensibly (2xx, 4xx other than 429).
    Success,
    /// Connect error, timeout, 5xx, 429.
    Failure,
    /// Says nothing about the service (the call never reached it).
    Neutral,
}

#[derive(Debug)]
enum State {
    Closed,
    Open {
        until: Instant,
        until_utc: DateTime<Utc>,
    },
    HalfOpen {
        probes: u32,
        successes: u32,
    },
}

/// One bucket of the rolling window.
#[derive(Debug)]
struct Bucket {
    start: Instant,
    calls: u32,
    failures: u32,
}

#[derive(Debug)]
struct Inner {
    state: State,
    consecutive_failures: u32,
    window: VecDeque<Bucket>,
}

/// The breaker of one service.
#[derive(Debug)]
pub(crate) struct Breaker {
    service: Arc<str>,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// Leave to make one attempt; report its outcome with [`Pass::report`].
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Pass<'_> {
    pub(crate) fn report(mut self, outcome: Outcome) {
        self.reported = true;
        self.breaker.record(self.probe, outcome);
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.record(self.probe, Outcome::Neutral);
        }
    }
}

/// The breaker's numbers for the readiness endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub open_until: Option<DateTime<Utc>>,
}

impl Breaker {
    pub(crate) fn new(service: Arc<str>, config: BreakerConfig) -> Self {
        let inner = Inner {
            state: State::Closed,
            consecutive_failures: 0,
            window: VecDeque::new(),
        };
        Self {
            service,
            config,
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves consistent numbers: keep using them.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True while open and not yet due for a probe (a cheap check before queueing).
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.lock().state, State::Open { until, .. } if Instant::now() < until)
    }

    /// Leave for one attempt, or `None` when the breaker refuses it.
    pub(crate) fn pass(&self) -> Option<Pass<'_>> {
        let mut inner = self.lock();
        let probe = match &mut inner.state {
            State::Closed => false,
            State::Open { until, .. } if Instant::now() < *until => return None,
            State::Open { .. } => {
                tracing::info!(service = %self.service, "circuit breaker half-open: probing");
                inner.state = State::HalfOpen {
                    probes: 1,
                    successes: 0,
                };
                true
            }
            State::HalfOpen { probes, .. } if *probes < self.config.half_open_probes => {
                *probes += 1;
                true
            }
            State::HalfOpen { .. } => return None,
        };
        Some(Pass {
            breaker: self,
            probe,
            reported: false,
        })
    }

    fn record(&self, probe: bool, outcome: Outcome) {
        let mut inner = self.lock();
        let now = Instant::now();
        match (&mut inner.state, probe) {
            (State::Closed, _) => self.record_closed(&mut inner, outcome, now),
            (State::HalfOpen { probes, successes }, true) => {
                *probes = probes.saturating_sub(1);
                match outcome {
                    Outcome::Neutral => {}
                    Outcome::Failure => self.open(&mut inner, now),
                    Outcome::Success => {
                        *successes += 1;
                        if *successes >= self.config.half_open_probes {
                            self.close(&mut inner);
                        }
                    }
                }
            }
            // A late result of an attempt that left before the breaker opened: ignored.
            _ => {}
        }
    }

    fn record_closed(&self, inner: &mut Inner, outcome: Outcome, now: Instant) {
        let failed = match outcome {
            Outcome::Neutral => return,
            Outcome::Success => false,
            Outcome::Failure => true,
        };
        inner.consecutive_failures = if failed {
            inner.consecutive_failures.saturating_add(1)
        } else {
            0
        };
        self.count(inner, failed, now);
        let (calls, failures) = inner
            .window
            .iter()
            .fold((0u32, 0u32), |(c, f), b| (c + b.calls, f + b.failures));
        let rate_tripped = calls >= self.config.minimum_calls.max(1)
            && f64::from(failures) >= self.config.failure_rate * f64::from(calls);
        if failed
            && (inner.consecutive_failures >= self.config.consecutive_failures || rate_tripped)
        {
            self.open(inner, now);
        }
    }

    /// Adds one attempt to the rolling window (ten buckets wide) and drops what left it.
    fn count(&self, inner: &mut Inner, failed: bool, now: Instant) {
        let window = self.config.window;
        while inner
            .window
            .front()
            .is_some_and(|b| now.duration_since(b.start) > window)
        {
            inner.window.pop_front();
        }
        let width = window / 10;
        let bucket = match inner.window.back_mut() {
            Some(b) if now.duration_since(b.start) < width => b,
            _ => {
                inner.window.push_back(Bucket {
                    start: now,
                    calls: 0,
                    failures: 0,
                });
                match inner.window.back_mut() {
                    Some(b) => b,
                    None => return,
                }
            }
        };
        bucket.calls += 1;
        bucket.failures += u32::from(failed);
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        let open_for = self.config.open_for;
        let until_utc =
            Utc::now() + chrono::Duration::from_std(open_for).unwrap_or(chrono::Duration::MAX);
        tracing::warn!(
            service = %self.service,
            consecutive_failures = inner.consecutive_failures,
            open_for_ms = u64::try_from(open_for.as_millis()).unwrap_or(u64::MAX),
            "circuit breaker opened: calls fail fast"
        );
        inner.state = State::Open {
            until: now + open_for.min(Duration::from_secs(86_400 * 365)),
            until_utc,
        };
    }

    fn close(&self, inner: &mut Inner) {
        tracing::info!(service = %self.service, "circuit breaker closed: service answering again");
        inner.state = State::Closed;
        inner.consecutive_failures = 0;
        inner.window.clear();
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        let (state, open_until) = match inner.state {
            State::Closed => (BreakerState::Closed, None),
            State::Open { until_utc, .. } => (BreakerState::Open, Some(until_utc)),
            State::HalfOpen { .. } => (BreakerState::HalfOpen, None),
        };
        Snapshot {
            state,
            consecutive_failures: inner.consecutive_failures,
            open_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(consecutive: u32) -> Breaker {
        let config = BreakerConfig {
            consecutive_failures: consecutive,
            open_for: Duration::from_millis(20),
            ..BreakerConfig::default()
        };
        Breaker::new("svc".into(), config)
    }

    #[test]
    fn a_dropped_probe_frees_its_slot() {
        let b = breaker(1);
        let first = b.pass();
        assert!(first.is_some());
        if let Some(pass) = first {
            pass.report(Outcome::Failure);
        }
        assert!(b.pass().is_none());
        std::thread::sleep(Duration::from_millis(30));
        drop(b.pass());
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        let probe = b.pass();
        assert!(probe.is_some(), "the dropped probe's slot is free again");
    }
}
