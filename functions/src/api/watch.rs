//! What breach detection holds per instance ([`Watch`]: the rules' windows and the key client
//! addresses are pseudonymised with), and [`SeenCaller`], through which the caller extractor
//! tells the failure watch who a request was. The async side is [`super::security`].

use std::sync::{Arc, OnceLock};

use shared::auth::Principal;
use shared::domain::masking::PseudonymKey;
use shared::security::{Detector, Thresholds, PLATFORM_TENANT};

/// The detector and the pseudonym key (`GDPR_PSEUDONYM_KEY`): client addresses are
/// pseudonymised under the `_platform` tenant, which names no customer, so those pseudonyms
/// link to nothing else; an erased customer's reads get the pseudonym the erasure gives them.
#[derive(Debug)]
pub struct Watch {
    detector: Detector,
    address_key: PseudonymKey,
}

impl Watch {
    pub fn new(thresholds: Thresholds, key: &PseudonymKey) -> Self {
        Self {
            detector: Detector::new(thresholds),
            address_key: key.clone(),
        }
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The customer's keyed pseudonym in `tenant`, as an erasure writes it into the trail.
    pub fn customer_pseudonym(&self, tenant: &str, customer_id: &str) -> String {
        self.address_key.pseudonym(tenant, customer_id)
    }

    /// The pseudonym of a client address (`psn-...`).
    pub fn address_pseudonym(&self, address: &str) -> String {
        self.address_key.pseudonym(PLATFORM_TENANT, address)
    }
}

/// Filled by the caller extractor when a request authenticates, so the failure watch knows
/// who got a `404`: the principal and the request's correlation id.
#[derive(Debug, Clone, Default)]
pub struct SeenCaller(Arc<OnceLock<(Principal, String)>>);

impl SeenCaller {
    pub fn set(&self, principal: &Principal, correlation_id: &str) {
        let _ = self.0.set((principal.clone(), correlation_id.to_owned()));
    }

    pub fn get(&self) -> Option<&(Principal, String)> {
        self.0.get()
    }
}
