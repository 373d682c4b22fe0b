//! What the readiness endpoint shows of the outbound clients: [`OutboundHealth`] per service,
//! gathered by an [`OutboundRegistry`].

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{BreakerState, OutboundClient};

/// One service's breaker and load.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundHealth {
    pub service: String,
    pub breaker: BreakerState,
    pub consecutive_failures: u32,
    pub in_flight: usize,
    pub open_until: Option<DateTime<Utc>>,
}

/// The app's outbound clients, for the readiness endpoint.
#[derive(Debug, Clone, Default)]
pub struct OutboundRegistry {
    clients: Vec<OutboundClient>,
}

impl OutboundRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, client: OutboundClient) {
        self.clients.push(client);
    }

    /// Each client's health, in registration order.
    pub fn snapshot(&self) -> Vec<OutboundHealth> {
        self.clients.iter().map(OutboundClient::health).collect()
    }

    /// True when any breaker is not closed.
    pub fn any_degraded(&self) -> bool {
        self.clients
            .iter()
            .any(|c| c.health().breaker != BreakerState::Closed)
    }
}
