//! [`Windows`]: sliding windows of observations per key, counting distinct values, with a
//! bounded number of keys and entries.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use chrono::{DateTime, Duration, Utc};

/// Most keys held at once; beyond it, keys with nothing in the window are dropped, and if all
/// are live a new key is not counted (the log says so once per prune).
const MAX_KEYS: usize = 50_000;

/// One key's window.
#[derive(Debug, Default)]
struct Window {
    /// (when, what) oldest first; a value appears at most once (its latest time).
    seen: VecDeque<(DateTime<Utc>, String)>,
    /// A finding was raised for this key; none again before this time.
    quiet_until: Option<DateTime<Utc>>,
}

/// What an observation amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Count {
    pub count: u32,
    pub first_seen_at: DateTime<Utc>,
}

/// Sliding windows per key.
#[derive(Debug)]
pub(super) struct Windows<K> {
    length: Duration,
    windows: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Windows<K> {
    pub fn new(length: Duration) -> Self {
        Self {
            length,
            windows: HashMap::new(),
        }
    }

    /// Adds `value` seen at `at` under `key` and answers the distinct values in the window,
    /// when they reach `threshold` and no finding was raised for the key within the window
    /// (the finding is then taken as raised). `cap` bounds the values kept per key.
    pub fn observe(
        &mut self,
        key: &K,
        value: &str,
        at: DateTime<Utc>,
        threshold: u32,
    ) -> Option<Count> {
        if !self.windows.contains_key(key) && !self.make_room(at) {
            return None;
        }
        let length = self.length;
        let window = self.windows.entry(key.clone()).or_default();
        window
            .seen
            .retain(|(when, seen)| *when > at - length && seen != value);
        window.seen.push_back((at, value.to_owned()));
        let cap = usize::try_from(threshold.max(1)).unwrap_or(usize::MAX);
        while window.seen.len() > cap {
            window.seen.pop_front();
        }
        let count = u32::try_from(window.seen.len()).unwrap_or(u32::MAX);
        let quiet = window.quiet_until.is_some_and(|until| at < until);
        if count < threshold || quiet {
            return None;
        }
        window.quiet_until = Some(at + length);
        let first_seen_at = window.seen.front().map_or(at, |(when, _)| *when);
        Some(Count {
            count,
            first_seen_at,
        })
    }

    /// Whether a new key may be added: drops keys whose window is over when full.
    fn make_room(&mut self, at: DateTime<Utc>) -> bool {
        if self.windows.len() < MAX_KEYS {
            return true;
        }
        let length = self.length;
        self.windows.retain(|_, window| {
            let live = window
                .seen
                .back()
                .is_some_and(|(when, _)| *when > at - length);
            let quiet = window.quiet_until.is_some_and(|until| at < until);
            live || quiet
        });
        let room = self.windows.len() < MAX_KEYS;
        if !room {
            tracing::warn!(
                keys = MAX_KEYS,
                "breach detection is full: a new caller is not counted"
            );
        }
        room
    }
}
