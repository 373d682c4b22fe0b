//! [`TtlCache`]: a small in-memory cache whose entries expire, for carrier answers (rate quotes,
//! trackers) that may be reused for a while. Bounded: when full, expired entries go first, then
//! the oldest.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most.
const CAPACITY: usize = 10_000;

/// A cache of `V` by `K`, each entry with its own lifetime.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// The value of `key` and how long it stays valid, if it has not expired.
    pub fn get(&self, key: &K) -> Option<(V, Duration)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (until, value) = entries.get(key)?;
        let left = until.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then(|| (value.clone(), left))
    }

    /// Keeps `value` for `ttl` (nothing when `ttl` is zero).
    pub fn put(&self, key: K, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, (until, _)| *until > now);
            if entries.len() >= CAPACITY {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (until, _))| *until)
                    .map(|(key, _)| key.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key, (now + ttl, value));
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &K) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Rate quotes as the API answers them, with when they were quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedRates {
    pub rates: Vec<super::RateQuote>,
    pub quoted_at: chrono::DateTime<chrono::Utc>,
}

/// The app's caches of carrier answers: rate quotes by (tenant, order, order ETag), so a
/// changed order is quoted again; trackers by (tenant, tracker id).
#[derive(Debug, Default)]
pub struct ShippingCache {
    pub rates: TtlCache<(String, String, String), QuotedRates>,
    pub trackers: TtlCache<(String, String), super::Tracking>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_zero_lifetimes_are_not_kept() {
        let cache = TtlCache::default();
        cache.put("a", 1, Duration::from_secs(60));
        cache.put("b", 2, Duration::ZERO);
        cache.put("c", 3, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get(&"a").map(|(v, _)| v), Some(1));
        assert_eq!(cache.get(&"b"), None);
        assert_eq!(cache.get(&"c"), None, "expired");
        cache.remove(&"a");
        assert_eq!(cache.get(&"a"), None);
    }
}
