//! Tokens already verified, so that a client sending the same token again (as clients do, for
//! the token's whole lifetime) costs a hash lookup instead of an RSA verification, which the
//! pure-Rust backend does in about 0.2 ms.
//!
//! An entry is keyed by the whole token (header, claims and signature) and a lookup compares
//! the full token, so only the very same bytes hit; the map hashes with foldhash (randomly
//! seeded per process), which is much cheaper per request than a cryptographic digest and needs
//! none: equality, not the hash, decides a hit. It is used only while the token is within its
//! lifetime (same leeway as validation) and while its issuer's keys are still the fresh
//! generation it was verified with: a key refresh or keys past their maximum age send the token
//! through full verification again. The number of entries is bounded: at the default 10,000
//! entries, typical tokens of 1 to 2 KB take 10 to 20 MB; the ceiling is 10,000 ×
//! [`super::MAX_TOKEN_LEN`] (about 160 MB), reachable only with tokens the issuers signed.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::{Map, Value};

use super::principal::Principal;

/// A verified token's outcome and what decides whether it still holds.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub issuer: String,
    pub generation: u64,
    pub not_before: Option<u64>,
    pub expires: u64,
    pub principal: Principal,
}

impl Verified {
    /// The facts to remember about verified `claims`, or `None` if they cannot be cached.
    pub(crate) fn new(
        issuer: &str,
        generation: u64,
        claims: &Map<String, Value>,
        principal: &Principal,
    ) -> Option<Self> {
        Some(Self {
            issuer: issuer.to_owned(),
            generation,
            not_before: claims.get("nbf").and_then(seconds),
            expires: claims.get("exp").and_then(seconds)?,
            principal: principal.clone(),
        })
    }

    /// Whether validation with this leeway would still accept the token's lifetime at `now`.
    pub(crate) fn is_current(&self, now: u64, leeway: u64) -> bool {
        let started = self
            .not_before
            .is_none_or(|nbf| nbf <= now.saturating_add(leeway));
        started && self.expires >= now.saturating_sub(leeway)
    }
}

/// A NumericDate claim in whole seconds (validation accepts integers and floats).
fn seconds(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s as u64)
    })
}

/// The bounded map of verified tokens.
#[derive(Debug)]
pub(crate) struct VerifiedTokens {
    capacity: usize,
    entries: RwLock<HashMap<Box<str>, Arc<Verified>, foldhash::fast::RandomState>>,
}

impl VerifiedTokens {
    /// Holds at most `capacity` tokens; 0 turns the cache off.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: RwLock::new(HashMap::default()),
        }
    }

    /// What is remembered about exactly this token, if anything.
    pub(crate) fn get(&self, token: &str) -> Option<Arc<Verified>> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(token).cloned()
    }

    /// Remembers a verified token; when full, drops the expired entries, or all if none is.
    pub(crate) fn insert(&self, token: &str, verified: Verified, now: u64, leeway: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(token) {
            entries.retain(|_, entry| entry.is_current(now, leeway));
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(token.into(), Arc::new(verified));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PrincipalKind;
    use crate::domain::tenant::TenantId;

    fn verified(not_before: Option<u64>, expires: u64) -> Verified {
        Verified {
            issuer: "https://issuer".into(),
            generation: 1,
            not_before,
            expires,
            principal: Principal {
                subject: "s".into(),
                tenant: TenantId::new("t").expect("tenant"),
                kind: PrincipalKind::Client {
                    customer_id: "c".into(),
                },
            },
        }
    }

    #[test]
    fn entries_hold_only_within_the_token_lifetime() {
        let entry = verified(Some(1_000), 2_000);
        assert!(entry.is_current(1_500, 0));
        assert!(entry.is_current(2_000, 0));
        assert!(!entry.is_current(2_001, 0));
        assert!(entry.is_current(2_050, 60));
        assert!(!entry.is_current(999, 0));
        assert!(entry.is_current(950, 60));
    }

    #[test]
    fn numeric_dates_may_be_integers_or_floats() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"exp": 1700000000.5, "nbf": 1600000000}"#).expect("json");
        let principal = verified(None, 0).principal;
        let entry = Verified::new("i", 3, &claims, &principal).expect("cacheable");
        assert_eq!(
            (entry.not_before, entry.expires),
            (Some(1_600_000_000), 1_700_000_000)
        );
        let no_exp = Map::new();
        assert!(Verified::new("i", 3, &no_exp, &principal).is_none());
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let cache = VerifiedTokens::new(2);
        cache.insert("a", verified(None, 10), 5, 0);
        cache.insert("b", verified(None, 100), 5, 0);
        // Full at time 50: "a" has expired and makes room.
        cache.insert("c", verified(None, 100), 50, 0);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a").is_none());
        assert!(cache.get("b").is_some());
        // Full with nothing expired: starts over rather than grow.
        cache.insert("d", verified(None, 100), 50, 0);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("d").is_some());
    }

    #[test]
    fn capacity_zero_turns_the_cache_off() {
        let cache = VerifiedTokens::new(0);
        cache.insert("a", verified(None, 100), 5, 0);
        assert!(cache.get("a").is_none());
    }
}
